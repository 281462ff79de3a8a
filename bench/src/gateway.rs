//! Gateway overhead: what `POST /v1/chat/completions` through stonepot adds on top of the
//! model provider. A zero-delay fake OpenAI provider runs inside this process (raw TCP,
//! keep-alive, every answer one precomputed chunked SSE write); the server is started
//! with `OPENAI_BASE_URL` pointing at it, and the same client code measures the fake
//! directly and through the gateway:
//! 1. concurrency 1, whole (`stream: false`) answers, direct and gateway alternating;
//! 2. open loop at a fixed rate (latency from the scheduled send time);
//! 3. streamed answers: time to the first content chunk and the gaps between chunks;
//! 4. resident memory per in-flight stream (the fake holds streams open on "hold").

use crate::server::{KEY, ms, pct, rss_kib, say, start_with};
use anyhow::{Context, Result, bail};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub struct Params {
    pub requests: usize,
    pub rate: u64,
    pub seconds: u64,
    pub stream_requests: usize,
    pub streams: usize,
    pub server_env: Vec<String>,
}

/// Content chunks in every fake answer.
const CHUNKS: usize = 8;
/// The fake's API key (checked by nobody; sent like a real client would).
const FAKE_KEY: &str = "sk-bench";
/// No single exchange may take longer than this.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------
// The fake provider.

fn sse_chunk(delta: &str, finish: &str) -> String {
    format!(
        "data: {{\"id\":\"chatcmpl-fake\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"fake\",\"choices\":[{{\"index\":0,\"delta\":{delta},\"finish_reason\":{finish}}}]}}\n\n"
    )
}

