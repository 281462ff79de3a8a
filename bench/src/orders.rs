//! Orders end to end over HTTP on SQLite, the way a guest's order really flows: a new
//! conversation (`POST /api/restaurant/sessions`), the cart built by the offline agent
//! (`POST /api/conversations/{id}/messages`, "two margherita pizzas", read to the end
//! of its SSE stream), the price lock (`/quote`), the confirmation by hash
//! (`/confirm`), and payment at the counter (`/orders/{o}/status` → `paid`). One order
//! is those five requests on one keep-alive connection; its latency is all five.
//!
//! 1. Throughput: `clients` concurrent guests, closed loop, until `orders` are placed.
//! 2. Latency: orders started at a fixed `rate` (open loop, latency from the scheduled
//!    start) for `seconds`.
//! 3. The daily close of the day holding the throughput phase's orders (timed through
//!    `POST /api/tenants/{t}/closes/{date}`), then its re-run (unchanged).

use crate::display::cpu_ticks;
use crate::server::{ms, pct, request, request_as, say, start_with};
use anyhow::{Context, Result, bail};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio::sync::Mutex;

pub struct Params {
    pub clients: usize,
    pub orders: usize,
    pub rate: u64,
    pub seconds: u64,
}

const TENANT: &str = "demo-restaurant";

fn json(body: &[u8]) -> Result<serde_json::Value> {
    Ok(serde_json::from_slice(body)?)
}

/// What the guests ask for, in turn: different guests order different things.
const CARTS: &[&str] = &[
    "two margherita pizzas",
    "one tiramisu",
    "three margherita pizzas",
    "one margherita pizza and one tiramisu",
    "two tiramisu",
    "four margherita pizzas",
];

/// Time each of the five requests took, per order, for the phase being measured.
static STEPS: std::sync::Mutex<[Vec<Duration>; 5]> =
    std::sync::Mutex::new([Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new()]);

fn step(i: usize, since: Instant) -> Instant {
    if let Some(v) = STEPS.lock().unwrap_or_else(|p| p.into_inner()).get_mut(i) {
        v.push(since.elapsed());
    }
    Instant::now()
}

static GUEST: AtomicUsize = AtomicUsize::new(0);

