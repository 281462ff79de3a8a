//! The display hub over real sockets: ordering, exact resume, reset, SSE, hibernation,
//! stalled peers, auth, every 4xx, and restarts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::{TestServer, client, error_code, get_json, start, start_in};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

const KEY: &str = "sp_display_test";

async fn server(extra: &[(&str, &str)]) -> TestServer {
    let mut env = vec![("STONEPOT_DEMO_KEY", KEY)];
    env.extend_from_slice(extra);
    start(&env).await
}

async fn init(s: &TestServer, id: &str, tenant: &str) -> Value {
    let res = client()
        .post(s.url(&format!("/conversation/{id}/init")))
        .bearer_auth(KEY)
        .json(&json!({"tenantId": tenant, "category": if tenant == "demo-finance" {"financial"} else {"restaurant"}, "table": 7}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

async fn post(s: &TestServer, id: &str, body: Value) -> reqwest::Response {
    client()
        .post(s.url(&format!("/conversation/{id}/update")))
        .bearer_auth(KEY)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn post_ok(s: &TestServer, id: &str, body: Value) -> u64 {
    let res = post(s, id, body).await;
    let status = res.status();
    let v: Value = res.json().await.unwrap();
    assert_eq!(status, 200, "{v}");
    v["seq"].as_u64().unwrap()
}

fn message(i: u64) -> Value {
    json!({"type": "message", "data": {"text": format!("m{i}")}})
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(s: &TestServer, id: &str, token: &str, since: Option<u64>) -> Ws {
    let mut url = format!(
        "ws://{}/conversation/{id}/display?token={token}",
        s.running.addr
    );
    if let Some(n) = since {
        url.push_str(&format!("&since={n}"));
    }
    tokio_tungstenite::connect_async(url).await.unwrap().0
}

/// The next JSON frame that is not presence/pong.
async fn next(ws: &mut Ws) -> Value {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a frame within 10 s")
            .expect("socket open")
            .unwrap();
        if let Message::Text(t) = msg {
            let v: Value = serde_json::from_str(&t).unwrap();
            if v["type"] != "presence" && v["type"] != "pong" {
                return v;
            }
        }
    }
}

fn token(init: &Value) -> String {
    init["displayToken"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn the_original_dish_card_is_accepted_with_an_exact_price() {
    let s = server(&[]).await;
    let i = init(&s, "conv-dish", "demo-restaurant").await;
    assert!(
        i["displayUrl"]
            .as_str()
            .unwrap()
            .contains("/ui/conversation?session=conv-dish")
    );
    let seq = post_ok(
        &s,
        "conv-dish",
        json!({"type":"dish_card","data":{"name":"Margherita Pizza","description":"Classic pizza","price":12.99,"dietary":["vegetarian"]}}),
    )
    .await;
    assert_eq!(seq, 1);
    // The alias path takes the same body.
    let res = client()
        .post(s.url("/api/restaurant/sessions/conv-dish/display"))
        .bearer_auth(KEY)
        .json(&json!({"type":"dish_card","key":"special","data":{"name":"Tiramisu","price":0.3}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.json::<Value>().await.unwrap()["seq"], 2);
    let st: Value = get_json(s.url("/conversation/conv-dish/state"), Some(KEY)).await;
    assert_eq!(st["seq"], 2);
    assert_eq!(st["init"]["table"], 7);
    let comps = st["components"].as_object().unwrap();
    let pizza = comps
        .values()
        .find(|c| c["data"]["name"] == "Margherita Pizza")
        .unwrap();
    assert_eq!(
        pizza["data"]["price"],
        json!({"minor": 1299, "currency": "USD"})
    );
    assert_eq!(comps["special"]["data"]["price"]["minor"], 30);
    assert_eq!(st["updates"].as_array().unwrap().len(), 2);
    s.running.stop().await.unwrap();
}

#[tokio::test]
async fn concurrent_posts_get_gapless_seqs_delivered_in_order() {
    let s = server(&[]).await;
    let i = init(&s, "conv-order", "demo-restaurant").await;
    let mut ws = connect(&s, "conv-order", &token(&i), None).await;
    let snap = next(&mut ws).await;
    assert_eq!(snap["type"], "snapshot");
    assert_eq!(snap["seq"], 0);
    let s = std::sync::Arc::new(s);
    let mut tasks = Vec::new();
    for t in 0..8u64 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let mut seqs = Vec::new();
            for k in 0..15u64 {
                seqs.push(post_ok(&s, "conv-order", message(t * 100 + k)).await);
            }
            seqs
        }));
    }
    let mut all: Vec<u64> = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort();
    assert_eq!(all, (1..=120).collect::<Vec<_>>());
    for want in 1..=120u64 {
        let f = next(&mut ws).await;
        assert_eq!(f["type"], "update");
        assert_eq!(f["seq"], want);
    }
}

#[tokio::test]
async fn refused_updates_in_a_concurrent_burst_leave_no_gaps() {
    // Updates that queue up together are appended as one batch: the refused ones get
    // their own 4xx, and the accepted ones still take consecutive seqs.
    let s = std::sync::Arc::new(server(&[]).await);
    init(&s, "conv-burst", "demo-restaurant").await;
    let mut tasks = Vec::new();
    for t in 0..40u64 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let body = if t % 3 == 0 {
                json!({"op": "remove", "key": format!("missing-{t}")})
            } else {
                message(t)
            };
            let res = post(&s, "conv-burst", body).await;
            let status = res.status().as_u16();
            let v: Value = res.json().await.unwrap();
            (t, status, v)
        }));
    }
    let mut seqs = Vec::new();
    for task in tasks {
        let (t, status, v) = task.await.unwrap();
        if t % 3 == 0 {
            assert!((400..500).contains(&status), "{t}: {status} {v}");
            assert!(
                v["error"]["message"].as_str().unwrap().contains("missing"),
                "{v}"
            );
        } else {
            assert_eq!(status, 200, "{t}: {v}");
            seqs.push(v["seq"].as_u64().unwrap());
        }
    }
    seqs.sort();
    assert_eq!(seqs, (1..=26).collect::<Vec<_>>());
    let st: Value = get_json(s.url("/conversation/conv-burst/state"), Some(KEY)).await;
    assert_eq!(st["seq"], 26);
    assert_eq!(st["components"].as_object().unwrap().len(), 26);
}

