//! Voice sessions on the chat socket, in cascade mode against a zero-delay fake
//! OpenAI-compatible audio server inside the bench (so the figures are the server's own
//! work: framing, resampling, voice activity detection, pacing, barge-in; not a
//! recognizer's). Every session streams real-time 20 ms PCM16 frames: an espeak-ng
//! utterance, then silence; each reply is talked over after 300 ms (barge-in), which
//! starts the next turn, and so on.
//!
//! Figures: inbound, the round trip of a `ping` sent right behind an audio frame (the
//! socket handles frames in order, so it includes that frame's processing); outbound,
//! how late each reply frame arrives against the server's real-time schedule; barge-in
//! stop (from `speech_started` to the last reply frame received); server CPU and
//! resident memory per session.

use crate::server::{KEY, ms, pct, request, rss_kib, say, start_with};
use anyhow::{Context, Result, bail};
use futures::{SinkExt, StreamExt};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio::sync::Mutex;
use tokio_tungstenite::tungstenite::Message;

pub struct Params {
    pub sessions: usize,
    pub seconds: u64,
}

/// The fake provider: transcription answers at once, speech answers 2 s of 24 kHz tone.
async fn fake_audio() -> Result<String> {
    use axum::routing::post;
    let tone: Vec<u8> = (0..48_000)
        .flat_map(|i| (((i as f32 * 0.05).sin() * 6_000.0) as i16).to_le_bytes())
        .collect();
    let tone = axum::body::Bytes::from(tone);
    let app = axum::Router::new()
        .route(
            "/v1/audio/transcriptions",
            // The upload is read whole before answering, as a real server does.
            post(|_upload: axum::body::Bytes| async {
                axum::Json(serde_json::json!({"text": "what's in my cart?"}))
            }),
        )
        .route(
            "/v1/audio/speech",
            post(move || async move { tone.clone() }),
        );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", l.local_addr()?);
    tokio::spawn(async move { axum::serve(l, app).await });
    Ok(base)
}

/// What one session measured.
#[derive(Default)]
struct Figures {
    inbound: Vec<Duration>,
    outbound_late: Vec<Duration>,
    barge_in: Vec<Duration>,
    frames_in: u64,
    frames_out: u64,
    turns: u64,
}

/// A 16 kHz utterance from espeak-ng, as 20 ms frames.
fn utterance() -> Result<Vec<Vec<u8>>> {
    let out = std::process::Command::new("espeak-ng")
        .args(["--stdout", "-v", "en-us", "what is in my cart"])
        .output()
        .context("espeak-ng (scripts/install-test-deps.sh)")?;
    let w = stonepot_voice::wav::read(&out.stdout)?;
    let pcm = stonepot_voice::resample::resample_all(&w.samples, w.rate, 16_000)?;
    Ok(pcm
        .chunks(320)
        .map(|c| {
            let mut f = c.to_vec();
            f.resize(320, 0);
            stonepot_voice::frame::to_bytes(&f)
        })
        .collect())
}