/// Places one order on `s`; returns its id.
async fn place(s: &mut TcpStream) -> Result<String> {
    let t = Instant::now();
    let cart = CARTS
        .get(GUEST.fetch_add(1, Ordering::Relaxed) % CARTS.len())
        .copied()
        .unwrap_or("two margherita pizzas");
    let (st, body) = request(
        s,
        "POST",
        "/api/restaurant/sessions",
        Some(r#"{"tenantId":"demo-restaurant"}"#),
    )
    .await?;
    if st != 200 {
        bail!("session: {st} {}", String::from_utf8_lossy(&body));
    }
    let session = json(&body)?;
    let conv = session["sessionId"]
        .as_str()
        .context("no sessionId")?
        .to_string();
    // The guest's kiosk talks, quotes and confirms with the session's token; staff
    // (the bench key) take the payment at the counter.
    let token = session["token"].as_str().context("no token")?.to_string();
    let t = step(0, t);
    let (st, body) = request_as(
        s,
        "POST",
        &format!("/api/conversations/{conv}/messages"),
        Some(&format!(r#"{{"text":"{cart}"}}"#)),
        &token,
    )
    .await?;
    let t = step(1, t);
    let events = String::from_utf8_lossy(&body);
    if st != 200 || !events.contains("assistant_done") {
        bail!("message: {st} {events}");
    }
    let (st, body) = request_as(
        s,
        "POST",
        &format!("/api/conversations/{conv}/quote"),
        Some("{}"),
        &token,
    )
    .await?;
    if st != 200 {
        bail!("quote: {st} {}", String::from_utf8_lossy(&body));
    }
    let hash = json(&body)?["hash"]
        .as_str()
        .context("no hash")?
        .to_string();
    let t = step(2, t);
    let (st, body) = request_as(
        s,
        "POST",
        &format!("/api/conversations/{conv}/confirm"),
        Some(&format!(r#"{{"quoteHash":"{hash}"}}"#)),
        &token,
    )
    .await?;
    if st != 200 {
        bail!("confirm: {st} {}", String::from_utf8_lossy(&body));
    }
    let id = json(&body)?["id"]
        .as_str()
        .context("no order id")?
        .to_string();
    let t = step(3, t);
    let (st, body) = request(
        s,
        "POST",
        &format!("/api/tenants/{TENANT}/orders/{id}/status"),
        Some(r#"{"to":"paid","by":"bench"}"#),
    )
    .await?;
    if st != 200 {
        bail!("pay: {st} {}", String::from_utf8_lossy(&body));
    }
    step(4, t);
    Ok(id)
}

fn report(name: &str, mut lat: Vec<Duration>, errors: usize, wall: Duration) {
    lat.sort();
    let n = lat.len();
    let mut taken = std::mem::take(&mut *STEPS.lock().unwrap_or_else(|p| p.into_inner()));
    let steps: Vec<String> = ["session", "message", "quote", "confirm", "pay"]
        .iter()
        .zip(taken.iter_mut())
        .map(|(name, v)| {
            v.sort_unstable();
            let mean = v.iter().sum::<Duration>() / u32::try_from(v.len().max(1)).unwrap_or(1);
            format!(
                "{name} {}/{}/{}",
                ms(mean),
                ms(pct(v, 0.50)),
                ms(pct(v, 0.99))
            )
        })
        .collect();
    say(&format!(
        "{name}: {n} orders in {:.2} s = {:.0} orders/s; latency per order p50 {} ms, p99 {} ms, p99.9 {} ms, max {} ms; errors {errors}",
        wall.as_secs_f64(),
        n as f64 / wall.as_secs_f64(),
        ms(pct(&lat, 0.50)),
        ms(pct(&lat, 0.99)),
        ms(pct(&lat, 0.999)),
        ms(lat.last().copied().unwrap_or_default()),
    ));
    say(&format!(
        "  ms per step (mean/p50/p99): {}",
        steps.join(", ")
    ));
}

/// The server's store counters from `/metrics`: writes, commits and WAL syncs.
async fn store_counters(addr: SocketAddr) -> Result<[f64; 3]> {
    let mut s = TcpStream::connect(addr).await?;
    let (st, body) = request(&mut s, "GET", "/metrics", None).await?;
    if st != 200 {
        bail!("metrics: {st}");
    }
    let text = String::from_utf8_lossy(&body);
    let read = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    Ok([
        read("stonepot_store_writes_total"),
        read("stonepot_store_commits_total"),
        read("stonepot_store_syncs_total"),
    ])
}

async fn throughput(addr: SocketAddr, pid: u32, clients: usize, orders: usize) -> Result<()> {
    let next = Arc::new(AtomicUsize::new(0));
    let counters0 = store_counters(addr).await?;
    let cpu0 = cpu_ticks(pid).unwrap_or(0);
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0usize;
            let mut s = TcpStream::connect(addr).await?;
            s.set_nodelay(true)?;
            while next.fetch_add(1, Ordering::Relaxed) < orders {
                let t = Instant::now();
                match place(&mut s).await {
                    Ok(_) => lat.push(t.elapsed()),
                    Err(e) => {
                        errors += 1;
                        if errors == 1 {
                            say(&format!("  error: {e:#}"));
                        }
                        s = TcpStream::connect(addr).await?;
                    }
                }
            }
            anyhow::Ok((lat, errors))
        }));
    }
    let (mut lat, mut errors) = (Vec::new(), 0);
    for t in tasks {
        let (l, e) = t.await??;
        lat.extend(l);
        errors += e;
    }
    let wall = t0.elapsed();
    let cpu_ms = (cpu_ticks(pid).unwrap_or(0).saturating_sub(cpu0)) as f64 * 10.0;
    let placed = lat.len().max(1);
    report(
        &format!("throughput, {clients} concurrent guests (closed loop)"),
        lat,
        errors,
        wall,
    );
    say(&format!(
        "  server CPU {:.2} ms per order ({:.0}% of one core)",
        cpu_ms / placed as f64,
        cpu_ms / wall.as_secs_f64() / 10.0
    ));
    let counters = store_counters(addr).await?;
    let per = |i: usize| (counters[i] - counters0[i]) / placed as f64;
    say(&format!(
        "  store per order: {:.1} writes, {:.1} commits, {:.1} WAL syncs",
        per(0),
        per(1),
        per(2)
    ));
    Ok(())
}

async fn open_loop(addr: SocketAddr, rate: u64, seconds: u64) -> Result<()> {
    let pool: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
    let total = usize::try_from(rate * seconds)?;
    let gap = Duration::from_secs_f64(1.0 / rate as f64);
    let t0 = Instant::now();
    let mut tasks = Vec::with_capacity(total);
    for i in 0..total {
        let at = t0 + gap * u32::try_from(i)?;
        tokio::time::sleep_until(at.into()).await;
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            let conn = pool.lock().await.pop();
            let mut s = match conn {
                Some(s) => s,
                None => {
                    let s = TcpStream::connect(addr).await?;
                    s.set_nodelay(true)?;
                    s
                }
            };
            let r = place(&mut s).await;
            let lat = at.elapsed();
            if r.is_ok() {
                pool.lock().await.push(s);
            }
            anyhow::Ok((r, lat))
        }));
    }
    let (mut lat, mut errors) = (Vec::new(), 0);
    for t in tasks {
        match t.await? {
            Ok((Ok(_), l)) => lat.push(l),
            Ok((Err(e), _)) | Err(e) => {
                errors += 1;
                if errors == 1 {
                    say(&format!("  error: {e:#}"));
                }
            }
        }
    }
    report(
        &format!("open loop at {rate} orders/s for {seconds} s"),
        lat,
        errors,
        t0.elapsed(),
    );
    Ok(())
}