/// One HTTP/1.1 chunk per SSE event, as providers send them.
fn http_chunks(events: &[String]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in events {
        out.extend_from_slice(format!("{:x}\r\n", e.len()).as_bytes());
        out.extend_from_slice(e.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

struct Answers {
    /// The whole streamed answer: head, role chunk, content chunks, stop, usage, `[DONE]`.
    full: Vec<u8>,
    /// For "hold": head, role chunk and the first content chunk ...
    hold_head: Vec<u8>,
    /// ... and, once released, the rest.
    hold_tail: Vec<u8>,
}

fn answers() -> Answers {
    let mut events = vec![sse_chunk(r#"{"role":"assistant","content":""}"#, "null")];
    for i in 0..CHUNKS {
        events.push(sse_chunk(&format!(r#"{{"content":"tok{i} "}}"#), "null"));
    }
    events.push(sse_chunk("{}", "\"stop\""));
    events.push(
        "data: {\"id\":\"chatcmpl-fake\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"fake\",\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":8,\"total_tokens\":20}}\n\n"
            .to_string(),
    );
    events.push("data: [DONE]\n\n".to_string());
    let head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n";
    let mut full = head.to_vec();
    full.extend(http_chunks(&events));
    full.extend_from_slice(b"0\r\n\r\n");
    let mut hold_head = head.to_vec();
    hold_head.extend(http_chunks(events.get(..2).unwrap_or_default()));
    let mut hold_tail = http_chunks(events.get(2..).unwrap_or_default());
    hold_tail.extend_from_slice(b"0\r\n\r\n");
    Answers {
        full,
        hold_head,
        hold_tail,
    }
}

struct Fake {
    addr: SocketAddr,
    release: watch::Sender<bool>,
    requests: Arc<AtomicU64>,
    connections: Arc<AtomicU64>,
}

async fn start_fake() -> Result<Fake> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let answers = Arc::new(answers());
    let (release, released) = watch::channel(false);
    let requests = Arc::new(AtomicU64::new(0));
    let count = requests.clone();
    let connections = Arc::new(AtomicU64::new(0));
    let accepted = connections.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            accepted.fetch_add(1, Ordering::Relaxed);
            let (answers, released, count) = (answers.clone(), released.clone(), count.clone());
            tokio::spawn(async move {
                let _ = fake_conn(s, &answers, released, &count).await;
            });
        }
    });
    Ok(Fake {
        addr,
        release,
        requests,
        connections,
    })
}

/// Serves one keep-alive connection: reads each request (head + content-length body) and
/// writes the canned answer.
async fn fake_conn(
    mut s: TcpStream,
    answers: &Answers,
    mut released: watch::Receiver<bool>,
    count: &AtomicU64,
) -> Result<()> {
    s.set_nodelay(true)?;
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    loop {
        let head_end = loop {
            if let Some(i) = find(&buf, b"\r\n\r\n") {
                break i + 4;
            }
            let n = s.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
        };
        let len = std::str::from_utf8(buf.get(..head_end).unwrap_or_default())
            .ok()
            .and_then(content_length)
            .unwrap_or(0);
        while buf.len() < head_end + len {
            let n = s.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
        }
        let hold = find(
            buf.get(head_end..head_end + len).unwrap_or_default(),
            b"hold",
        )
        .is_some();
        buf.drain(..head_end + len);
        count.fetch_add(1, Ordering::Relaxed);
        if hold {
            s.write_all(&answers.hold_head).await?;
            // Bounded: a forgotten hold ends by itself.
            let _ = tokio::time::timeout(Duration::from_secs(120), released.wait_for(|r| *r)).await;
            s.write_all(&answers.hold_tail).await?;
        } else {
            s.write_all(&answers.full).await?;
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

fn content_length(head: &str) -> Option<usize> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case("content-length")
            .then(|| v.trim().parse().ok())?
    })
}

// ---------------------------------------------------------------------------------------
// The client, the same for both ends.

/// Where requests go and the exact bytes to send.
struct Target {
    name: &'static str,
    addr: SocketAddr,
    whole: Vec<u8>,
    stream: Vec<u8>,
    hold: Vec<u8>,
    pool: Mutex<Vec<Conn>>,
    /// Connections opened so far.
    opened: AtomicUsize,
}

impl Target {
    fn new(name: &'static str, addr: SocketAddr, key: &str, model: &str) -> Target {
        let req = |stream: bool, text: &str| {
            let body = format!(
                r#"{{"model":"{model}","messages":[{{"role":"user","content":"{text}"}}],"stream":{stream}{}}}"#,
                if stream {
                    r#","stream_options":{"include_usage":true}"#
                } else {
                    ""
                }
            );
            format!(
                "POST /v1/chat/completions HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .into_bytes()
        };
        Target {
            name,
            addr,
            whole: req(false, "Say hello in eight tokens."),
            stream: req(true, "Say hello in eight tokens."),
            hold: req(true, "Say hello, then hold."),
            pool: Mutex::new(Vec::new()),
            opened: AtomicUsize::new(0),
        }
    }

    async fn connect(&self) -> Result<Conn> {
        let s = TcpStream::connect(self.addr).await?;
        s.set_nodelay(true)?;
        self.opened.fetch_add(1, Ordering::Relaxed);
        Ok(Conn {
            s,
            buf: Vec::with_capacity(8192),
        })
    }

    /// An idle pooled connection, or a new one.
    async fn checkout(&self) -> Result<Conn> {
        let idle = self.pool.lock().ok().and_then(|mut p| p.pop());
        match idle {
            Some(c) => Ok(c),
            None => self.connect().await,
        }
    }

    fn whole(&self) -> Ask<'_> {
        Ask {
            req: &self.whole,
            sse: false,
            expect: LAST_TOKEN,
        }
    }

    fn streamed(&self) -> Ask<'_> {
        Ask {
            req: &self.stream,
            sse: true,
            expect: b"",
        }
    }

    fn checkin(&self, c: Conn) {
        if let Ok(mut p) = self.pool.lock() {
            p.push(c);
        }
    }
}

struct Conn {
    s: TcpStream,
    /// Bytes read but not yet consumed.
    buf: Vec<u8>,
}

#[derive(Default)]
struct Reply {
    status: u16,
    /// Whole answer received (the text for a whole answer, `[DONE]` for a stream).
    complete: bool,
    /// From the send to the arrival of the first chunk with non-empty content.
    first_content: Option<Duration>,
    /// Arrival times (from the send) of every `data:` event from the first content on.
    events: Vec<Duration>,
    /// From the send to the end of the response.
    total: Duration,
}

/// What to send and how to judge the answer.
#[derive(Clone, Copy)]
struct Ask<'a> {
    req: &'a [u8],
    /// Time SSE events; the answer is complete at `[DONE]`.
    sse: bool,
    /// Otherwise the answer is complete when the body contains this.
    expect: &'a [u8],
}

/// The last content chunk's text: in the fake's stream and in the gateway's whole answer.
const LAST_TOKEN: &[u8] = b"tok7";

/// Writes one request and reads its response (content-length or chunked), timing SSE
/// events as they arrive. `ready` is bumped when the first content chunk arrives.
async fn exchange(
    c: &mut Conn,
    ask: Ask<'_>,
    sent: Instant,
    ready: Option<&AtomicUsize>,
) -> Result<Reply> {
    let Ask { req, sse, expect } = ask;
    c.s.write_all(req).await?;
    let mut chunk = [0u8; 16384];
    let head_end = loop {
        if let Some(i) = find(&c.buf, b"\r\n\r\n") {
            break i + 4;
        }
        let n = c.s.read(&mut chunk).await?;
        if n == 0 {
            bail!("connection closed before the head");
        }
        c.buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
    };
    let head = std::str::from_utf8(c.buf.get(..head_end).unwrap_or_default())?;
    let mut reply = Reply {
        status: head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .context("no status")?,
        ..Reply::default()
    };
    let length = content_length(head);
    let chunked = head.lines().any(|l| {
        l.split_once(':').is_some_and(|(k, v)| {
            k.trim().eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked")
        })
    });
    if length.is_none() && !chunked {
        bail!("neither content-length nor chunked");
    }
    c.buf.drain(..head_end);
    let mut body: Vec<u8> = Vec::with_capacity(4096);
    let mut scanned = 0usize; // body bytes already split into SSE events
    let mut raw_pos = 0usize; // c.buf bytes already decoded (chunked)
    loop {
        let now = sent.elapsed();
        // Decode what has arrived.
        let finished = if let Some(len) = length {
            let take = len.saturating_sub(body.len()).min(c.buf.len());
            body.extend(c.buf.drain(..take));
            body.len() == len
        } else {
            let mut end = false;
            loop {
                let rest = c.buf.get(raw_pos..).unwrap_or_default();
                let Some(eol) = find(rest, b"\r\n") else {
                    break;
                };
                let size_line = std::str::from_utf8(rest.get(..eol).unwrap_or_default())?;
                let size =
                    usize::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16)
                        .with_context(|| format!("bad chunk size {size_line:?}"))?;
                if size == 0 {
                    // Terminal chunk, no trailers expected: "0\r\n\r\n".
                    if rest.len() < eol + 4 {
                        break;
                    }
                    raw_pos += eol + 4;
                    end = true;
                    break;
                }
                if rest.len() < eol + 2 + size + 2 {
                    break;
                }
                body.extend_from_slice(rest.get(eol + 2..eol + 2 + size).unwrap_or_default());
                raw_pos += eol + 2 + size + 2;
            }
            c.buf.drain(..raw_pos);
            raw_pos = 0;
            end
        };
        if sse {
            while let Some(i) = find(body.get(scanned..).unwrap_or_default(), b"\n\n") {
                let event = body.get(scanned..scanned + i).unwrap_or_default();
                scanned += i + 2;
                let Some(data) = event.strip_prefix(b"data:") else {
                    continue;
                };
                if reply.first_content.is_none()
                    && find(data, b"\"content\":\"").is_some()
                    && find(data, b"\"content\":\"\"").is_none()
                {
                    reply.first_content = Some(now);
                    if let Some(r) = ready {
                        r.fetch_add(1, Ordering::Relaxed);
                    }
                }
                if reply.first_content.is_some() {
                    reply.events.push(now);
                }
                if data.trim_ascii() == b"[DONE]" {
                    reply.complete = true;
                }
            }
        }
        if finished {
            break;
        }
        let n = c.s.read(&mut chunk).await?;
        if n == 0 {
            bail!("connection closed mid-body");
        }
        c.buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
    }
    reply.total = sent.elapsed();
    if !sse {
        reply.complete = find(&body, expect).is_some();
    }
    Ok(reply)
}

/// One request on a pooled connection with the time-out; the connection goes back to
/// the pool only after a clean 200.
async fn pooled(t: &Target, ask: Ask<'_>, sent: Instant) -> Result<Reply> {
    let mut c = t.checkout().await?;
    let r = tokio::time::timeout(REQUEST_TIMEOUT, exchange(&mut c, ask, sent, None))
        .await
        .context("timed out")??;
    if r.status == 200 && r.complete {
        t.checkin(c);
    }
    Ok(r)
}

// ---------------------------------------------------------------------------------------
// Measurements.

fn added(gw: Duration, direct: Duration) -> String {
    let d = gw.as_secs_f64() - direct.as_secs_f64();
    format!("{:+.3}", d * 1000.0)
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "NOT met" }
}

