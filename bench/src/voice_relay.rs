//! `voice-relay`: N concurrent relay sessions (stonepot-realtime) against the fake OpenAI
//! Realtime or Gemini Live server on loopback, all in this process. Each session streams
//! 20 ms guest frames in real time and receives 20 ms model deltas in real time; every
//! few replies the fake barges in (speech start) mid-reply.
//!
//! Figures:
//! - added latency per frame, up (`relay.audio()` call → the fake has the decoded
//!   append) and down (the fake sends a delta → the relay's `Audio` event is read):
//!   resampling, base64 and JSON, the WebSocket and loopback TCP;
//! - barge-in stop: the fake sends speech-start → the relay's `Interrupted` event is read
//!   (and how many frames of the cancelled reply still came through: must be 0);
//! - CPU and RSS per session. The fake provider runs on its own runtime (threads named
//!   `fake-provider`), so CPU is split by thread: relay sessions plus the light load
//!   generator, and the fake. RSS covers the whole process, so it is an upper bound.

use crate::server::{ms, pct, rss_kib, say};
use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use stonepot_realtime::testing::{FakeConn, FakeServer};
use stonepot_realtime::{ProviderConfig, RelayConfig, RelayEvent, ToolCall, ToolRunner};
use tokio::sync::Mutex;
use tokio::time::{Instant, MissedTickBehavior};

pub struct Params {
    pub sessions: usize,
    pub seconds: u64,
    pub provider: String,
}

/// Replies are this many 20 ms deltas long (2 s).
const REPLY_FRAMES: u64 = 100;
/// Every third reply is barged in on half-way.
const BARGE_EVERY: u64 = 3;

struct NoTools;

#[async_trait::async_trait]
impl ToolRunner for NoTools {
    async fn run(&self, _call: ToolCall) -> Value {
        json!({"ok": true})
    }
}

#[derive(Default)]
struct SessionFigures {
    up: Vec<Duration>,
    down: Vec<Duration>,
    barge: Vec<Duration>,
    late_frames: usize,
    errors: usize,
    /// Guest frames sent in the measured window (the schedule is 50 per second).
    sent: usize,
}

/// The 1-minute load average: on a shared machine, the first thing to read next to the
/// figures (a starved load generator falls behind its 20 ms schedule).
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

/// Threads of the fake provider's runtime.
const FAKE_THREADS: &str = "fake-provider";

/// CPU ticks (user + system) of this process's threads: (relay side, fake provider).
fn cpu_ticks() -> (u64, u64) {
    let mut relay = 0;
    let mut fake = 0;
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return (0, 0);
    };
    for task in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        let Some((head, after)) = stat.rsplit_once(')') else {
            continue;
        };
        let f: Vec<&str> = after.split_whitespace().collect();
        let ticks = f.get(11).and_then(|u| u.parse::<u64>().ok()).unwrap_or(0)
            + f.get(12).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
        // The name in parentheses is `comm` (cut to 15 bytes; ours has 13).
        if head.contains(FAKE_THREADS) {
            fake += ticks;
        } else {
            relay += ticks;
        }
    }
    (relay, fake)
}

fn config(provider: &str, url: &str) -> Result<RelayConfig> {
    let p = match provider {
        "openai" => ProviderConfig::OpenAi {
            url: url.into(),
            model: "gpt-realtime".into(),
            api_key: None,
            voice: "marin".into(),
            transcription_model: "gpt-4o-mini-transcribe".into(),
        },
        "gemini" => ProviderConfig::Gemini {
            url: url.into(),
            model: "gemini-live".into(),
            api_key: None,
            transparent_resumption: false,
        },
        other => bail!("--provider must be openai or gemini, not {other}"),
    };
    let mut cfg = RelayConfig::new(p, "bench", Vec::new());
    // The figure is the stop once the relay has decided to interrupt: the minimum
    // speech before that decision (200 ms by default) is policy, not latency.
    cfg.barge_in_min = Duration::ZERO;
    Ok(cfg)
}