/// Closes the business day that holds "now" (the settings put its edges twelve hours
/// away) and times it.
async fn close(addr: SocketAddr, date: &str, label: &str) -> Result<()> {
    let mut s = TcpStream::connect(addr).await?;
    let t = Instant::now();
    let (st, body) = request(
        &mut s,
        "POST",
        &format!("/api/tenants/{TENANT}/closes/{date}"),
        Some("{}"),
    )
    .await?;
    let took = t.elapsed();
    if st != 200 {
        bail!("close: {st} {}", String::from_utf8_lossy(&body));
    }
    let v = json(&body)?;
    say(&format!(
        "close ({label}): {} orders, outcome {}, revision {}, {} ms ({} bytes of JSON report)",
        v["report"]["sales"]["orders"],
        v["outcome"],
        v["revision"],
        ms(took),
        serde_json::to_vec_pretty(&v["report"])?.len() + 1,
    ));
    Ok(())
}

pub async fn run(bin: PathBuf, p: Params) -> Result<()> {
    let bin = std::fs::canonicalize(&bin).context("build with cargo build --release first")?;
    let (server, _) = start_with(&bin, &[("LOG_LEVEL", "warn")]).await?;
    let addr = server.addr;
    // Day edges twelve hours from now, so every order below lands in one business day.
    let now_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let edge = (now_s + 12 * 3600) % 86_400;
    let day_end = format!("{:02}:{:02}", edge / 3600, edge / 60 % 60);
    let mut s = TcpStream::connect(addr).await?;
    let (st, body) = request(
        &mut s,
        "PUT",
        &format!("/api/tenants/{TENANT}/close-settings"),
        Some(&format!(
            r#"{{"dayEnd":"{day_end}","timeZone":"UTC","cron":"0 0 0 1 1 *"}}"#
        )),
    )
    .await?;
    if st != 200 {
        bail!("close settings: {st} {}", String::from_utf8_lossy(&body));
    }
    // The business date holding now: it started at the last edge (12 h ago or 12 h from
    // now minus a day), i.e. the UTC date of now − 12 h.
    let started = now_s - 12 * 3600;
    let date = civil_date(started / 86_400);

    say(&format!(
        "orders end to end over HTTP on SQLite (5 requests per order), server pid {}",
        server.child.id()
    ));
    // Warm-up: connections, statement caches, the agent.
    let pid = server.child.id();
    throughput(addr, pid, p.clients.min(4), 50).await?;
    throughput(addr, pid, p.clients, p.orders).await?;
    close(addr, &date, "first").await?;
    close(addr, &date, "re-run").await?;
    open_loop(addr, p.rate, p.seconds).await?;
    close(addr, &date, "after the open-loop orders").await?;
    Ok(())
}

/// Days since the epoch to `YYYY-MM-DD` (Howard Hinnant's civil_from_days).
fn civil_date(days: u64) -> String {
    let z = i64::try_from(days).unwrap_or(0) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}
