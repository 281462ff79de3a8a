//! The session-log contract on NATS JetStream, with two log instances (as two processes
//! would have) on one stream. Needs STONEPOT_TEST_NATS_URL (scripts/test.sh starts a
//! nats-server with JetStream); skips without it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;
use stonepot_domain::demo;
use stonepot_server::display::hub::{Frame, Utf8Bytes};
use stonepot_server::display::jetstream::{JetStreamLog, JetStreamSettings};
use stonepot_server::display::log::{LogError, SessionLog};
use stonepot_store::Store;
use tokio_util::sync::CancellationToken;

fn settings(url: &str, stream: &str, retain: i64) -> JetStreamSettings {
    JetStreamSettings {
        url: url.to_string(),
        token: None,
        stream: stream.to_string(),
        prefix: format!("test.{}", stream.to_ascii_lowercase()),
        max_per_session: retain,
        max_age: Duration::ZERO,
        max_bytes: -1,
        replicas: 1,
        timeout: Duration::from_secs(3),
        recent: 1024,
    }
}

fn env(n: u64) -> String {
    format!("{{\"data\":{{\"text\":\"{n}\"}},\"key\":\"k{n}\",\"type\":\"message\"}}")
}

async fn store() -> Store {
    let store = Store::connect("sqlite::memory:").await.unwrap();
    store.migrate().await.unwrap();
    let t = demo::restaurant_tenant();
    store.upsert_tenant(&t).await.unwrap();
    store
        .create_display_session("conv.1:x", &t.id, t.category, "{}")
        .await
        .unwrap();
    store
}

async fn recv_update(rx: &mut tokio::sync::broadcast::Receiver<Frame>) -> Frame {
    loop {
        let f = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("a frame within 5 s")
            .unwrap();
        if f.seq.is_some() {
            return f;
        }
    }
}