/// The fake's side of one session: records when each append arrived, sends 20 ms deltas
/// in real time and barges in every third reply.
async fn fake_side(
    mut conn: FakeConn,
    gemini: bool,
    start: Instant,
    until: Instant,
) -> (Vec<Instant>, Vec<Instant>, Vec<Instant>) {
    // Arrival times are stamped by the fake's connection task, so waiting here loses none.
    tokio::time::sleep_until(start).await;
    let mut appends = Vec::new();
    let mut delivered = Vec::new();
    let mut barges = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let delta = vec![1000i16; 480];
    let mut frame: u64 = 0;
    let mut reply: u64 = 0;
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if Instant::now() >= until {
                    break;
                }
                let rid = format!("r{reply}");
                let pos = frame % REPLY_FRAMES;
                if pos == 0 && !gemini {
                    conn.send(json!({"type": "response.created", "response": {"id": rid}}));
                }
                let barge = reply % BARGE_EVERY == BARGE_EVERY - 1;
                if barge && pos == REPLY_FRAMES / 2 {
                    barges.push(Instant::now());
                    if gemini {
                        conn.send(json!({"serverContent": {"interrupted": true}}));
                    } else {
                        conn.send(json!({"type": "input_audio_buffer.speech_started",
                            "audio_start_ms": 0, "item_id": format!("u{reply}")}));
                        // What a provider already had in flight: must never play.
                        for _ in 0..3 {
                            conn.send_audio(&rid, &format!("a{reply}"), &delta);
                        }
                        conn.send(json!({"type": "response.done",
                            "response": {"id": rid, "status": "cancelled"}}));
                    }
                    frame += REPLY_FRAMES - pos;
                    reply += 1;
                    continue;
                }
                delivered.push(Instant::now());
                conn.send_audio(&rid, &format!("a{reply}"), &delta);
                frame += 1;
                if frame.is_multiple_of(REPLY_FRAMES) {
                    if gemini {
                        conn.send(json!({"serverContent": {"turnComplete": true}}));
                    } else {
                        conn.send(json!({"type": "response.done",
                            "response": {"id": rid, "status": "completed"}}));
                    }
                    reply += 1;
                }
            }
            r = conn.recv(Duration::from_secs(5)) => match r {
                Some(r) => if r.is_audio() { appends.push(r.at) },
                None => break,
            }
        }
    }
    (appends, delivered, barges)
}

pub async fn run(p: Params) -> Result<()> {
    let fake_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name(FAKE_THREADS)
        .enable_all()
        .build()
        .context("the fake provider's runtime")?;
    let result = measure(p, fake_rt.handle()).await;
    fake_rt.shutdown_background();
    result
}

