//! Start-up, idle memory and HTTP latency of the foundation routes.

use crate::server::{get, ms, pct, rss_kib, say, start};
use anyhow::{Context, Result};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

/// Closed-loop load: `conns` connections each sending requests back to back.
async fn load(addr: SocketAddr, path: &str, conns: usize, secs: u64) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let path = path.to_string();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(100_000);
            let mut errors = 0u64;
            let mut s = TcpStream::connect(addr).await?;
            s.set_nodelay(true)?;
            while Instant::now() < deadline {
                let t = Instant::now();
                match get(&mut s, &path).await {
                    Ok((200, _)) => lat.push(t.elapsed()),
                    _ => {
                        errors += 1;
                        s = TcpStream::connect(addr).await?;
                    }
                }
            }
            anyhow::Ok((lat, errors))
        }));
    }
    let started = Instant::now();
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await??;
        all.extend(l);
        errors += e;
    }
    let wall = started.elapsed().as_secs_f64().max(f64::EPSILON);
    all.sort();
    say(&format!(
        "| GET {path} | {conns} | {} | {:.0} | {} | {} | {} | {errors} |",
        all.len(),
        all.len() as f64 / wall,
        ms(pct(&all, 0.5)),
        ms(pct(&all, 0.99)),
        ms(pct(&all, 0.999)),
    ));
    Ok(())
}

pub async fn run(bin: PathBuf, starts: usize, conns: usize, secs: u64) -> Result<()> {
    let bin = std::fs::canonicalize(&bin).with_context(|| {
        format!(
            "{} not found; build it with cargo build --release -p stonepot-server",
            bin.display()
        )
    })?;
    let mut times = Vec::new();
    for _ in 0..starts.max(1) {
        let (server, took) = start(&bin).await?;
        times.push(took);
        drop(server);
    }
    times.sort();
    say(&format!(
        "start-to-healthy over {} starts (spawn → first 200 from /health, fresh SQLite each time): min {} ms, median {} ms, max {} ms",
        times.len(),
        ms(pct(&times, 0.0)),
        ms(pct(&times, 0.5)),
        ms(pct(&times, 1.0))
    ));

    let (server, _) = start(&bin).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle = rss_kib(server.child.id()).unwrap_or(0);
    say(&format!(
        "idle RSS 2 s after start (demo seeded, one /health served): {:.1} MiB",
        idle as f64 / 1024.0
    ));
    say("");
    say("| route | connections | requests | req/s | p50 ms | p99 ms | p99.9 ms | errors |");
    say("|---|---|---|---|---|---|---|---|");
    load(server.addr, "/health", conns, secs).await?;
    load(
        server.addr,
        "/api/tenants/demo-restaurant/menu",
        conns,
        secs,
    )
    .await?;
    load(server.addr, "/api/status", conns, secs).await?;
    let loaded = rss_kib(server.child.id()).unwrap_or(0);
    say("");
    say(&format!(
        "RSS after load: {:.1} MiB",
        loaded as f64 / 1024.0
    ));
    Ok(())
}
