//! Display fan-out: S sessions × K sockets on loopback. Posts updates over HTTP at a fixed
//! total rate (open loop) and measures, at every socket, the time from just before the
//! POST to the frame's arrival; counts delivered against expected; reports deliveries/s,
//! server CPU per update, and resident memory per idle socket. With `--instances 2` on
//! JetStream and PostgreSQL it measures cross-instance fan-out (post on one instance,
//! sockets on both).

use crate::server::{KEY, ms, pct, post, request, rss_kib, say, start_with};
use anyhow::{Context, Result, bail};
use futures::StreamExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

pub struct Params {
    pub sessions: usize,
    pub per_session: usize,
    pub rate: u64,
    pub seconds: u64,
    /// Server processes; with more than one they share `database_url` (PostgreSQL) and
    /// `nats_url` (JetStream), posts go to the first and sockets spread over all.
    pub instances: usize,
    pub nats_url: Option<String>,
    pub database_url: Option<String>,
}

/// utime + stime of a process, in clock ticks (100 Hz on Linux).
pub(crate) fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Extracts the send stamp (µs since the bench's epoch) from `..."text":"t123"...`.
fn stamp(frame: &str) -> Option<u64> {
    let i = frame.find("\"text\":\"t")? + 9;
    let rest = frame.get(i..)?;
    let end = rest.find('"')?;
    rest.get(..end)?.parse().ok()
}

pub async fn run(bin: PathBuf, p: Params) -> Result<()> {
    let bin = std::fs::canonicalize(&bin).context("build with cargo build --release first")?;
    let instances = p.instances.max(1);
    if instances > 1 && (p.nats_url.is_none() || p.database_url.is_none()) {
        bail!("--instances above 1 needs --nats-url and --database-url (PostgreSQL)");
    }
    let mut env: Vec<(&str, &str)> = vec![
        ("SESSION_IDLE", "120s"),
        ("LOG_LEVEL", "warn"),
        // Display tokens signed by one instance must verify on the others.
        (
            "SIGNING_KEY",
            "bench-signing-key-0123456789abcdef0123456789",
        ),
    ];
    if let Some(u) = &p.nats_url {
        env.push(("NATS_URL", u));
    }
    if let Some(u) = &p.database_url {
        env.push(("DATABASE_URL", u));
    }
    let mut servers = Vec::new();
    // One after the other: each seeds the demo tenants on first start.
    for _ in 0..instances {
        servers.push(start_with(&bin, &env).await?.0);
    }
    let addrs: Vec<std::net::SocketAddr> = servers.iter().map(|s| s.addr).collect();
    let pids: Vec<u32> = servers.iter().map(|s| s.child.id()).collect();
    let addr = addrs[0];
    let pid = pids[0];
    let cpu_all = || pids.iter().filter_map(|p| cpu_ticks(*p)).sum::<u64>();
    let total = p.sessions * p.per_session;

    // Sessions.
    let mut http = TcpStream::connect(addr).await?;
    let mut tokens = Vec::new();
    for i in 0..p.sessions {
        let (status, body) = post(
            &mut http,
            &format!("/conversation/bench-{i}/init"),
            r#"{"tenantId":"demo-restaurant","category":"restaurant"}"#,
        )
        .await?;
        if status != 200 {
            bail!("init failed: {status} {}", String::from_utf8_lossy(&body));
        }
        let v: serde_json::Value = serde_json::from_slice(&body)?;
        tokens.push(v["displayToken"].as_str().context("no token")?.to_string());
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_before = rss_kib(pid).unwrap_or(0);

    // Sockets.
    let epoch = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let snapshots = Arc::new(AtomicU64::new(0));
    let delivered = Arc::new(AtomicU64::new(0));
    // Sockets the server ended before the bench did (a display that fell too far behind,
    // or whose catch-up read failed, is closed).
    let closed = Arc::new(AtomicU64::new(0));
    let targets: Vec<(usize, String, std::net::SocketAddr)> = (0..total)
        .map(|k| {
            let s = k % p.sessions;
            // Socket k of a session goes to instance k / sessions (round robin).
            let at = addrs[(k / p.sessions) % addrs.len()];
            (s, tokens.get(s).cloned().unwrap_or_default(), at)
        })
        .collect();
    let connected: Vec<_> = futures::stream::iter(targets)
        .map(|(s, tok, addr)| async move {
            let url = format!("ws://{addr}/conversation/bench-{s}/display?token={tok}");
            tokio_tungstenite::connect_async(url)
                .await
                .map(|(ws, _)| ws)
        })
        .buffer_unordered(256)
        .collect()
        .await;
    let mut readers = Vec::with_capacity(total);
    for ws in connected {
        let mut ws = ws.context("websocket connect (raise ulimit -n?)")?;
        let (stop, snapshots, delivered, closed) = (
            stop.clone(),
            snapshots.clone(),
            delivered.clone(),
            closed.clone(),
        );
        readers.push(tokio::spawn(async move {
            let mut lat: Vec<Duration> = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let Ok(msg) = tokio::time::timeout(Duration::from_millis(250), ws.next()).await
                else {
                    continue;
                };
                let t = match msg {
                    Some(Ok(Message::Text(t))) => t,
                    None | Some(Err(_)) | Some(Ok(Message::Close(_))) => {
                        closed.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                    Some(Ok(_)) => continue,
                };
                if t.contains("\"type\":\"snapshot\"") {
                    snapshots.fetch_add(1, Ordering::Relaxed);
                } else if let Some(sent) = stamp(&t) {
                    let now = epoch.elapsed().as_micros() as u64;
                    lat.push(Duration::from_micros(now.saturating_sub(sent)));
                    delivered.fetch_add(1, Ordering::Relaxed);
                }
            }
            lat
        }));
    }
    let wait = Instant::now();
    while snapshots.load(Ordering::Relaxed) < total as u64 {
        if wait.elapsed() > Duration::from_secs(60) {
            bail!(
                "only {} of {total} snapshots arrived",
                snapshots.load(Ordering::Relaxed)
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_idle = rss_kib(pid).unwrap_or(0);

    // Open-loop posting spread over a few keep-alive connections.
    let posters = 8.min(p.sessions).max(1);
    let sent = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let cpu0 = cpu_all();
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for k in 0..posters {
        let (sent, failed) = (sent.clone(), failed.clone());
        let sessions: Vec<usize> = (k..p.sessions).step_by(posters).collect();
        let per_poster_rate = p.rate as f64 / posters as f64;
        let seconds = p.seconds;
        tasks.push(tokio::spawn(async move {
            let mut conn = TcpStream::connect(addr).await?;
            conn.set_nodelay(true)?;
            let every = Duration::from_secs_f64(1.0 / per_poster_rate.max(0.001));
            // Stagger the posters so arrivals are evenly spread, not bursts of `posters`.
            let offset = every.mul_f64(k as f64 / posters as f64);
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + offset, every);
            let deadline = Instant::now() + Duration::from_secs(seconds);
            let mut i = 0usize;
            while Instant::now() < deadline {
                tick.tick().await;
                let s = sessions
                    .get(i % sessions.len().max(1))
                    .copied()
                    .unwrap_or(0);
                i += 1;
                let t = epoch.elapsed().as_micros();
                let body = format!(r#"{{"type":"message","data":{{"text":"t{t}"}}}}"#);
                match post(&mut conn, &format!("/conversation/bench-{s}/update"), &body).await {
                    Ok((200, _)) => {
                        sent.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => {
                        failed.fetch_add(1, Ordering::Relaxed);
                        conn = TcpStream::connect(addr).await?;
                    }
                }
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let post_secs = t0.elapsed().as_secs_f64();
    let posted = sent.load(Ordering::Relaxed);
    let expected = posted * p.per_session as u64;
    let drain = Instant::now();
    while delivered.load(Ordering::Relaxed) < expected && drain.elapsed() < Duration::from_secs(10)
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let cpu1 = cpu_all();
    let closed_early = closed.load(Ordering::Relaxed);
    // What the servers counted: displays that fell behind their channel and caught up,
    // and how those reads were answered (a JetStream consumer each, or from memory).
    let mut counters = [0f64; 3];
    for a in &addrs {
        let mut conn = TcpStream::connect(a).await?;
        let (_, body) = request(&mut conn, "GET", "/metrics", None).await?;
        for line in String::from_utf8_lossy(&body).lines() {
            for (i, name) in [
                "stonepot_display_catch_ups_total ",
                "stonepot_log_backend_readers_total ",
                "stonepot_log_recent_hits_total ",
            ]
            .iter()
            .enumerate()
            {
                if let Some(v) = line.strip_prefix(name).and_then(|v| v.parse::<f64>().ok()) {
                    counters[i] += v;
                }
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::with_capacity(expected as usize);
    for r in readers {
        all.extend(r.await?);
    }
    all.sort();
    let got = all.len() as u64;
    let cpu_secs = (cpu1.saturating_sub(cpu0)) as f64 / 100.0;
    say(&format!(
        "display fan-out: {} sessions × {} sockets = {total} sockets, {} updates/s for {}s ({}, KEY {KEY})",
        p.sessions,
        p.per_session,
        p.rate,
        p.seconds,
        match (&p.nats_url, instances) {
            (Some(_), n) => format!(
                "{n} instance(s) on NATS JetStream, posts to the first, sockets spread over all"
            ),
            (None, _) => "durable SQLite, one instance".to_string(),
        }
    ));
    say(&format!(
        "posted {posted} ({} failed); delivered {got} of {expected} ({:.3}%)",
        failed.load(Ordering::Relaxed),
        if expected == 0 {
            100.0
        } else {
            got as f64 * 100.0 / expected as f64
        }
    ));
    say(&format!(
        "sockets closed by the server: {closed_early} of {total}; catch-ups from the log: {:.0} (backend readers opened: {:.0}, answered from memory: {:.0})",
        counters[0], counters[1], counters[2]
    ));
    say(&format!(
        "POST→socket latency: p50 {} ms, p99 {} ms, p99.9 {} ms, max {} ms",
        ms(pct(&all, 0.5)),
        ms(pct(&all, 0.99)),
        ms(pct(&all, 0.999)),
        ms(pct(&all, 1.0))
    ));
    say(&format!(
        "deliveries/s: {:.0}; server CPU {:.2} s over {:.1} s = {:.0} µs per update ({} sockets each)",
        got as f64 / post_secs,
        cpu_secs,
        post_secs,
        if posted == 0 {
            0.0
        } else {
            cpu_secs * 1e6 / posted as f64
        },
        p.per_session
    ));
    say(&format!(
        "RSS: {:.1} MiB before sockets, {:.1} MiB with {total} idle sockets = {:.2} KiB per socket",
        rss_before as f64 / 1024.0,
        rss_idle as f64 / 1024.0,
        rss_idle.saturating_sub(rss_before) as f64 / total.max(1) as f64
    ));
    drop(servers);
    Ok(())
}
