//! Starting the real `stonepot` binary and talking minimal HTTP/1.1 to it.

use anyhow::{Context, Result, bail};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub const KEY: &str = "sp_bench";

pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
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
pub async fn start(bin: &PathBuf) -> Result<(Server, Duration)> {
    start_with(bin, &[]).await
}

/// Like [`start`], with extra environment variables.
pub async fn start_with(bin: &PathBuf, env: &[(&str, &str)]) -> Result<(Server, Duration)> {
    let dir = tempfile_dir::Dir::new()?;
    let port = free_port()?;
    let t0 = Instant::now();
    // STONEPOT_BENCH_SERVER_CPUS=1 runs the server under `taskset -c 1`, so server and
    // load client (pin it with `taskset -c 0`) do not steal each other's core.
    let mut cmd = match std::env::var("STONEPOT_BENCH_SERVER_CPUS") {
        Ok(cpus) if !cpus.is_empty() => {
            let mut c = Command::new("taskset");
            c.args(["-c", &cpus]).arg(bin);
            c
        }
        _ => Command::new(bin),
    };
    let child = cmd
        .args(["serve", "--demo", "--port", &port.to_string()])
        .current_dir(&dir.0)
        .env("LOG_LEVEL", "warn")
        .env("RATE_LIMIT_REQUESTS", "1000000000")
        .env("STONEPOT_DEMO_KEY", KEY)
        .env_remove("DATABASE_URL")
        .envs(env.iter().copied())
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
pub async fn get(s: &mut TcpStream, path: &str) -> Result<(u16, usize)> {
    let req = format!("GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n");
    s.write_all(req.as_bytes()).await?;
    read_response(s).await.map(|(st, body)| (st, body.len()))
}

/// One keep-alive POST of a JSON body with the bench key; returns status and body.
pub async fn post(s: &mut TcpStream, path: &str, body: &str) -> Result<(u16, Vec<u8>)> {
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {KEY}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await?;
    read_response(s).await
}

/// One keep-alive request with the bench key and, when given, a JSON body; returns
/// status and body (a chunked body, such as a finished SSE stream, is de-chunked).
pub async fn request(
    s: &mut TcpStream,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> Result<(u16, Vec<u8>)> {
    request_as(s, method, path, body, KEY).await
}

/// [`request`] with another bearer token (a guest's session token).
pub async fn request_as(
    s: &mut TcpStream,
    method: &str,
    path: &str,
    body: Option<&str>,
    bearer: &str,
) -> Result<(u16, Vec<u8>)> {
    let req = match body {
        Some(b) => format!(
            "{method} {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {bearer}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{b}",
            b.len()
        ),
        None => format!(
            "{method} {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {bearer}\r\n\r\n"
        ),
    };
    s.write_all(req.as_bytes()).await?;
    read_response(s).await
}

/// Reads until `buf` holds at least `n` bytes.
async fn fill(s: &mut TcpStream, buf: &mut Vec<u8>, n: usize) -> Result<()> {
    let mut chunk = [0u8; 8192];
    while buf.len() < n {
        let got = s.read(&mut chunk).await?;
        if got == 0 {
            bail!("connection closed mid-response");
        }
        buf.extend_from_slice(chunk.get(..got).unwrap_or_default());
    }
    Ok(())
}

/// Reads until `buf[from..]` contains `needle`; returns its index.
async fn fill_until(
    s: &mut TcpStream,
    buf: &mut Vec<u8>,
    from: usize,
    needle: &[u8],
) -> Result<usize> {
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(i) = buf
            .get(from..)
            .unwrap_or_default()
            .windows(needle.len())
            .position(|w| w == needle)
        {
            return Ok(from + i);
        }
        let got = s.read(&mut chunk).await?;
        if got == 0 {
            bail!("connection closed mid-response");
        }
        buf.extend_from_slice(chunk.get(..got).unwrap_or_default());
    }
}

async fn read_response(s: &mut TcpStream) -> Result<(u16, Vec<u8>)> {
    let mut buf = Vec::with_capacity(8192);
    let head_end = fill_until(s, &mut buf, 0, b"\r\n\r\n").await? + 4;
    let head = std::str::from_utf8(buf.get(..head_end).unwrap_or_default())?.to_string();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("no status")?;
    let header = |name: &str| {
        head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    };
    if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        let mut body = Vec::new();
        let mut at = head_end;
        loop {
            let line_end = fill_until(s, &mut buf, at, b"\r\n").await?;
            let size_text = std::str::from_utf8(buf.get(at..line_end).unwrap_or_default())?;
            let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
                .context("bad chunk size")?;
            at = line_end + 2;
            fill(s, &mut buf, at + size + 2).await?;
            if size == 0 {
                return Ok((status, body));
            }
            body.extend_from_slice(buf.get(at..at + size).unwrap_or_default());
            at += size + 2;
        }
    }
    let len: usize = header("content-length")
        .and_then(|v| v.parse().ok())
        .context("no content-length")?;
    fill(s, &mut buf, head_end + len).await?;
    Ok((
        status,
        buf.get(head_end..head_end + len)
            .unwrap_or_default()
            .to_vec(),
    ))
}

pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Percentile of a sorted slice.
pub fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or_default()
}

/// Milliseconds with three decimals.
pub fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1000.0)
}

/// Prints one line to stdout.
pub fn say(line: &str) {
    use std::io::Write;
    let mut o = std::io::stdout().lock();
    let _ = writeln!(o, "{line}");
}