#[tokio::test]
async fn resume_after_a_dropped_socket_loses_and_repeats_nothing() {
    let s = server(&[]).await;
    let i = init(&s, "conv-resume", "demo-restaurant").await;
    let tok = token(&i);
    for n in 1..=3 {
        post_ok(&s, "conv-resume", message(n)).await;
    }
    let mut ws = connect(&s, "conv-resume", &tok, None).await;
    let snap = next(&mut ws).await;
    assert_eq!(
        (snap["type"].as_str(), snap["seq"].as_u64()),
        (Some("snapshot"), Some(3))
    );
    post_ok(&s, "conv-resume", message(4)).await;
    assert_eq!(next(&mut ws).await["seq"], 4);
    ws.send(Message::Text(
        json!({"type":"ack","seq":4}).to_string().into(),
    ))
    .await
    .unwrap();
    drop(ws);
    for n in 5..=9 {
        post_ok(&s, "conv-resume", message(n)).await;
    }
    let mut ws = connect(&s, "conv-resume", &tok, Some(4)).await;
    for want in 5..=9u64 {
        let f = next(&mut ws).await;
        assert_eq!(f["type"], "update");
        assert_eq!(f["seq"], want);
        assert_eq!(f["update"]["data"]["text"], format!("m{want}"));
    }
    post_ok(&s, "conv-resume", message(10)).await;
    assert_eq!(
        next(&mut ws).await["seq"],
        10,
        "live after the backlog, nothing repeated"
    );
    // Receipts show up in /state.
    ws.send(Message::Text(
        json!({"type":"ack","seq":10}).to_string().into(),
    ))
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let st: Value = get_json(
        s.url(&format!("/conversation/conv-resume/state?token={tok}")),
        None,
    )
    .await;
    let displays = st["displays"].as_array().unwrap();
    assert_eq!(displays.len(), 1);
    assert_eq!(displays[0]["ackedSeq"], 10);
}

#[tokio::test]
async fn since_older_than_the_retained_log_resets_with_a_snapshot() {
    let s = server(&[("DISPLAY_RETAIN", "10")]).await;
    let i = init(&s, "conv-reset", "demo-restaurant").await;
    for n in 1..=40 {
        post_ok(&s, "conv-reset", message(n)).await;
    }
    let mut ws = connect(&s, "conv-reset", &token(&i), Some(2)).await;
    let f = next(&mut ws).await;
    assert_eq!(f["type"], "reset");
    let snap = next(&mut ws).await;
    assert_eq!(snap["type"], "snapshot");
    assert_eq!(snap["seq"], 40);
    // Recent history is still exactly resumable.
    let mut ws = connect(&s, "conv-reset", &token(&i), Some(35)).await;
    for want in 36..=40u64 {
        assert_eq!(next(&mut ws).await["seq"], want);
    }
}