async fn session(addr: std::net::SocketAddr) -> Result<String> {
    let mut http = TcpStream::connect(addr).await?;
    let (st, body) = request(
        &mut http,
        "POST",
        "/api/restaurant/sessions",
        Some(r#"{"tenantId":"demo-restaurant"}"#),
    )
    .await?;
    if st != 200 {
        bail!("session: {st} {}", String::from_utf8_lossy(&body));
    }
    let v: serde_json::Value = serde_json::from_slice(&body)?;
    let url = v["websocketUrl"].as_str().context("no websocketUrl")?;
    let path = url.find("/ws/").map(|i| &url[i..]).context("ws path")?;
    Ok(format!("ws://{addr}{path}"))
}

/// One guest for `until`: microphone and listener.
async fn guest(url: String, speech: Arc<Vec<Vec<u8>>>, until: Instant) -> Result<Figures> {
    let (ws, _) = tokio_tungstenite::connect_async_with_config(url, None, true).await?;
    let (sink, mut stream) = ws.split();
    let sink = Arc::new(Mutex::new(sink));
    sink.lock()
        .await
        .send(Message::text(r#"{"type":"start"}"#))
        .await?;
    let talk = Arc::new(AtomicBool::new(true));
    let ping_at = Arc::new(Mutex::new(None::<Instant>));
    let (mic_sink, mic_talk, mic_ping) = (sink.clone(), talk.clone(), ping_at.clone());
    let mic = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        let silence = vec![0u8; 640];
        let mut pos: Option<usize> = None;
        let mut n = 0u64;
        while Instant::now() < until {
            tick.tick().await;
            if pos.is_none() && mic_talk.swap(false, Ordering::Relaxed) {
                pos = Some(0);
            }
            let f = match pos {
                Some(i) if i < speech.len() => {
                    pos = Some(i + 1);
                    speech[i].clone()
                }
                _ => {
                    pos = None;
                    silence.clone()
                }
            };
            let mut s = mic_sink.lock().await;
            s.send(Message::binary(f)).await?;
            n += 1;
            // Every 25th frame (twice a second), a ping right behind it.
            if n.is_multiple_of(25) {
                let mut p = mic_ping.lock().await;
                if p.is_none() {
                    *p = Some(Instant::now());
                    s.send(Message::text(r#"{"type":"ping"}"#)).await?;
                }
            }
        }
        anyhow::Ok(n)
    });
    let mut fig = Figures::default();
    let mut playback: Option<(Instant, u64)> = None;
    let mut speech_started: Option<Instant> = None;
    // Speech start of the barge-in being measured, until the next reply starts.
    let mut measuring: Option<Instant> = None;
    let mut last_audio: Option<Instant> = None;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        let Ok(msg) = tokio::time::timeout(left + Duration::from_millis(200), stream.next()).await
        else {
            break;
        };
        let Some(msg) = msg else { break };
        let now = Instant::now();
        match msg? {
            Message::Binary(_) => {
                fig.frames_out += 1;
                last_audio = Some(now);
                let (first, k) = playback.get_or_insert((now, 0));
                // The server sends 200 ms ahead, then at real time.
                let due = *first + Duration::from_millis(20 * k.saturating_sub(10));
                fig.outbound_late.push(now.saturating_duration_since(due));
                *k += 1;
                if *k == 15 {
                    talk.store(true, Ordering::Relaxed);
                }
            }
            Message::Text(t) => {
                let v: serde_json::Value = serde_json::from_str(&t)?;
                match v["type"].as_str() {
                    Some("pong") => {
                        if let Some(t0) = ping_at.lock().await.take() {
                            fig.inbound.push(now - t0);
                        }
                    }
                    Some("audio_start") => {
                        playback = None;
                        fig.turns += 1;
                    }
                    Some("speech_started") => speech_started = Some(now),
                    // Late frames of the stopped reply would arrive after this; the next
                    // reply's audio_start closes the window (below).
                    Some("interrupted") => measuring = speech_started.take(),
                    Some("error") => bail!("server error: {v}"),
                    _ => {}
                }
                if v["type"] == "audio_start"
                    && let Some(s) = measuring.take()
                {
                    // The last reply frame of the interrupted playback after speech
                    // started (none: it stopped before the event was even sent).
                    let stop = last_audio
                        .filter(|a| *a > s)
                        .map_or(Duration::ZERO, |a| a - s);
                    fig.barge_in.push(stop);
                }
            }
            Message::Close(_) => break,
            _ => {}
        }
    }
    fig.frames_in = mic.await??;
    Ok(fig)
}

pub async fn run(bin: PathBuf, p: Params) -> Result<()> {
    let bin = std::fs::canonicalize(&bin).context("build with cargo build --release first")?;
    let fake = fake_audio().await?;
    let (server, _) = start_with(
        &bin,
        &[
            ("SPEECH_STT_URL", fake.as_str()),
            ("SPEECH_TTS_URL", fake.as_str()),
            ("SESSION_IDLE", "600s"),
        ],
    )
    .await?;
    let addr = server.addr;
    let pid = server.child.id();
    let speech = Arc::new(utterance()?);
    let mut urls = Vec::with_capacity(p.sessions);
    for _ in 0..p.sessions {
        urls.push(session(addr).await?);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss0 = rss_kib(pid).unwrap_or(0);
    let cpu0 = crate::display::cpu_ticks(pid).unwrap_or(0);
    let t0 = Instant::now();
    let until = t0 + Duration::from_secs(p.seconds);
    let peak = Arc::new(AtomicU64::new(0));
    let sampler = {
        let peak = peak.clone();
        tokio::spawn(async move {
            while Instant::now() < until {
                tokio::time::sleep(Duration::from_millis(500)).await;
                peak.fetch_max(rss_kib(pid).unwrap_or(0), Ordering::Relaxed);
            }
        })
    };
    let tasks: Vec<_> = urls
        .into_iter()
        .enumerate()
        .map(|(i, url)| {
            let speech = speech.clone();
            tokio::spawn(async move {
                // Spread the sessions' frame clocks over one 20 ms period.
                tokio::time::sleep(Duration::from_micros((i as u64 * 20_000) / 64 % 20_000)).await;
                guest(url, speech, until).await
            })
        })
        .collect();
    let mut all = Figures::default();
    let mut failed = 0;
    for t in tasks {
        match t.await? {
            Ok(f) => {
                all.inbound.extend(f.inbound);
                all.outbound_late.extend(f.outbound_late);
                all.barge_in.extend(f.barge_in);
                all.frames_in += f.frames_in;
                all.frames_out += f.frames_out;
                all.turns += f.turns;
            }
            Err(e) => {
                failed += 1;
                say(&format!("session failed: {e:#}"));
            }
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    let cpu = crate::display::cpu_ticks(pid)
        .unwrap_or(0)
        .saturating_sub(cpu0) as f64
        / 100.0;
    sampler.await?;
    let rss1 = peak.load(Ordering::Relaxed);
    for v in [&mut all.inbound, &mut all.outbound_late, &mut all.barge_in] {
        v.sort();
    }
    let n = p.sessions.max(1) as f64;
    say(&format!(
        "voice (cascade, fake zero-delay speech provider): {} sessions for {:.0} s, KEY {KEY}; {failed} failed",
        p.sessions, secs
    ));
    say(&format!(
        "frames: {} in ({:.0}/s), {} out ({:.0}/s); {} spoken replies",
        all.frames_in,
        all.frames_in as f64 / secs,
        all.frames_out,
        all.frames_out as f64 / secs,
        all.turns
    ));
    say(&format!(
        "inbound frame+ping round trip: p50 {} ms, p99 {} ms, max {} ms ({} samples)",
        ms(pct(&all.inbound, 0.5)),
        ms(pct(&all.inbound, 0.99)),
        ms(pct(&all.inbound, 1.0)),
        all.inbound.len()
    ));
    say(&format!(
        "outbound frame lateness vs real-time schedule: p50 {} ms, p99 {} ms, max {} ms",
        ms(pct(&all.outbound_late, 0.5)),
        ms(pct(&all.outbound_late, 0.99)),
        ms(pct(&all.outbound_late, 1.0))
    ));
    say(&format!(
        "barge-in stop (speech_started → last reply frame): p50 {} ms, p99 {} ms, max {} ms ({} barge-ins)",
        ms(pct(&all.barge_in, 0.5)),
        ms(pct(&all.barge_in, 0.99)),
        ms(pct(&all.barge_in, 1.0)),
        all.barge_in.len()
    ));
    say(&format!(
        "server CPU {:.1} s over {:.1} s = {:.2}% of a core per session; RSS {:.1} MiB idle sessions → {:.1} MiB peak = {:.0} KiB per active session",
        cpu,
        secs,
        cpu * 100.0 / secs / n,
        rss0 as f64 / 1024.0,
        rss1 as f64 / 1024.0,
        rss1.saturating_sub(rss0) as f64 / n
    ));
    drop(server);
    Ok(())
}