async fn measure(p: Params, fake_rt: &tokio::runtime::Handle) -> Result<()> {
    let gemini = p.provider == "gemini";
    // Started on its own runtime, so its accept loop and connections run there.
    let mut fake = fake_rt
        .spawn(async move {
            if gemini {
                FakeServer::gemini().await
            } else {
                FakeServer::openai(Duration::from_secs(3600)).await
            }
        })
        .await??;
    let rss0 = rss_kib(std::process::id()).unwrap_or(0);
    let load0 = load_average();
    let warmup = Duration::from_secs(2);
    let start =
        Instant::now() + Duration::from_millis(500) + Duration::from_millis(5 * p.sessions as u64);
    let until = start + warmup + Duration::from_secs(p.seconds);
    let measure_from = start + warmup;
    let figures = Arc::new(Mutex::new(Vec::<SessionFigures>::new()));
    let mut tasks = Vec::new();
    for i in 0..p.sessions {
        let (relay, mut events) =
            stonepot_realtime::start(config(&p.provider, &fake.url)?, Arc::new(NoTools))
                .await
                .with_context(|| format!("session {i}"))?;
        let conn = fake
            .next_conn()
            .await
            .context("the fake saw no connection")?;
        let fake_task = fake_rt.spawn(fake_side(conn, gemini, start, until));
        let figures = figures.clone();
        tasks.push(tokio::spawn(async move {
            let mut sent = Vec::new();
            let mut got = Vec::new();
            let mut interrupts = Vec::new();
            let mut late = 0usize;
            let mut errors = 0usize;
            let mut in_cancelled = false;
            tokio::time::sleep_until(start).await;
            let mut tick = tokio::time::interval(Duration::from_millis(20));
            tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
            let frame = vec![0i16; 320];
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        if Instant::now() >= until {
                            break;
                        }
                        sent.push(Instant::now());
                        if relay.audio(frame.clone()).await.is_err() {
                            break;
                        }
                    }
                    ev = events.recv() => match ev {
                        Some(RelayEvent::Audio { .. }) => {
                            if in_cancelled { late += 1 } else { got.push(Instant::now()) }
                        }
                        Some(RelayEvent::Interrupted { .. }) => {
                            interrupts.push(Instant::now());
                            in_cancelled = true;
                        }
                        Some(RelayEvent::AudioStart) => in_cancelled = false,
                        Some(RelayEvent::Error { .. }) => errors += 1,
                        Some(RelayEvent::Closed { .. }) | None => break,
                        Some(_) => {}
                    }
                }
            }
            let _ = relay.close().await;
            let Ok((appends, delivered, barges)) = fake_task.await else {
                return;
            };
            let mut f = SessionFigures {
                late_frames: late,
                errors,
                sent: sent.iter().filter(|s| **s >= measure_from).count(),
                ..Default::default()
            };
            // The k-th frame sent is the k-th append received (one 20 ms frame in, one
            // append out), and likewise for deltas that were not cancelled.
            for (s, a) in sent.iter().zip(appends.iter()) {
                if *s >= measure_from {
                    f.up.push(a.saturating_duration_since(*s));
                }
            }
            for (d, g) in delivered.iter().zip(got.iter()) {
                if *d >= measure_from {
                    f.down.push(g.saturating_duration_since(*d));
                }
            }
            for (b, i) in barges.iter().zip(interrupts.iter()) {
                f.barge.push(i.saturating_duration_since(*b));
            }
            figures.lock().await.push(f);
        }));
    }
    say(&format!(
        "voice-relay: {} sessions ({}), {} s measured after {} s warm-up, 20 ms frames both ways",
        p.sessions,
        p.provider,
        p.seconds,
        warmup.as_secs()
    ));
    tokio::time::sleep_until(measure_from).await;
    let cpu0 = cpu_ticks();
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs(p.seconds) / 2).await;
    let rss1 = rss_kib(std::process::id()).unwrap_or(0);
    tokio::time::sleep_until(until).await;
    let cpu1 = cpu_ticks();
    let relay_cpu = cpu1.0.saturating_sub(cpu0.0) as f64 / 100.0;
    let fake_cpu = cpu1.1.saturating_sub(cpu0.1) as f64 / 100.0;
    let wall = t0.elapsed().as_secs_f64();
    for t in tasks {
        let _ = t.await;
    }
    let figs = figures.lock().await;
    let mut up: Vec<Duration> = figs.iter().flat_map(|f| f.up.iter().copied()).collect();
    let mut down: Vec<Duration> = figs.iter().flat_map(|f| f.down.iter().copied()).collect();
    let mut barge: Vec<Duration> = figs.iter().flat_map(|f| f.barge.iter().copied()).collect();
    up.sort();
    down.sort();
    barge.sort();
    let late: usize = figs.iter().map(|f| f.late_frames).sum();
    let sent: usize = figs.iter().map(|f| f.sent).sum();
    let scheduled = p.sessions as u64 * p.seconds * 50;
    say(&format!(
        "  guest frames sent on schedule: {sent} of {scheduled} ({:.1}%); load average {} -> {}",
        sent as f64 * 100.0 / scheduled.max(1) as f64,
        load0,
        load_average()
    ));
    let errors: usize = figs.iter().map(|f| f.errors).sum();
    say(&format!(
        "  up   (frame in -> provider has it): n={} p50={} ms p99={} ms max={} ms",
        up.len(),
        ms(pct(&up, 0.5)),
        ms(pct(&up, 0.99)),
        ms(up.last().copied().unwrap_or_default())
    ));
    say(&format!(
        "  down (provider delta -> client event): n={} p50={} ms p99={} ms max={} ms",
        down.len(),
        ms(pct(&down, 0.5)),
        ms(pct(&down, 0.99)),
        ms(down.last().copied().unwrap_or_default())
    ));
    say(&format!(
        "  barge-in stop (speech start -> interrupted): n={} p50={} ms p99={} ms max={} ms; cancelled-reply frames played: {late}",
        barge.len(),
        ms(pct(&barge, 0.5)),
        ms(pct(&barge, 0.99)),
        ms(barge.last().copied().unwrap_or_default())
    ));
    let n = p.sessions.max(1) as f64;
    say(&format!(
        "  CPU (% of one core): relay sessions + load generator {:.1}% ({:.3}% per session), fake provider {:.1}%",
        relay_cpu / wall * 100.0,
        relay_cpu / wall * 100.0 / n,
        fake_cpu / wall * 100.0,
    ));
    say(&format!(
        "  RSS {} MiB -> {} MiB, {:.0} KiB per session (fake provider and load generator included); relay errors: {errors}",
        rss0 / 1024,
        rss1 / 1024,
        rss1.saturating_sub(rss0) as f64 / n
    ));
    Ok(())
}
