//! Many instances: two real `stonepot` processes on one PostgreSQL database and one NATS
//! JetStream server. Each test starts its own nats-server (so it may stop and restart it)
//! from `STONEPOT_TEST_NATS_BIN`; scripts/test.sh sets it and STONEPOT_TEST_NATS_URL with
//! scripts/nats.sh. Without them the tests skip (CI always sets them).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::{Proc, client, spawn_server};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use stonepot_store::testing;
use tokio_tungstenite::tungstenite::Message;

const KEY: &str = "sp_scaleout_key";
const SIGNING_KEY: &str = "scaleout-signing-key-0123456789abcdef";

/// A nats-server with JetStream in a temp dir, on a fixed port so it can be restarted.
struct Nats {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
    bin: String,
}

impl Nats {
    /// None (skip) unless the test environment provides nats-server.
    fn start() -> Option<Nats> {
        std::env::var("STONEPOT_TEST_NATS_URL").ok()?;
        let bin = std::env::var("STONEPOT_TEST_NATS_BIN").unwrap_or_else(|_| "nats-server".into());
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut n = Nats {
            child: None,
            port,
            dir: tempfile::tempdir().unwrap(),
            bin,
        };
        n.run();
        Some(n)
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    fn run(&mut self) {
        let child = Command::new(&self.bin)
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-js",
                "-sd",
            ])
            .arg(self.dir.path().join("js"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server runs");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.stop();
    }
}

struct Cluster {
    a: Proc,
    b: Proc,
    nats: Nats,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
    pg: String,
}

fn instance(nats: &Nats, pg: &str, dir: &std::path::Path, extra: &[(&str, &str)]) -> Proc {
    let url = nats.url();
    let mut env = vec![
        ("DATABASE_URL", pg),
        ("NATS_URL", url.as_str()),
        ("STONEPOT_DEMO_KEY", KEY),
        ("SIGNING_KEY", SIGNING_KEY),
        ("DATA_DIR", dir.to_str().unwrap()),
        ("SESSION_IDLE", "2s"),
    ];
    env.extend_from_slice(extra);
    spawn_server(&["--demo"], &env, dir)
}

async fn cluster(name: &str, extra: &[(&str, &str)]) -> Option<Cluster> {
    let nats = Nats::start()?;
    let pg = testing::fresh_postgres_url(name)
        .await
        .expect("PostgreSQL is required: run scripts/test.sh");
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // One after the other: both seed the demo tenants on first start.
    let a = instance(&nats, &pg, da.path(), extra);
    let b = instance(&nats, &pg, db.path(), extra);
    Some(Cluster {
        a,
        b,
        nats,
        _dirs: (da, db),
        pg,
    })
}

async fn init(base: &str, id: &str) -> String {
    let res = client()
        .post(format!("{base}/conversation/{id}/init"))
        .bearer_auth(KEY)
        .json(&json!({"tenantId": "demo-restaurant", "category": "restaurant"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let v: Value = res.json().await.unwrap();
    v["displayToken"].as_str().unwrap().to_string()
}

async fn post(base: &str, id: &str, text: &str) -> reqwest::Response {
    client()
        .post(format!("{base}/conversation/{id}/update"))
        .bearer_auth(KEY)
        .json(&json!({"type": "message", "data": {"text": text}}))
        .send()
        .await
        .unwrap()
}

async fn post_ok(base: &str, id: &str, text: &str) -> u64 {
    let res = post(base, id, text).await;
    let status = res.status();
    let v: Value = res.json().await.unwrap();
    assert_eq!(status, 200, "{v}");
    v["seq"].as_u64().unwrap()
}

/// `/state` of a session, which must answer 200.
async fn state(base: &str, id: &str) -> Value {
    let res = client()
        .get(format!("{base}/conversation/{id}/state"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    let status = res.status();
    let v: Value = res.json().await.unwrap();
    assert_eq!(status, 200, "{v}");
    v
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(addr: SocketAddr, id: &str, token: &str, since: Option<u64>) -> Ws {
    let mut url = format!("ws://{addr}/conversation/{id}/display?token={token}");
    if let Some(n) = since {
        url.push_str(&format!("&since={n}"));
    }
    tokio_tungstenite::connect_async(url).await.unwrap().0
}

/// The next snapshot or update frame (presence skipped); None when the socket ends.
async fn next(ws: &mut Ws, within: Duration) -> Option<Value> {
    loop {
        let msg = tokio::time::timeout(within, ws.next())
            .await
            .expect("a frame in time")?;
        match msg {
            Ok(Message::Text(t)) => {
                let v: Value = serde_json::from_str(&t).unwrap();
                if v["type"] == "snapshot" || v["type"] == "update" || v["type"] == "reset" {
                    return Some(v);
                }
            }
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

fn text_of(update: &Value) -> String {
    update["update"]["data"]["text"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_on_one_instance_sees_updates_posted_to_the_other_in_one_gap_free_order() {
    let Some(c) = cluster("scaleout_order", &[]).await else {
        eprintln!("skipped: STONEPOT_TEST_NATS_URL is not set (run scripts/test.sh)");
        return;
    };
    let (a, b) = (c.a.base(), c.b.base());
    let token = init(&a, "conv-x").await;
    let mut ws = connect(c.a.addr, "conv-x", &token, None).await;
    let snap = next(&mut ws, Duration::from_secs(10)).await.unwrap();
    assert_eq!(
        (snap["type"].as_str(), snap["seq"].as_u64()),
        (Some("snapshot"), Some(0))
    );

    // Posted to B, seen on A's socket, in order.
    for i in 1..=10u64 {
        assert_eq!(post_ok(&b, "conv-x", &format!("b{i}")).await, i);
    }
    for i in 1..=10u64 {
        let u = next(&mut ws, Duration::from_secs(10)).await.unwrap();
        assert_eq!(u["seq"], i, "{u}");
        assert_eq!(text_of(&u), format!("b{i}"));
    }

    // Both instances write one session at once: every post lands exactly once, with
    // seqs 11..=70 and no gap or fork, and the socket on A sees them in that order.
    let mut tasks = Vec::new();
    for (base, tag) in [(a.clone(), "a"), (b.clone(), "b")] {
        for w in 0..3 {
            let base = base.clone();
            tasks.push(tokio::spawn(async move {
                let mut seqs = Vec::new();
                for i in 0..10 {
                    seqs.push(post_ok(&base, "conv-x", &format!("{tag}{w}-{i}")).await);
                }
                seqs
            }));
        }
    }
    let mut seqs = BTreeSet::new();
    for t in tasks {
        for s in t.await.unwrap() {
            assert!(seqs.insert(s), "seq {s} given twice");
        }
    }
    assert_eq!(seqs, (11..=70).collect::<BTreeSet<u64>>());
    let mut texts = BTreeSet::new();
    for i in 11..=70u64 {
        let u = next(&mut ws, Duration::from_secs(10)).await.unwrap();
        assert_eq!(u["seq"], i, "{u}");
        assert!(texts.insert(text_of(&u)), "delivered twice: {u}");
    }
    assert_eq!(texts.len(), 60);

    // Both instances report the same state, and resuming on B from A's seq replays the
    // same entries.
    for base in [&a, &b] {
        let st: Value = client()
            .get(format!("{base}/conversation/conv-x/state"))
            .bearer_auth(KEY)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(st["seq"], 70, "{st}");
        assert_eq!(st["components"].as_object().unwrap().len(), 70);
    }
    let mut resumed = connect(c.b.addr, "conv-x", &token, Some(60)).await;
    for i in 61..=70u64 {
        let u = next(&mut resumed, Duration::from_secs(10)).await.unwrap();
        assert_eq!(u["seq"], i, "{u}");
    }

    // Presence and receipts cross instances: A's socket acknowledges 70, and /state on B
    // lists both displays (A's and B's) with A's receipt.
    ws.send(Message::text(r#"{"type":"ack","seq":70}"#))
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let st: Value = client()
            .get(format!("{b}/conversation/conv-x/state"))
            .bearer_auth(KEY)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let displays = st["displays"].as_array().unwrap();
        if displays.len() == 2 && displays.iter().any(|d| d["ackedSeq"] == 70) {
            break;
        }
        assert!(Instant::now() < deadline, "displays across instances: {st}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A display leaving B is announced on A's socket, counting every instance.
    drop(resumed);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if let Message::Text(t) = msg {
            let v: Value = serde_json::from_str(&t).unwrap();
            if v["type"] == "presence" && v["event"] == "leave" {
                assert_eq!(v["count"], 1, "{v}");
                break;
            }
        }
        assert!(Instant::now() < deadline, "no leave frame");
    }

    // `stonepot backup` copies the database and snapshots the stream beside it.
    let out_dir = tempfile::tempdir().unwrap();
    let path = out_dir.path().join("b1.dump");
    let out = common::bin()
        .args(["backup", "--out", path.to_str().unwrap()])
        .current_dir(out_dir.path())
        .env("DATABASE_URL", &c.pg)
        .env("NATS_URL", c.nats.url())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("backed up JetStream stream CONVERSATIONS"),
        "{stdout}"
    );
    let lines = std::fs::read_to_string(out_dir.path().join("b1.dump.jetstream.jsonl")).unwrap();
    let entries: Vec<Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|v: &Value| v["session"] == "conv-x")
        .collect();
    assert_eq!(
        entries
            .iter()
            .map(|e| e["seq"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        (1..=70).collect::<Vec<u64>>()
    );
    let first: Value = serde_json::from_str(entries[0]["envelope"].as_str().unwrap()).unwrap();
    assert_eq!(first["data"]["text"], "b1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_an_instance_mid_stream_and_resuming_on_the_other_loses_and_repeats_nothing() {
    let Some(mut c) = cluster("scaleout_kill", &[]).await else {
        eprintln!("skipped: STONEPOT_TEST_NATS_URL is not set (run scripts/test.sh)");
        return;
    };
    let b = c.b.base();
    let token = init(&b, "conv-k").await;
    let mut ws = connect(c.a.addr, "conv-k", &token, None).await;
    next(&mut ws, Duration::from_secs(10)).await.unwrap();

    // A writer posts 60 updates to B while the socket on A reads.
    let writer = {
        let b = b.clone();
        tokio::spawn(async move {
            for i in 1..=60u64 {
                assert_eq!(post_ok(&b, "conv-k", &format!("u{i}")).await, i);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    let mut seen = Vec::new();
    while seen.len() < 15 {
        let u = next(&mut ws, Duration::from_secs(10)).await.unwrap();
        seen.push(u["seq"].as_u64().unwrap());
    }
    // A dies without warning; the display reconnects to B with what it has.
    c.a.signal("KILL");
    c.a.wait(Duration::from_secs(10));
    while let Some(u) = next(&mut ws, Duration::from_secs(10)).await {
        seen.push(u["seq"].as_u64().unwrap());
    }
    let since = *seen.last().unwrap();
    let mut ws = connect(c.b.addr, "conv-k", &token, Some(since)).await;
    writer.await.unwrap();
    while seen.len() < 60 {
        let u = next(&mut ws, Duration::from_secs(10)).await.unwrap();
        assert_eq!(u["type"], "update", "{u}");
        seen.push(u["seq"].as_u64().unwrap());
    }
    assert_eq!(seen, (1..=60).collect::<Vec<u64>>());
    // Nothing more arrives: no duplicates trail behind.
    assert!(
        tokio::time::timeout(
            Duration::from_millis(500),
            next(&mut ws, Duration::from_secs(1))
        )
        .await
        .is_err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_nats_writes_are_refused_with_503_and_service_resumes_when_it_returns() {
    let Some(mut c) = cluster("scaleout_outage", &[]).await else {
        eprintln!("skipped: STONEPOT_TEST_NATS_URL is not set (run scripts/test.sh)");
        return;
    };
    let a = c.a.base();
    let token = init(&a, "conv-o").await;
    assert_eq!(post_ok(&a, "conv-o", "before").await, 1);
    // A display on B stays connected through the outage.
    let mut ws = connect(c.b.addr, "conv-o", &token, None).await;
    let snap = next(&mut ws, Duration::from_secs(10)).await.unwrap();
    assert_eq!(snap["seq"], 1, "{snap}");

    c.nats.stop();
    // Give the client a moment to notice the connection is gone.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let res = post(&a, "conv-o", "during").await;
    assert_eq!(res.status(), 503);
    assert!(res.headers().contains_key("retry-after"));
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["error"]["code"], "unavailable", "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("bus"),
        "{v}"
    );
    let res = client().get(format!("{a}/health")).send().await.unwrap();
    assert_eq!(res.status(), 503);
    let h: Value = res.json().await.unwrap();
    assert_eq!(h["bus"], "error", "{h}");
    assert!(
        h["failing"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f.as_str().unwrap().starts_with("bus:")),
        "{h}"
    );
    assert_eq!(h["database"], "ok");
    // Writes on the other instance are refused too, and reads of the stored state go on.
    assert_eq!(post(&c.b.base(), "conv-o", "during-b").await.status(), 503);
    let st = state(&c.b.base(), "conv-o").await;
    assert_eq!(st["seq"], 1, "{st}");

    c.nats.run();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let res = client().get(format!("{a}/health")).send().await.unwrap();
        if res.status() == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no recovery: {}",
            res.text().await.unwrap()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The refused write left nothing behind: the next one is seq 2, on either instance.
    assert_eq!(post_ok(&a, "conv-o", "after").await, 2);
    assert_eq!(post_ok(&c.b.base(), "conv-o", "after-b").await, 3);
    let st = state(&c.b.base(), "conv-o").await;
    let texts: Vec<String> = st["updates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["update"]["data"]["text"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(texts, ["before", "after", "after-b"]);
    // The display on B, connected all along, receives what came after, and nothing else.
    for (seq, text) in [(2, "after"), (3, "after-b")] {
        let u = next(&mut ws, Duration::from_secs(10)).await.unwrap();
        assert_eq!(
            (u["seq"].as_u64(), text_of(&u)),
            (Some(seq), text.to_string()),
            "{u}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_hold_across_both_instances() {
    let Some(c) = cluster(
        "scaleout_limits",
        &[("RATE_LIMIT_REQUESTS", "10"), ("RATE_LIMIT_WINDOW", "1m")],
    )
    .await
    else {
        eprintln!("skipped: STONEPOT_TEST_NATS_URL is not set (run scripts/test.sh)");
        return;
    };
    clear_of_window_end().await;
    let mut allowed = 0;
    let mut limited = 0;
    for i in 0..16 {
        let base = if i % 2 == 0 { c.a.base() } else { c.b.base() };
        let res = client()
            .get(format!("{base}/api/status"))
            .send()
            .await
            .unwrap();
        match res.status().as_u16() {
            200 => allowed += 1,
            429 => {
                assert!(res.headers().contains_key("retry-after"));
                limited += 1;
            }
            s => panic!("status {s}"),
        }
    }
    // 10 per window from this address in total, not 10 per instance.
    assert_eq!((allowed, limited), (10, 6));
}

/// Runs `stonepot ARGS` against the cluster's database and NATS; (success, stdout, stderr).
fn tool(nats: &Nats, pg: &str, dir: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = common::bin()
        .args(args)
        .current_dir(dir)
        .env_remove("ENVIRONMENT")
        .env("DATABASE_URL", pg)
        .env("NATS_URL", nats.url())
        .env("DATA_DIR", dir)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_puts_the_stream_back_so_displays_resume_with_since() {
    let Some(c) = cluster("scaleout_restore", &[]).await else {
        eprintln!("skipped: STONEPOT_TEST_NATS_URL is not set (run scripts/test.sh)");
        return;
    };
    let token = init(&c.a.base(), "conv-r").await;
    init(&c.a.base(), "conv-other").await;
    for i in 1..=5u64 {
        let base = if i % 2 == 0 { c.a.base() } else { c.b.base() };
        assert_eq!(post_ok(&base, "conv-r", &format!("r{i}")).await, i);
    }
    assert_eq!(post_ok(&c.a.base(), "conv-other", "o1").await, 1);
    let Cluster {
        a,
        b,
        nats,
        _dirs,
        pg,
        ..
    } = c;
    // The documented procedure: stop every instance, back up, restore, start again.
    drop((a, b));
    let work = tempfile::tempdir().unwrap();
    let backup = work.path().join("b.db");
    let backup_s = backup.to_str().unwrap();
    let (ok, stdout, stderr) = tool(&nats, &pg, work.path(), &["backup", "--out", backup_s]);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("backed up JetStream stream CONVERSATIONS"),
        "{stdout}"
    );

    // Disaster: the stream is gone.
    let js = async_nats::jetstream::new(async_nats::connect(nats.url()).await.unwrap());
    js.delete_stream("CONVERSATIONS").await.unwrap();

    let (ok, stdout, stderr) = tool(&nats, &pg, work.path(), &["restore", "--from", backup_s]);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("restored JetStream stream CONVERSATIONS")
            && stdout.contains("6 messages of 2 sessions"),
        "{stdout}"
    );
    // Restoring over a stream that holds messages is refused, and changes nothing…
    let (ok, _, stderr) = tool(&nats, &pg, work.path(), &["restore", "--from", backup_s]);
    assert!(!ok);
    assert!(
        stderr.contains("already holds 6 messages") && stderr.contains("--force"),
        "{stderr}"
    );
    // …unless forced, which replaces them.
    let (ok, stdout, stderr) = tool(
        &nats,
        &pg,
        work.path(),
        &["restore", "--from", backup_s, "--force"],
    );
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("6 messages it held were purged first"),
        "{stdout}"
    );
    let mut stream = js.get_stream("CONVERSATIONS").await.unwrap();
    assert_eq!(stream.info().await.unwrap().state.messages, 6);

    // A fresh instance: a display resumes after seq 2 with exactly 3, 4, 5, in order.
    let d = tempfile::tempdir().unwrap();
    let p = instance(&nats, &pg, d.path(), &[]);
    let mut ws = connect(p.addr, "conv-r", &token, Some(2)).await;
    for seq in 3..=5u64 {
        let u = next(&mut ws, Duration::from_secs(10)).await.unwrap();
        assert_eq!(
            (u["type"].as_str(), u["seq"].as_u64(), text_of(&u)),
            (Some("update"), Some(seq), format!("r{seq}")),
            "{u}"
        );
    }
    // And the session goes on from the restored seq, on the same socket.
    assert_eq!(post_ok(&p.base(), "conv-r", "r6").await, 6);
    let u = next(&mut ws, Duration::from_secs(10)).await.unwrap();
    assert_eq!(
        (u["seq"].as_u64(), text_of(&u)),
        (Some(6), "r6".to_string())
    );
    let texts: Vec<String> = state(&p.base(), "conv-r").await["updates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["update"]["data"]["text"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(texts, ["r1", "r2", "r3", "r4", "r5", "r6"]);
}

/// Shared counters are per fixed one-minute window: keep a test clear of its end.
async fn clear_of_window_end() {
    let into_window = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        % 60_000;
    if into_window > 45_000 {
        tokio::time::sleep(Duration::from_millis(60_100 - into_window as u64)).await;
    }
}

const ADMIN: &str = "scaleout-admin-token";

/// GET the tenant's orders on `base` with `key`: (status, error code when refused).
async fn orders_with(base: &str, key: &str) -> (u16, String) {
    let res = client()
        .get(format!("{base}/api/tenants/demo-restaurant/orders"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    if status == 429 {
        assert!(res.headers().contains_key("retry-after"));
    }
    let code = if status == 200 {
        String::new()
    } else {
        let v: Value = res.json().await.unwrap();
        v["error"]["code"].as_str().unwrap_or_default().to_string()
    };
    (status, code)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_and_tenant_limits_hold_across_both_instances_and_wrong_keys_spend_nothing() {
    let Some(c) = cluster(
        "scaleout_key_limits",
        &[
            ("RATE_LIMIT_REQUESTS", "1000"),
            ("RATE_LIMIT_KEY_REQUESTS", "4"),
            ("RATE_LIMIT_TENANT_REQUESTS", "6"),
            ("RATE_LIMIT_WINDOW", "1m"),
            ("THEME_API_TOKEN", ADMIN),
        ],
    )
    .await
    else {
        eprintln!("skipped: STONEPOT_TEST_NATS_URL is not set (run scripts/test.sh)");
        return;
    };
    // A second key of the tenant (the admin is not limited per tenant).
    let res = client()
        .post(format!(
            "{}/api/admin/tenants/demo-restaurant/keys",
            c.b.base()
        ))
        .bearer_auth(ADMIN)
        .json(&json!({"label": "second", "role": "staff"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let second = res.json::<Value>().await.unwrap()["key"]
        .as_str()
        .unwrap()
        .to_string();
    clear_of_window_end().await;
    let base = |i: usize| {
        if i.is_multiple_of(2) {
            c.a.base()
        } else {
            c.b.base()
        }
    };
    // Anyone can send wrong keys to either instance: refused, and the tenant's budget is
    // untouched.
    for i in 0..12 {
        assert_eq!(
            orders_with(&base(i), "sp_wrong_key").await,
            (401, "unauthorized".into())
        );
    }
    // The key's 4 across both instances together, not 4 on each.
    let mut got = Vec::new();
    for i in 0..6 {
        got.push(orders_with(&base(i), KEY).await);
    }
    let ok = (200, String::new());
    let key_limited = (429, "key_rate_limited".to_string());
    assert_eq!(
        got,
        [
            ok.clone(),
            ok.clone(),
            ok.clone(),
            ok.clone(),
            key_limited.clone(),
            key_limited
        ]
    );
    // The tenant's 6 across both: the first key spent 4, so the second has 2 left.
    let mut got = Vec::new();
    for i in 0..4 {
        got.push(orders_with(&base(i + 1), &second).await);
    }
    let tenant_limited = (429, "tenant_rate_limited".to_string());
    assert_eq!(
        got,
        [ok.clone(), ok, tenant_limited.clone(), tenant_limited]
    );
}

/// A TCP proxy in front of PostgreSQL that can cut every connection and refuse new ones,
/// which is what the instances see when the database goes away (without stopping the
/// PostgreSQL the other tests share).
struct PgProxy {
    addr: SocketAddr,
    up: std::sync::Arc<std::sync::atomic::AtomicBool>,
    cut: std::sync::Arc<std::sync::Mutex<tokio_util::sync::CancellationToken>>,
}

impl PgProxy {
    async fn start(target: SocketAddr) -> PgProxy {
        use std::sync::atomic::Ordering;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let up = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let cut = std::sync::Arc::new(std::sync::Mutex::new(
            tokio_util::sync::CancellationToken::new(),
        ));
        let (u, c) = (up.clone(), cut.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !u.load(Ordering::SeqCst) {
                    continue; // dropped: the client sees the connection close at once
                }
                let token = c.lock().unwrap().clone();
                tokio::spawn(async move {
                    let Ok(mut out) = tokio::net::TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut out) => {}
                        _ = token.cancelled() => {}
                    }
                });
            }
        });
        PgProxy { addr, up, cut }
    }

    /// The database URL `url` with its host and port replaced by the proxy's.
    fn url(&self, url: &str) -> String {
        let mut u = reqwest::Url::parse(url).unwrap();
        u.set_port(Some(self.addr.port())).unwrap();
        u.to_string()
    }

    fn set(&self, up: bool) {
        self.up.store(up, std::sync::atomic::Ordering::SeqCst);
        if !up {
            let mut cut = self.cut.lock().unwrap();
            cut.cancel();
            *cut = tokio_util::sync::CancellationToken::new();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_postgres_writes_are_refused_with_503_or_kept_and_service_resumes() {
    let Some(nats) = Nats::start() else {
        eprintln!("skipped: STONEPOT_TEST_NATS_URL is not set (run scripts/test.sh)");
        return;
    };
    let pg = testing::fresh_postgres_url("scaleout_pg_outage")
        .await
        .expect("PostgreSQL is required: run scripts/test.sh");
    let parsed = reqwest::Url::parse(&pg).unwrap();
    let target: SocketAddr = format!(
        "{}:{}",
        parsed.host_str().unwrap(),
        parsed.port().unwrap_or(5432)
    )
    .parse()
    .unwrap();
    let proxy = PgProxy::start(target).await;
    let url = proxy.url(&pg);
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = instance(&nats, &url, da.path(), &[]);
    let b = instance(&nats, &url, db.path(), &[]);
    let (ba, bb) = (a.base(), b.base());
    init(&ba, "conv-p").await;
    assert_eq!(post_ok(&ba, "conv-p", "before").await, 1);

    proxy.set(false);
    // A new session needs the database: refused, naming it.
    let res = client()
        .post(format!("{bb}/conversation/conv-new/init"))
        .bearer_auth(KEY)
        .json(&json!({"tenantId": "demo-restaurant", "category": "restaurant"}))
        .send()
        .await
        .unwrap();
    let status = res.status();
    let retry = res.headers().contains_key("retry-after");
    let v: Value = res.json().await.unwrap();
    assert_eq!(status, 503, "{v}");
    assert!(retry);
    assert_eq!(v["error"]["code"], "unavailable", "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("database"),
        "{v}"
    );
    let res = client().get(format!("{ba}/health")).send().await.unwrap();
    assert_eq!(res.status(), 503);
    let h: Value = res.json().await.unwrap();
    assert_eq!(
        (h["database"].as_str(), h["bus"].as_str()),
        (Some("error"), Some("ok")),
        "{h}"
    );
    // Updates to the existing session on either instance: each is either refused (503)
    // or acknowledged — and then it must be there, in order, after the database returns.
    let mut acked = vec!["before".to_string()];
    for (i, base) in [&ba, &bb, &ba, &bb].into_iter().enumerate() {
        let text = format!("during-{i}");
        let res = post(base, "conv-p", &text).await;
        match res.status().as_u16() {
            200 => acked.push(text),
            503 => {
                let v: Value = res.json().await.unwrap();
                assert_eq!(v["error"]["code"], "unavailable", "{v}");
            }
            s => panic!("{s}: {}", res.text().await.unwrap()),
        }
    }

    proxy.set(true);
    let deadline = Instant::now() + Duration::from_secs(20);
    for base in [&ba, &bb] {
        loop {
            let res = client().get(format!("{base}/health")).send().await.unwrap();
            if res.status() == 200 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "no recovery: {}",
                res.text().await.unwrap()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    init(&bb, "conv-new").await;
    let seq = post_ok(&bb, "conv-p", "after").await;
    acked.push("after".into());
    assert_eq!(seq, acked.len() as u64);
    // Both instances agree, and the stored state holds every acknowledged update once.
    for base in [&ba, &bb] {
        let st = state(base, "conv-p").await;
        assert_eq!(st["seq"], seq, "{st}");
        let texts: Vec<String> = st["updates"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["update"]["data"]["text"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(texts, acked, "{st}");
        assert_eq!(st["components"].as_object().unwrap().len(), acked.len());
    }
    // So does the database itself: entries logged while it was away were replayed into it.
    let store = stonepot_store::Store::connect(&pg).await.unwrap();
    assert_eq!(
        store.display_session("conv-p").await.unwrap().unwrap().seq,
        seq
    );
    assert_eq!(
        store.display_components("conv-p").await.unwrap().len(),
        acked.len()
    );
}
