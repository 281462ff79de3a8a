//! `stonepot-bench`: load generators that print figures for docs/PERFORMANCE.md.
//!
//! `foundation` starts the real `stonepot` binary (release build) on loopback and
//! measures start-to-healthy, idle RSS, and `/health` plus one API read under load from
//! this second process over keep-alive HTTP/1.1 connections.

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Parser)]
#[command(about = "Stonepot benchmarks")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Start-up, idle memory and HTTP throughput/latency of the foundation routes.
    Foundation {
        /// The stonepot binary to measure.
        #[arg(long, default_value = "target/release/stonepot")]
        bin: PathBuf,
        /// Start-ups to time.
        #[arg(long, default_value_t = 10)]
        starts: usize,
        /// Concurrent keep-alive connections.
        #[arg(long, default_value_t = 16)]
        connections: usize,
        /// Seconds of load per route.
        #[arg(long, default_value_t = 5)]
        seconds: u64,
    },
}

fn say(line: &str) {
    let mut o = std::io::stdout().lock();
    let _ = writeln!(o, "{line}");
}

struct Server {
    child: Child,
    addr: SocketAddr,
    _dir: tempfile_dir::Dir,
}

mod tempfile_dir {
    //! A scratch directory removed on drop (no extra dependency needed).
    pub struct Dir(pub std::path::PathBuf);
    impl Dir {
        pub fn new() -> std::io::Result<Dir> {
            let p = std::env::temp_dir().join(format!(
                "stonepot-bench-{}-{}",
                std::process::id(),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos())
                    .unwrap_or(0)
            ));
            std::fs::create_dir_all(&p)?;
            Ok(Dir(p))
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// Starts the server and returns it with the time from spawn to the first 200 /health.
async fn start(bin: &PathBuf) -> Result<(Server, Duration)> {
    let dir = tempfile_dir::Dir::new()?;
    let port = free_port()?;
    let t0 = Instant::now();
    let child = Command::new(bin)
        .args(["serve", "--demo", "--port", &port.to_string()])
        .current_dir(&dir.0)
        .env("LOG_LEVEL", "warn")
        .env("RATE_LIMIT_REQUESTS", "1000000000")
        .env("STONEPOT_DEMO_KEY", "sp_bench")
        .env_remove("DATABASE_URL")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| {
            format!(
                "starting {} (build it with cargo build --release)",
                bin.display()
            )
        })?;
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let server = Server {
        child,
        addr,
        _dir: dir,
    };
    loop {
        if t0.elapsed() > Duration::from_secs(20) {
            bail!("server did not become healthy within 20 s");
        }
        if let Ok(mut s) = TcpStream::connect(addr).await
            && let Ok((200, _)) = get(&mut s, "/health").await
        {
            return Ok((server, t0.elapsed()));
        }
        tokio::time::sleep(Duration::from_micros(500)).await;
    }
}

/// One keep-alive GET; returns status and body length.
async fn get(s: &mut TcpStream, path: &str) -> Result<(u16, usize)> {
    let req = format!("GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n");
    s.write_all(req.as_bytes()).await?;
    let mut buf = Vec::with_capacity(8192);
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            bail!("connection closed");
        }
        buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = std::str::from_utf8(buf.get(..head_end).unwrap_or_default())?;
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("no status")?;
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .context("no content-length")?;
    while buf.len() < head_end + len {
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            bail!("connection closed mid-body");
        }
        buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
    }
    Ok((status, len))
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or_default()
}

fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1000.0)
}

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

async fn foundation(bin: PathBuf, starts: usize, conns: usize, secs: u64) -> Result<()> {
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

#[tokio::main]
async fn main() -> Result<()> {
    match Cli::parse().cmd {
        Cmd::Foundation {
            bin,
            starts,
            connections,
            seconds,
        } => foundation(bin, starts, connections, seconds).await,
    }
}