#[tokio::test]
async fn two_writers_share_one_gap_free_log_and_every_subscriber_sees_it() {
    let Ok(url) = std::env::var("STONEPOT_TEST_NATS_URL") else {
        eprintln!("skipped: STONEPOT_TEST_NATS_URL is not set (run scripts/test.sh)");
        return;
    };
    let stream = format!("T{}", uuid::Uuid::new_v4().simple());
    let stop = CancellationToken::new();
    // Two "processes": separate connections, and separate stores (the materialized
    // state is per store here, which also shows the log alone decides the order).
    let (sa, sb) = (store().await, store().await);
    let a: Arc<JetStreamLog> =
        JetStreamLog::connect(settings(&url, &stream, 5), sa.clone(), 64, stop.clone())
            .await
            .unwrap();
    let b: Arc<JetStreamLog> =
        JetStreamLog::connect(settings(&url, &stream, 5), sb.clone(), 64, stop.clone())
            .await
            .unwrap();
    let t = demo::restaurant_tenant();
    let id = "conv.1:x";
    let mut rx_b = b.subscribe(id);
    // The fan-out consumers start at "new": let them attach before appending.
    tokio::time::sleep(Duration::from_millis(200)).await;

    for n in 1..=4 {
        assert_eq!(a.append(id, &t.id, n - 1, &env(n)).await.unwrap(), n);
    }
    // B is behind (it expected 2): refused, never forked.
    assert!(matches!(
        b.append(id, &t.id, 2, &env(99)).await,
        Err(LogError::Conflict)
    ));
    // B at the right seq continues the same log.
    for n in 5..=12 {
        let w = if n % 2 == 0 { &a } else { &b };
        assert_eq!(w.append(id, &t.id, n - 1, &env(n)).await.unwrap(), n);
    }
    // A subscriber on B got every entry, A's and its own, in order.
    for n in 1..=12u64 {
        let f = recv_update(&mut rx_b).await;
        assert_eq!(f.seq, Some(n));
        let v: serde_json::Value = serde_json::from_str(f.text.as_str()).unwrap();
        assert_eq!(v["update"]["data"]["text"], n.to_string());
    }
    assert_eq!(b.head(id), Some(12));

    // Reads work from either side; retention keeps the last 5 per session.
    assert_eq!(a.oldest(id).await.unwrap(), Some(8));
    let after = b.read_after(id, 9, 100).await.unwrap();
    assert_eq!(
        after.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [10, 11, 12]
    );
    assert_eq!(after[0].envelope, env(10));
    assert!(after[0].at_ms > 0);
    let last = a.read_last(id, 2).await.unwrap();
    assert_eq!(last.iter().map(|e| e.seq).collect::<Vec<_>>(), [11, 12]);
    assert_eq!(
        b.read_after(id, 2, 3)
            .await
            .unwrap()
            .iter()
            .map(|e| e.seq)
            .collect::<Vec<_>>(),
        [8, 9, 10]
    );
    assert!(a.read_after(id, 12, 10).await.unwrap().is_empty());
    assert_eq!(a.oldest("conv-none").await.unwrap(), None);

    // Each store followed the log: the entries a writer appended are materialized there,
    // and catch_up fills in the ones another writer appended.
    let before = sb.display_session(id).await.unwrap().unwrap().seq;
    assert!(before < 12);
    b.catch_up(id, &t.id, before).await.unwrap();
    assert_eq!(sb.display_session(id).await.unwrap().unwrap().seq, 12);
    let comps = sb.display_components(id).await.unwrap();
    assert!(comps.iter().any(|c| c.key == "k12"));

    // Ephemeral frames reach subscribers on other instances but not the log.
    a.publish_ephemeral(
        id,
        Frame {
            seq: None,
            event: "presence",
            text: Utf8Bytes::from_static("{\"type\":\"presence\"}"),
        },
    );
    let f = tokio::time::timeout(Duration::from_secs(5), rx_b.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((f.seq, f.event), (None, "presence"));
    assert_eq!(b.read_last(id, 1).await.unwrap()[0].seq, 12);
    stop.cancel();
}

#[tokio::test]
async fn a_session_logged_before_jetstream_continues_from_its_stored_seq() {
    let Ok(url) = std::env::var("STONEPOT_TEST_NATS_URL") else {
        eprintln!("skipped: STONEPOT_TEST_NATS_URL is not set (run scripts/test.sh)");
        return;
    };
    let stream = format!("T{}", uuid::Uuid::new_v4().simple());
    let stop = CancellationToken::new();
    let s = store().await;
    let t = demo::restaurant_tenant();
    let id = "conv.1:x";
    // Three updates on the single-machine log first.
    for n in 1..=3 {
        s.append_display_update(id, &t.id, n - 1, &env(n), 100)
            .await
            .unwrap();
    }
    let log = JetStreamLog::connect(settings(&url, &stream, 100), s.clone(), 64, stop.clone())
        .await
        .unwrap();
    assert_eq!(log.append(id, &t.id, 3, &env(4)).await.unwrap(), 4);
    assert_eq!(s.display_session(id).await.unwrap().unwrap().seq, 4);
    // Now the subject holds seq 4: a writer still at 3 is refused.
    assert!(matches!(
        log.append(id, &t.id, 3, &env(9)).await,
        Err(LogError::Conflict)
    ));
    stop.cancel();
}

#[tokio::test]
async fn a_server_without_jetstream_is_refused_at_start_up_with_a_clear_error() {
    let Ok(_) = std::env::var("STONEPOT_TEST_NATS_URL") else {
        eprintln!("skipped: STONEPOT_TEST_NATS_URL is not set (run scripts/test.sh)");
        return;
    };
    let bin = std::env::var("STONEPOT_TEST_NATS_BIN").unwrap_or_else(|_| "nats-server".into());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = std::process::Command::new(bin)
        .args(["-a", "127.0.0.1", "-p", &port.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let url = format!("nats://127.0.0.1:{port}");
    let err = JetStreamLog::connect(
        settings(&url, "CONVERSATIONS", 10),
        store().await,
        64,
        CancellationToken::new(),
    )
    .await
    .err()
    .expect("refused");
    let msg = err.to_string();
    let _ = child.kill();
    let _ = child.wait();
    assert!(msg.contains("has no JetStream"), "{msg}");
    assert!(msg.contains("NATS_URL"), "{msg}");
}

/// Displays of one session on one instance, all behind their (tiny) channel at once.
const LAGGING: usize = 40;

/// Opens [`LAGGING`] feeds on a hub over JetStream with `recent` entries kept in memory,
/// makes 20 updates without reading, then reads every feed to the end; returns the log
/// reads opened on JetStream and answered from memory meanwhile, and the catch-ups.
async fn lagging_displays(url: &str, recent: usize) -> (u64, u64, u64) {
    use stonepot_server::display::feed::Feed;
    use stonepot_server::display::hub::UpdateCommand;
    use stonepot_server::display::{Hub, HubConfig};
    let stream = format!("T{}", uuid::Uuid::new_v4().simple());
    let stop = CancellationToken::new();
    let s = store().await;
    let mut st = settings(url, &stream, 100);
    st.recent = recent;
    let log = JetStreamLog::connect(st, s.clone(), 4, stop.clone())
        .await
        .unwrap();
    let hub = Hub::with_log(
        s,
        HubConfig {
            retain: 100,
            idle: Duration::from_secs(60),
            channel_capacity: 4,
        },
        log.clone(),
        None,
    );
    let id = "conv.1:x";
    let mut feeds = Vec::new();
    for _ in 0..LAGGING {
        let (feed, initial) = Feed::open(&hub, id, "websocket", None).await.unwrap();
        assert_eq!(initial.len(), 1, "a snapshot");
        feeds.push(feed);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = log.read_stats();
    for n in 1..=20 {
        let cmd = UpdateCommand::Put {
            kind: "message".into(),
            data: serde_json::json!({"text": n.to_string()}),
            key: None,
        };
        assert_eq!(hub.update(id, cmd).await.unwrap(), n);
    }
    for feed in &mut feeds {
        let mut seqs = Vec::new();
        while seqs.last() != Some(&20) {
            let frames = tokio::time::timeout(Duration::from_secs(10), feed.next())
                .await
                .expect("frames in time")
                .unwrap();
            seqs.extend(frames.iter().filter_map(|f| f.seq));
        }
        // Every update once, in order, although the channel held only 4 of them.
        assert_eq!(seqs, (1..=20).collect::<Vec<u64>>());
    }
    // Presence frames (every display joining) overflow the channels too, while no
    // update was missed: the catch-up finds nothing to read.
    for _ in 0..10 {
        log.publish_ephemeral(
            id,
            Frame {
                seq: None,
                event: "presence",
                text: Utf8Bytes::from_static("{\"type\":\"presence\"}"),
            },
        );
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    for feed in &mut feeds {
        let frames = tokio::time::timeout(Duration::from_secs(10), feed.next())
            .await
            .expect("frames in time")
            .unwrap();
        assert!(frames.iter().all(|f| f.seq.is_none()), "no update repeated");
        assert_eq!(feed.last, 20);
    }
    let after = log.read_stats();
    let catch_ups = hub.catch_ups.load(std::sync::atomic::Ordering::Relaxed);
    stop.cancel();
    (
        after.backend_readers - before.backend_readers,
        after.recent_hits - before.recent_hits,
        catch_ups,
    )
}

#[tokio::test]
async fn lagging_displays_catch_up_from_memory_without_a_consumer_each() {
    let Ok(url) = std::env::var("STONEPOT_TEST_NATS_URL") else {
        eprintln!("skipped: STONEPOT_TEST_NATS_URL is not set (run scripts/test.sh)");
        return;
    };
    let (readers, hits, catch_ups) = lagging_displays(&url, 1024).await;
    assert!(
        catch_ups >= 2 * LAGGING as u64,
        "every display lagged on updates, then on presence: {catch_ups}"
    );
    assert_eq!(readers, 0, "no JetStream consumer was opened to catch up");
    assert!(hits >= 2 * LAGGING as u64, "{hits}");
    // Without the entries in memory, the displays that missed updates open a consumer
    // each (lagging on presence alone still needs none): what made the fan-out to 10,000
    // sockets collapse (docs/PERFORMANCE.md).
    let (readers, hits, _) = lagging_displays(&url, 0).await;
    assert!(readers >= LAGGING as u64, "{readers}");
    assert!(hits >= LAGGING as u64, "{hits}");
}