/// utime + stime of a process, in clock ticks (100 Hz on Linux).
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Closed loop at concurrency 1, direct and gateway alternating request by request so
/// both see the same machine state. Returns sorted latencies (direct, gateway).
async fn serial(
    direct: &Target,
    gateway: &Target,
    n: usize,
    sse: bool,
) -> Result<(Vec<Reply>, Vec<Reply>)> {
    let mut dc = direct.connect().await?;
    let mut gc = gateway.connect().await?;
    let (mut d, mut g) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for i in 0..n {
        for (t, c, out) in [(direct, &mut dc, &mut d), (gateway, &mut gc, &mut g)] {
            let ask = if sse { t.streamed() } else { t.whole() };
            let r = tokio::time::timeout(REQUEST_TIMEOUT, exchange(c, ask, Instant::now(), None))
                .await
                .with_context(|| format!("{}: request {i} timed out", t.name))??;
            if r.status != 200 || !r.complete {
                bail!(
                    "{}: request {i}: status {} complete {}",
                    t.name,
                    r.status,
                    r.complete
                );
            }
            out.push(r);
        }
    }
    Ok((d, g))
}

/// Concurrency 1 on one keep-alive connection; sorted latencies.
async fn serial_one(t: &Target, ask: Ask<'_>, n: usize) -> Result<Vec<Duration>> {
    let mut c = t.connect().await?;
    let mut lat = Vec::with_capacity(n);
    for i in 0..n {
        let r = tokio::time::timeout(REQUEST_TIMEOUT, exchange(&mut c, ask, Instant::now(), None))
            .await
            .with_context(|| format!("{}: request {i} timed out", t.name))??;
        if r.status != 200 || !r.complete {
            bail!("{}: request {i}: status {}", t.name, r.status);
        }
        lat.push(r.total);
    }
    lat.sort();
    Ok(lat)
}