#[tokio::test]
async fn sse_streams_and_resumes_with_last_event_id() {
    let s = server(&[]).await;
    let i = init(&s, "conv-sse", "demo-restaurant").await;
    let tok = token(&i);
    for n in 1..=3 {
        post_ok(&s, "conv-sse", message(n)).await;
    }
    let res = client()
        .get(s.url(&format!("/conversation/conv-sse/events?token={tok}")))
        .header("last-event-id", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let mut body = res.bytes_stream();
    let mut text = String::new();
    let posting = {
        let base = s.base.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            client()
                .post(format!("{base}/conversation/conv-sse/update"))
                .bearer_auth(KEY)
                .json(&message(4))
                .send()
                .await
                .unwrap();
        })
    };
    while !text.contains("id: 4") && !text.contains("id:4") {
        let chunk = tokio::time::timeout(Duration::from_secs(10), body.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    posting.await.unwrap();
    let ids: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("id:"))
        .map(str::trim)
        .collect();
    assert_eq!(ids, ["2", "3", "4"], "{text}");
    assert!(text.contains("event: update") || text.contains("event:update"));
}

#[tokio::test]
async fn idle_sessions_hibernate_and_wake_with_sockets_still_open() {
    let s = server(&[("SESSION_IDLE", "200ms")]).await;
    let i = init(&s, "conv-sleep", "demo-restaurant").await;
    post_ok(&s, "conv-sleep", message(1)).await;
    let mut ws = connect(&s, "conv-sleep", &token(&i), None).await;
    assert_eq!(next(&mut ws).await["seq"], 1);
    assert!(s.running.app.hub.resident() >= 1);
    let mut slept = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if s.running.app.hub.resident() == 0 {
            slept = true;
            break;
        }
    }
    assert!(slept, "the session never left memory");
    let metrics = client()
        .get(s.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("stonepot_sessions_resident 0"),
        "{metrics}"
    );
    assert!(metrics.contains("stonepot_display_sockets_open 1"));
    // The next command wakes it from the store; the open socket gets the update.
    assert_eq!(post_ok(&s, "conv-sleep", message(2)).await, 2);
    let f = next(&mut ws).await;
    assert_eq!(
        (f["seq"].as_u64(), f["update"]["data"]["text"].as_str()),
        (Some(2), Some("m2"))
    );
}