/// Voluntary + involuntary context switches over all of a process's threads.
fn ctx_switches(pid: u32) -> Option<u64> {
    let mut total = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let status = std::fs::read_to_string(task.ok()?.path().join("status")).ok()?;
        total += status
            .lines()
            .filter_map(|l| {
                l.strip_prefix("voluntary_ctxt_switches:")
                    .or_else(|| l.strip_prefix("nonvoluntary_ctxt_switches:"))
            })
            .filter_map(|v| v.trim().parse::<u64>().ok())
            .sum::<u64>();
    }
    Some(total)
}

struct OpenLoop {
    sent: usize,
    ok: usize,
    errors: usize,
    lat: Vec<Duration>,
    wall: Duration,
    conns: usize,
    /// Requests slower than [`SLOW`]: (scheduled time from the start, latency).
    slow: Vec<(Duration, Duration)>,
}

/// An open-loop request slower than this is listed with its time, to see stalls.
const SLOW: Duration = Duration::from_millis(10);

/// Slow requests grouped into episodes (scheduled within 100 ms of each other):
/// "at 3.412 s: 37 requests, worst 68.1 ms".
fn episodes(slow: &[(Duration, Duration)]) -> String {
    let mut out: Vec<(Duration, usize, Duration)> = Vec::new();
    for &(at, lat) in slow {
        match out.last_mut() {
            Some((first, n, worst)) if at.saturating_sub(*first) < Duration::from_millis(100) => {
                *n += 1;
                *worst = (*worst).max(lat);
            }
            _ => out.push((at, 1, lat)),
        }
    }
    out.iter()
        .map(|(at, n, worst)| {
            format!(
                "at {:.3} s: {n}, worst {:.1} ms",
                at.as_secs_f64(),
                worst.as_secs_f64() * 1e3
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Open loop: a pacing thread releases request `i` at `start + i / rate` whatever the
/// state of earlier requests; latency counts from that scheduled time.
async fn open_loop(t: Arc<Target>, rate: u64, secs: u64) -> Result<OpenLoop> {
    let n = (rate * secs) as usize;
    // Warm connections so the first requests do not pay for the handshake.
    let opened_before = t.opened.load(Ordering::Relaxed);
    for _ in 0..16 {
        let c = t.connect().await?;
        t.checkin(c);
    }
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Instant>();
    let every = Duration::from_secs_f64(1.0 / rate.max(1) as f64);
    let start = Instant::now() + Duration::from_millis(20);
    std::thread::spawn(move || {
        for i in 0..n {
            let due = start + every.mul_f64(i as f64);
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
            if tx.send(due).is_err() {
                break;
            }
        }
    });
    let mut tasks = Vec::with_capacity(n);
    while let Some(due) = rx.recv().await {
        let t = t.clone();
        tasks.push(tokio::spawn(async move {
            let r = pooled(&t, t.whole(), due).await;
            (
                r.map(|r| (r.status == 200 && r.complete, r.total)),
                Instant::now(),
                due,
            )
        }));
    }
    let sent = tasks.len();
    let (mut ok, mut errors, mut lat, mut last) = (0, 0, Vec::with_capacity(n), start);
    let mut slow = Vec::new();
    for task in tasks {
        let (r, done, due) = task.await?;
        last = last.max(done);
        match r {
            Ok((true, d)) => {
                ok += 1;
                lat.push(d);
                if d > SLOW {
                    slow.push((due.saturating_duration_since(start), d));
                }
            }
            _ => errors += 1,
        }
    }
    lat.sort();
    let conns = t.opened.load(Ordering::Relaxed) - opened_before;
    t.pool.lock().map(|mut p| p.clear()).ok();
    Ok(OpenLoop {
        sent,
        ok,
        errors,
        lat,
        wall: last.saturating_duration_since(start),
        conns,
        slow,
    })
}

/// Busy clock ticks of the whole machine (all CPUs), from `/proc/stat`.
fn machine_busy_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let cpu = stat.lines().next()?.strip_prefix("cpu ")?;
    let f: Vec<u64> = cpu
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal
    Some(f.iter().take(8).sum::<u64>() - f.get(3)? - f.get(4)?)
}

/// Busy ticks of the machine, the server and this process, to tell how much CPU other
/// processes took during the run.
fn busy(server: u32) -> (u64, u64, u64) {
    (
        machine_busy_ticks().unwrap_or(0),
        cpu_ticks(server).unwrap_or(0),
        cpu_ticks(std::process::id()).unwrap_or(0),
    )
}

/// `/proc/loadavg` without the last field: 1, 5 and 15-minute load, running/total tasks.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(4).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn sorted(mut v: Vec<Duration>) -> Vec<Duration> {
    v.sort();
    v
}

fn mean(v: &[Duration]) -> Duration {
    if v.is_empty() {
        return Duration::ZERO;
    }
    v.iter().sum::<Duration>() / v.len() as u32
}

/// Time to first content and the gaps between events after it.
fn stream_figures(replies: &[Reply]) -> (Vec<Duration>, Vec<Duration>, Vec<Duration>) {
    let ttft = sorted(replies.iter().filter_map(|r| r.first_content).collect());
    let gaps = sorted(
        replies
            .iter()
            .flat_map(|r| r.events.windows(2).map(|w| w[1].saturating_sub(w[0])))
            .collect(),
    );
    let total = sorted(replies.iter().map(|r| r.total).collect());
    (ttft, gaps, total)
}

pub async fn run(bin: PathBuf, p: Params) -> Result<()> {
    let bin = std::fs::canonicalize(&bin).context("build with cargo build --release first")?;
    let fake = start_fake().await?;
    let base = format!("http://{}/v1", fake.addr);
    let mut env = vec![
        ("OPENAI_BASE_URL", base.as_str()),
        ("OPENAI_API_KEY", FAKE_KEY),
        ("OPENAI_MODEL", "fake"),
        ("LOG_LEVEL", "warn"),
        ("RATE_LIMIT_REQUESTS", "1000000000"),
    ];
    for kv in &p.server_env {
        env.push(
            kv.split_once('=')
                .with_context(|| format!("--server-env {kv:?}: expected KEY=VALUE"))?,
        );
    }
    let (server, _) = start_with(&bin, &env).await?;
    let pid = server.child.id();
    let load_start = loadavg();
    let (busy0, t_start) = (busy(pid), Instant::now());
    let direct = Arc::new(Target::new("direct", fake.addr, FAKE_KEY, "fake"));
    let gateway = Arc::new(Target::new("gateway", server.addr, KEY, "default"));

    say(&format!(
        "gateway overhead: fake OpenAI provider in this process ({CHUNKS} content chunks per answer, zero delay, chunked SSE, keep-alive); server pid {pid}{}",
        if p.server_env.is_empty() {
            String::new()
        } else {
            format!(", server env {}", p.server_env.join(" "))
        }
    ));
    say("");

    // 1. Concurrency 1, whole answers.
    serial(&direct, &gateway, 200, false).await?; // warm-up
    let (d, g) = serial(&direct, &gateway, p.requests, false).await?;
    let d = sorted(d.iter().map(|r| r.total).collect());
    let g = sorted(g.iter().map(|r| r.total).collect());
    let (a50, a99) = (
        pct(&g, 0.5).saturating_sub(pct(&d, 0.5)),
        pct(&g, 0.99).saturating_sub(pct(&d, 0.99)),
    );
    let c1_ok = a50 <= Duration::from_micros(300) && a99 <= Duration::from_millis(1);
    say(&format!(
        "1. concurrency 1, {} whole answers (`stream: false`) each, direct and gateway alternating",
        p.requests
    ));
    say("");
    say("| | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms |");
    say("|---|---|---|---|---|---|");
    for (name, v) in [("direct", &d), ("gateway", &g)] {
        say(&format!(
            "| {name} | {} | {} | {} | {} | {} |",
            ms(pct(v, 0.5)),
            ms(pct(v, 0.9)),
            ms(pct(v, 0.99)),
            ms(pct(v, 0.999)),
            ms(pct(v, 1.0))
        ));
    }
    say(&format!(
        "| **added** | **{}** | {} | **{}** | {} | |",
        added(pct(&g, 0.5), pct(&d, 0.5)),
        added(pct(&g, 0.9), pct(&d, 0.9)),
        added(pct(&g, 0.99), pct(&d, 0.99)),
        added(pct(&g, 0.999), pct(&d, 0.999)),
    ));
    say("");
    say(&format!(
        "target added p50 ≤ 0.300 ms and p99 ≤ 1.000 ms: {} (added p50 {} ms, p99 {} ms)",
        verdict(c1_ok),
        ms(a50),
        ms(a99)
    ));
    say("");

    // Where the added time goes: the same client at concurrency 1 against cheaper routes.
    let status_req = format!("GET /api/status HTTP/1.1\r\nHost: {}\r\n\r\n", server.addr);
    let models_req = format!(
        "GET /v1/models HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {KEY}\r\n\r\n",
        server.addr
    );
    let steps: [(&str, &Target, Ask<'_>); 4] = [
        (
            "fake provider direct (client + fake)",
            &direct,
            direct.whole(),
        ),
        (
            "gateway `GET /api/status` (middleware only)",
            &gateway,
            Ask {
                req: status_req.as_bytes(),
                sse: false,
                expect: b"",
            },
        ),
        (
            "gateway `GET /v1/models` (+ API-key lookup in SQLite)",
            &gateway,
            Ask {
                req: models_req.as_bytes(),
                sse: false,
                expect: b"\"object\":\"list\"",
            },
        ),
        (
            "gateway `POST /v1/chat/completions` (+ parse, route, upstream call, collect)",
            &gateway,
            gateway.whole(),
        ),
    ];
    say(
        "breakdown at concurrency 1 (each row alone, same client; server CPU and context switches summed over its threads):",
    );
    say("");
    say("| request | p50 ms | p99 ms | server CPU µs/req | server context switches/req |");
    say("|---|---|---|---|---|");
    let n = p.requests.max(1);
    for (name, t, ask) in steps {
        serial_one(t, ask, 100).await?;
        let (cpu0, cs0) = (cpu_ticks(pid).unwrap_or(0), ctx_switches(pid).unwrap_or(0));
        let lat = serial_one(t, ask, n).await?;
        let (cpu1, cs1) = (cpu_ticks(pid).unwrap_or(0), ctx_switches(pid).unwrap_or(0));
        say(&format!(
            "| {name} | {} | {} | {:.0} | {:.1} |",
            ms(pct(&lat, 0.5)),
            ms(pct(&lat, 0.99)),
            cpu1.saturating_sub(cpu0) as f64 * 1e4 / n as f64,
            cs1.saturating_sub(cs0) as f64 / n as f64,
        ));
    }
    say("");

    // 2. Open loop.
    say(&format!(
        "2. open loop, {} requests/s for {} s (latency from the scheduled send time)",
        p.rate, p.seconds
    ));
    say("");
    say(
        "| | sent | ok | errors | achieved req/s | connections | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | server CPU µs/req |",
    );
    say("|---|---|---|---|---|---|---|---|---|---|---|---|");
    let mut runs = Vec::new();
    for t in [&direct, &gateway] {
        let cpu0 = cpu_ticks(pid).unwrap_or(0);
        let r = open_loop(t.clone(), p.rate, p.seconds).await?;
        let cpu = cpu_ticks(pid).unwrap_or(0).saturating_sub(cpu0) as f64 / 100.0;
        say(&format!(
            "| {} | {} | {} | {} | {:.0} | {} | {} | {} | {} | {} | {} | {} |",
            t.name,
            r.sent,
            r.ok,
            r.errors,
            r.ok as f64 / r.wall.as_secs_f64().max(f64::EPSILON),
            r.conns,
            ms(pct(&r.lat, 0.5)),
            ms(pct(&r.lat, 0.9)),
            ms(pct(&r.lat, 0.99)),
            ms(pct(&r.lat, 0.999)),
            ms(pct(&r.lat, 1.0)),
            if t.name == "gateway" {
                format!("{:.0}", cpu * 1e6 / r.ok.max(1) as f64)
            } else {
                "—".to_string()
            }
        ));
        runs.push(r);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let (od, og) = match runs.as_slice() {
        [a, b] => (a, b),
        _ => bail!("two runs expected"),
    };
    say(&format!(
        "| **added** | | | | | | {} | {} | **{}** | {} | {} | |",
        added(pct(&og.lat, 0.5), pct(&od.lat, 0.5)),
        added(pct(&og.lat, 0.9), pct(&od.lat, 0.9)),
        added(pct(&og.lat, 0.99), pct(&od.lat, 0.99)),
        added(pct(&og.lat, 0.999), pct(&od.lat, 0.999)),
        added(pct(&og.lat, 1.0), pct(&od.lat, 1.0)),
    ));
    say("");
    for r in [od, og] {
        if !r.slow.is_empty() {
            say(&format!(
                "{} requests over {} ms: {} ({})",
                if std::ptr::eq(r, od) {
                    "direct"
                } else {
                    "gateway"
                },
                SLOW.as_millis(),
                r.slow.len(),
                episodes(&r.slow)
            ));
        }
    }
    say("");
    let o99 = pct(&og.lat, 0.99).saturating_sub(pct(&od.lat, 0.99));
    let open_ok = o99 <= Duration::from_millis(2) && og.errors == 0 && og.ok == og.sent;
    say(&format!(
        "target at {} req/s: added p99 ≤ 2.000 ms and no errors: {} (added p99 {} ms, {} errors)",
        p.rate,
        verdict(open_ok),
        ms(o99),
        og.errors
    ));
    say("");

    // 3. Streaming.
    serial(&direct, &gateway, 100, true).await?; // warm-up
    let (sd, sg) = serial(&direct, &gateway, p.stream_requests, true).await?;
    let (td, gd, totd) = stream_figures(&sd);
    let (tg, gg, totg) = stream_figures(&sg);
    say(&format!(
        "3. streamed answers (`stream: true`, include_usage), concurrency 1, {} each, alternating; gaps are between successive `data:` events from the first content chunk to `[DONE]` ({} per answer)",
        p.stream_requests,
        sd.first()
            .map(|r| r.events.len().saturating_sub(1))
            .unwrap_or(0)
    ));
    say("");
    say(
        "| | TTFT p50 ms | TTFT p99 ms | gap mean ms | gap p99 ms | gap max ms | whole stream p50 ms | whole stream p99 ms |",
    );
    say("|---|---|---|---|---|---|---|---|");
    for (name, t, gp, tot) in [("direct", &td, &gd, &totd), ("gateway", &tg, &gg, &totg)] {
        say(&format!(
            "| {name} | {} | {} | {} | {} | {} | {} | {} |",
            ms(pct(t, 0.5)),
            ms(pct(t, 0.99)),
            ms(mean(gp)),
            ms(pct(gp, 0.99)),
            ms(pct(gp, 1.0)),
            ms(pct(tot, 0.5)),
            ms(pct(tot, 0.99)),
        ));
    }
    say(&format!(
        "| **added** | **{}** | **{}** | **{}** | **{}** | | {} | {} |",
        added(pct(&tg, 0.5), pct(&td, 0.5)),
        added(pct(&tg, 0.99), pct(&td, 0.99)),
        added(mean(&gg), mean(&gd)),
        added(pct(&gg, 0.99), pct(&gd, 0.99)),
        added(pct(&totg, 0.5), pct(&totd, 0.5)),
        added(pct(&totg, 0.99), pct(&totd, 0.99)),
    ));
    say("");

    // 4. Memory per in-flight stream.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_before = rss_kib(pid).unwrap_or(0);
    let ready = Arc::new(AtomicUsize::new(0));
    let mut held = Vec::with_capacity(p.streams);
    for _ in 0..p.streams {
        let (g, ready) = (gateway.clone(), ready.clone());
        held.push(tokio::spawn(async move {
            let mut c = g.connect().await?;
            let r = tokio::time::timeout(
                Duration::from_secs(60),
                exchange(
                    &mut c,
                    Ask {
                        req: &g.hold,
                        sse: true,
                        expect: b"",
                    },
                    Instant::now(),
                    Some(&ready),
                ),
            )
            .await
            .context("held stream timed out")??;
            anyhow::Ok(r.status == 200 && r.complete)
        }));
    }
    let wait = Instant::now();
    while ready.load(Ordering::Relaxed) < p.streams && wait.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let open = ready.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_open = rss_kib(pid).unwrap_or(0);
    let _ = fake.release.send(true);
    let mut finished = 0;
    for h in held {
        if let Ok(Ok(true)) = h.await {
            finished += 1;
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_after = rss_kib(pid).unwrap_or(0);
    say(&format!(
        "4. {} concurrent streams held open through the gateway (first content chunk delivered, upstream waiting): {open} open, {finished} finished after release",
        p.streams
    ));
    say(&format!(
        "RSS {:.1} MiB before, {:.1} MiB with them open = {:.1} KiB per in-flight stream; {:.1} MiB after release",
        rss_before as f64 / 1024.0,
        rss_open as f64 / 1024.0,
        rss_open.saturating_sub(rss_before) as f64 / open.max(1) as f64,
        rss_after as f64 / 1024.0
    ));
    say(&format!(
        "fake provider served {} requests on {} connections",
        fake.requests.load(Ordering::Relaxed),
        fake.connections.load(Ordering::Relaxed)
    ));
    let busy1 = busy(pid);
    let secs = t_start.elapsed().as_secs_f64().max(f64::EPSILON);
    let per_core = |ticks: u64| ticks as f64 / 100.0 / secs * 100.0;
    say(&format!(
        "CPU over the {secs:.0} s run, % of one core: server {:.0}, bench {:.0}, everything else (other processes, interrupts) {:.0}; load average (1/5/15 min, running/total) at start {load_start}, at end {}",
        per_core(busy1.1.saturating_sub(busy0.1)),
        per_core(busy1.2.saturating_sub(busy0.2)),
        per_core(
            (busy1.0.saturating_sub(busy0.0))
                .saturating_sub(busy1.1.saturating_sub(busy0.1))
                .saturating_sub(busy1.2.saturating_sub(busy0.2))
        ),
        loadavg()
    ));
    say("");
    say(&format!(
        "targets: c=1 added p50 ≤ 0.3 ms, p99 ≤ 1 ms: {}; {} req/s added p99 ≤ 2 ms, no errors: {}",
        verdict(c1_ok),
        p.rate,
        verdict(open_ok)
    ));
    drop(server);
    Ok(())
}