#[tokio::test]
async fn a_stalled_socket_does_not_delay_others_and_is_closed() {
    let s = server(&[]).await;
    let i = init(&s, "conv-stall", "demo-restaurant").await;
    let tok = token(&i);
    // The stalled peer: completes the handshake with a tiny receive window, then never
    // reads, so its buffers fill after a few hundred kilobytes.
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    let stream = sock.connect(s.running.addr).await.unwrap();
    let url = format!(
        "ws://{}/conversation/conv-stall/display?token={tok}",
        s.running.addr
    );
    let (stalled, _) = tokio_tungstenite::client_async(url, stream).await.unwrap();
    let mut healthy = connect(&s, "conv-stall", &tok, None).await;
    assert_eq!(next(&mut healthy).await["type"], "snapshot");
    let big = "x".repeat(60_000);
    let started = std::time::Instant::now();
    let mut worst = Duration::ZERO;
    for n in 1..=300u64 {
        let t = std::time::Instant::now();
        post_ok(
            &s,
            "conv-stall",
            json!({"type":"card","data":{"title":format!("c{n}"),"body":big[..1900].to_string()}}),
        )
        .await;
        let f = next(&mut healthy).await;
        assert_eq!(f["seq"], n);
        worst = worst.max(t.elapsed());
        // Fill the stalled peer's buffers faster with large frames on another key.
        let _ = &big;
    }
    assert!(
        worst < Duration::from_secs(2),
        "healthy display waited {worst:?}"
    );
    // The stalled socket is eventually closed by the server (send timeout).
    let mut closed = false;
    for _ in 0..150 {
        if s.running.app.hub.displays("conv-stall").len() == 1 {
            closed = true;
            break;
        }
        post_ok(
            &s,
            "conv-stall",
            json!({"type":"card","data":{"title":"pad","body":big[..1900].to_string()}}),
        )
        .await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(stalled);
    assert!(
        closed,
        "the stalled display was never dropped ({:?})",
        started.elapsed()
    );
}

#[tokio::test]
async fn auth_failures() {
    let s = server(&[]).await;
    let c = client();
    // init without a key, and with a key of no use for that tenant.
    let res = c
        .post(s.url("/conversation/conv-auth/init"))
        .json(&json!({"tenantId":"demo-restaurant"}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(res, 401).await.0, "unauthorized");
    let res = c
        .post(s.url("/conversation/conv-auth/init"))
        .bearer_auth("sp_wrong")
        .json(&json!({"tenantId":"demo-restaurant"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let i = init(&s, "conv-auth", "demo-restaurant").await;
    let other = init(&s, "conv-other", "demo-restaurant").await;
    // update with a wrong key
    let res = c
        .post(s.url("/conversation/conv-auth/update"))
        .bearer_auth("sp_wrong")
        .json(&message(1))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    // Sockets: forged, other-session and missing tokens are closed with 4401.
    let tok = token(&i);
    let forged = format!("{}x", &tok[..tok.len() - 1]);
    for bad in [forged.as_str(), token(&other).as_str(), "nonsense"] {
        let mut ws = connect(&s, "conv-auth", bad, None).await;
        let msg = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        match msg {
            Message::Close(Some(frame)) => assert_eq!(u16::from(frame.code), 4401),
            other => panic!("expected a 4401 close, got {other:?}"),
        }
    }
    // SSE and state with a bad token: 401 JSON.
    let res = c
        .get(s.url(&format!("/conversation/conv-auth/events?token={forged}")))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(res, 401).await.0, "unauthorized");
    let res = c
        .get(s.url(&format!(
            "/conversation/conv-auth/state?token={}",
            token(&other)
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
}

#[tokio::test]
async fn every_4xx_of_the_display_api() {
    let s = server(&[]).await;
    let c = client();
    // Unknown session: 404 for reads.
    let res = c
        .get(s.url("/conversation/never-made/state"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(res, 404).await.0, "not_found");
    // Update before init: 409.
    let res = post(&s, "never-made", message(1)).await;
    assert_eq!(error_code(res, 409).await.0, "not_initialized");
    let i = init(&s, "conv-4xx", "demo-restaurant").await;
    // Re-init with the same body is idempotent; with another tenant it is 409.
    let again = init(&s, "conv-4xx", "demo-restaurant").await;
    assert_eq!(again["created"], false);
    assert_eq!(again["sessionId"], i["sessionId"]);
    let res = c
        .post(s.url("/conversation/conv-4xx/init"))
        .bearer_auth(KEY)
        .json(&json!({"tenantId":"demo-finance","category":"financial"}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(res, 409).await.0, "session_conflict");
    // Schema: 422 naming the field.
    let res = post(
        &s,
        "conv-4xx",
        json!({"type":"dish_card","data":{"name":"X","price":12.999}}),
    )
    .await;
    let (code, msg) = error_code(res, 422).await;
    assert_eq!(code, "invalid_component");
    assert!(msg.contains("price"), "{msg}");
    let res = post(
        &s,
        "conv-4xx",
        json!({"type":"account_card","data":{"name":"X","balance":1}}),
    )
    .await;
    assert_eq!(error_code(res, 422).await.0, "invalid_component");
    let res = post(&s, "conv-4xx", json!({"type":"message"})).await;
    let (_, msg) = error_code(res, 422).await;
    assert!(msg.starts_with("data"), "{msg}");
    let res = post(&s, "conv-4xx", json!({"op":"remove","key":"nothing-here"})).await;
    assert_eq!(error_code(res, 422).await.0, "invalid_component");
    // Over 64 KiB: 413.
    let res = post(
        &s,
        "conv-4xx",
        json!({"type":"message","data":{"text":"y".repeat(70_000)}}),
    )
    .await;
    assert_eq!(error_code(res, 413).await.0, "payload_too_large");
    // Bad since: 400 on SSE (before any stream starts).
    let res = c
        .get(s.url(&format!(
            "/conversation/conv-4xx/events?token={}&since=abc",
            token(&i)
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(res, 400).await.0, "invalid_since");
    let res = c
        .get(s.url(&format!(
            "/conversation/conv-4xx/events?token={}&since=99",
            token(&i)
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(res, 400).await.0, "invalid_since");
    // Bad session id: 400.
    let res = post(&s, "bad%20id", message(1)).await;
    assert_eq!(error_code(res, 400).await.0, "invalid_id");
}

#[tokio::test]
async fn keyed_updates_replace_and_remove_components() {
    let s = server(&[]).await;
    init(&s, "conv-keys", "demo-restaurant").await;
    let cart = |qty: u32| json!({"type":"cart","data":{"lines":[{"name":"Margherita Pizza","quantity":qty,"unitPrice":12.99}]}});
    post_ok(&s, "conv-keys", cart(1)).await;
    post_ok(&s, "conv-keys", cart(2)).await;
    post_ok(
        &s,
        "conv-keys",
        json!({"type":"message","key":"hello","data":{"text":"hi"}}),
    )
    .await;
    let st: Value = get_json(s.url("/conversation/conv-keys/state"), Some(KEY)).await;
    let comps = st["components"].as_object().unwrap();
    assert_eq!(comps.len(), 2, "the cart replaced itself: {st}");
    assert_eq!(comps["cart"]["data"]["lines"][0]["quantity"], 2);
    post_ok(&s, "conv-keys", json!({"op":"remove","key":"hello"})).await;
    let st: Value = get_json(s.url("/conversation/conv-keys/state"), Some(KEY)).await;
    assert_eq!(st["components"].as_object().unwrap().len(), 1);
    assert_eq!(st["seq"], 4);
}

#[tokio::test]
async fn a_restart_keeps_state_and_seq() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let s = start_in(dir, &[("STONEPOT_DEMO_KEY", KEY)]).await;
    init(&s, "conv-restart", "demo-finance").await;
    for n in 1..=5 {
        post_ok(&s, "conv-restart", message(n)).await;
    }
    post_ok(&s, "conv-restart", json!({"type":"account_card","data":{"name":"Everyday Checking","balance":4823.17,"kind":"checking"}})).await;
    let before: Value = get_json(s.url("/conversation/conv-restart/state"), Some(KEY)).await;
    let TestServer { running, dir, .. } = s;
    running.stop().await.unwrap();
    assert_eq!(dir.path(), path);
    let s = start_in(dir, &[("STONEPOT_DEMO_KEY", KEY)]).await;
    let after: Value = get_json(s.url("/conversation/conv-restart/state"), Some(KEY)).await;
    assert_eq!(after["seq"], 6);
    assert_eq!(after["components"], before["components"]);
    assert_eq!(post_ok(&s, "conv-restart", message(7)).await, 7);
}

/// The next presence frame.
async fn next_presence(ws: &mut Ws) -> Value {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a frame within 10 s")
            .expect("socket open")
            .unwrap();
        if let Message::Text(t) = msg {
            let v: Value = serde_json::from_str(&t).unwrap();
            if v["type"] == "presence" {
                return v;
            }
        }
    }
}

#[tokio::test]
async fn presence_reaches_the_sessions_sockets() {
    let s = server(&[]).await;
    let i = init(&s, "conv-presence", "demo-restaurant").await;
    let mut first = connect(&s, "conv-presence", &token(&i), None).await;
    let joined = next_presence(&mut first).await;
    assert_eq!(
        (joined["event"].as_str(), joined["count"].as_u64()),
        (Some("join"), Some(1))
    );
    let second = connect(&s, "conv-presence", &token(&i), None).await;
    let joined = next_presence(&mut first).await;
    assert_eq!(
        (joined["event"].as_str(), joined["count"].as_u64()),
        (Some("join"), Some(2))
    );
    drop(second);
    let left = next_presence(&mut first).await;
    assert_eq!(
        (left["event"].as_str(), left["count"].as_u64()),
        (Some("leave"), Some(1))
    );
    // An application-level ping gets a pong.
    first
        .send(Message::Text(r#"{"type":"ping"}"#.into()))
        .await
        .unwrap();
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(5), first.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if let Message::Text(t) = msg
            && t.contains("pong")
        {
            break;
        }
    }
}

#[tokio::test]
async fn expired_display_tokens_are_refused() {
    let s = server(&[("DISPLAY_TOKEN_TTL", "1s")]).await;
    let i = init(&s, "conv-expiry", "demo-restaurant").await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let mut ws = connect(&s, "conv-expiry", &token(&i), None).await;
    match tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap()
    {
        Message::Close(Some(frame)) => {
            assert_eq!(u16::from(frame.code), 4401);
            assert!(frame.reason.contains("expired"), "{}", frame.reason);
        }
        other => panic!("expected a 4401 close, got {other:?}"),
    }
    let res = client()
        .get(i["displayUrl"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(res, 401).await.0, "unauthorized");
}
