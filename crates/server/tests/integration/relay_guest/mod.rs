//! The guest side of the relay tests: the demo server in relay mode against a fake
//! realtime provider, a guest on the real chat socket that records everything it gets,
//! and readers for the conversation's transcript, cart and display.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use crate::common::{TestServer, get, post_json, start};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use stonepot_realtime::testing::{FakeConn, FakeServer};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

pub const KEY: &str = "sp_relay_test";
pub const WAIT: Duration = Duration::from_secs(5);

/// The demo server in relay mode against `fake`. The text-model variables point at a
/// closed local port: setting a provider key must never let a test reach the internet.
pub async fn server(fake: &FakeServer, provider: &str) -> TestServer {
    let mut env = vec![
        ("STONEPOT_DEMO_KEY", KEY),
        ("VOICE_MODE", "relay"),
        ("REALTIME_PROVIDER", provider),
        ("REALTIME_URL", fake.url.as_str()),
    ];
    match provider {
        "openai" => env.extend([
            ("OPENAI_API_KEY", "sk-relay-test"),
            ("OPENAI_BASE_URL", "http://127.0.0.1:9"),
        ]),
        _ => env.extend([
            ("GEMINI_API_KEY", "g-relay-test"),
            ("GEMINI_BASE_URL", "http://127.0.0.1:9"),
        ]),
    }
    start(&env).await
}

/// What the guest got from the server.
#[derive(Debug, Clone)]
pub enum Got {
    Event(Value),
    /// One binary frame of reply audio.
    Audio(Vec<i16>),
}

pub struct Guest {
    pub id: String,
    sink: futures::stream::SplitSink<
        tokio_tungstenite::WebSocketStream<
            tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
        >,
        Message,
    >,
    rx: mpsc::UnboundedReceiver<(Instant, Got)>,
    /// Everything received so far, in order.
    pub seen: Vec<(Instant, Got)>,
}

impl Guest {
    pub async fn connect(s: &TestServer) -> Guest {
        let res = post_json(
            s.url("/api/restaurant/sessions"),
            Some(KEY),
            &json!({"tenantId": "demo-restaurant", "userId": "guest-1", "language": "en"}),
        )
        .await;
        assert_eq!(res.status(), 200);
        let sess: Value = res.json().await.unwrap();
        let (ws, _) = tokio_tungstenite::connect_async(sess["websocketUrl"].as_str().unwrap())
            .await
            .unwrap();
        let (sink, mut stream) = ws.split();
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(Ok(m)) = stream.next().await {
                let got = match m {
                    Message::Text(t) => Got::Event(serde_json::from_str(&t).unwrap()),
                    Message::Binary(b) => Got::Audio(
                        b.chunks_exact(2)
                            .map(|c| i16::from_le_bytes([c[0], c[1]]))
                            .collect(),
                    ),
                    _ => continue,
                };
                if tx.send((Instant::now(), got)).is_err() {
                    return;
                }
            }
        });
        let mut g = Guest {
            id: sess["sessionId"].as_str().unwrap().to_string(),
            sink,
            rx,
            seen: Vec::new(),
        };
        g.until("ready").await;
        g
    }

    /// A guest that has sent `start` and seen `started`, and the relay's connection as
    /// the fake provider sees it (its `session.update` / `setup` already read).
    pub async fn open(s: &TestServer, fake: &mut FakeServer) -> (Guest, FakeConn) {
        let mut g = Guest::connect(s).await;
        g.send(json!({"type": "start", "sampleRate": 16000})).await;
        let started = g.until_any(&["started", "error"]).await;
        assert_eq!(started["type"], "started", "{started}");
        assert_eq!(started["mode"], "relay");
        assert_eq!(started["frameBytes"], 640);
        let conn = fake.next_conn().await.expect("the relay connected");
        (g, conn)
    }

    pub async fn send(&mut self, v: Value) {
        self.sink.send(Message::text(v.to_string())).await.unwrap();
    }

    pub async fn frame(&mut self, samples: &[i16]) {
        let bytes: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
        self.sink.send(Message::binary(bytes)).await.unwrap();
    }

    pub async fn next(&mut self) -> Option<(Instant, Got)> {
        let got = tokio::time::timeout(WAIT, self.rx.recv()).await.ok()??;
        self.seen.push(got.clone());
        Some(got)
    }

    /// The next event of one of `kinds` (keeping everything before it in `seen`).
    pub async fn until_any(&mut self, kinds: &[&str]) -> Value {
        loop {
            let Some((_, got)) = self.next().await else {
                panic!("no {kinds:?}; got {:?}", self.kinds());
            };
            if let Got::Event(v) = got
                && kinds.iter().any(|k| v["type"] == *k)
            {
                return v;
            }
        }
    }

    pub async fn until(&mut self, kind: &str) -> Value {
        self.until_any(&[kind]).await
    }

    /// The first `kind` event, whether already seen or still to come.
    pub async fn seen_or_next(&mut self, kind: &str) -> Value {
        match self.events(kind).into_iter().next() {
            Some(v) => v,
            None => self.until(kind).await,
        }
    }

    /// Whatever arrives within `quiet` of silence.
    pub async fn drain(&mut self, quiet: Duration) {
        while let Ok(Some(got)) = tokio::time::timeout(quiet, self.rx.recv()).await {
            self.seen.push(got);
        }
    }

    pub fn kinds(&self) -> Vec<String> {
        self.seen
            .iter()
            .map(|(_, g)| match g {
                Got::Event(v) => v["type"].as_str().unwrap_or("?").to_string(),
                Got::Audio(a) => format!("audio({})", a.len()),
            })
            .collect()
    }

    pub fn events(&self, kind: &str) -> Vec<Value> {
        self.seen
            .iter()
            .filter_map(|(_, g)| match g {
                Got::Event(v) if v["type"] == kind => Some(v.clone()),
                _ => None,
            })
            .collect()
    }

    pub fn frames(&self) -> Vec<Vec<i16>> {
        self.seen
            .iter()
            .filter_map(|(_, g)| match g {
                Got::Audio(a) => Some(a.clone()),
                _ => None,
            })
            .collect()
    }
}

/// OpenAI's final transcript of the guest's input item `item`.
pub fn openai_heard(conn: &mut FakeConn, item: &str, text: &str) {
    conn.send(
        json!({"type": "conversation.item.input_audio_transcription.completed",
        "item_id": item, "content_index": 0, "transcript": text}),
    );
}

/// OpenAI's server VAD hears the guest speak for 900 ms, then its transcript of it.
pub fn openai_guest_turn(conn: &mut FakeConn, item: &str, text: &str) {
    conn.send(
        json!({"type": "input_audio_buffer.speech_started", "audio_start_ms": 0, "item_id": item}),
    );
    conn.send(
        json!({"type": "input_audio_buffer.speech_stopped", "audio_end_ms": 900, "item_id": item}),
    );
    openai_heard(conn, item, text);
}

/// `n` OpenAI audio deltas of 20 ms at 24 kHz.
pub fn deltas(conn: &mut FakeConn, response: &str, item: &str, n: usize) {
    for _ in 0..n {
        conn.send_audio(response, item, &[1000; 480]);
    }
}

pub async fn transcript(s: &TestServer, id: &str) -> Value {
    let res = get(s.url(&format!("/api/conversations/{id}")), Some(KEY)).await;
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

/// The stored turns once `done` holds for them (turns are stored off the socket's path).
pub async fn turns_when(s: &TestServer, id: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let until = Instant::now() + WAIT;
    loop {
        let t = transcript(s, id).await;
        let turns = t["turns"].as_array().cloned().unwrap_or_default();
        if done(&turns) {
            return turns;
        }
        assert!(Instant::now() < until, "transcript never matched: {t}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn display(s: &TestServer, id: &str) -> String {
    let res = get(s.url(&format!("/conversation/{id}/state")), Some(KEY)).await;
    assert_eq!(res.status(), 200);
    res.text().await.unwrap()
}

/// The cart's lines as stored: (item id, quantity).
pub async fn cart(s: &TestServer, id: &str) -> Vec<(String, u64)> {
    let t = transcript(s, id).await;
    t["cart"]["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["itemId"].as_str().unwrap_or_default().to_string(),
                l["quantity"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// 16 kHz speech for `text` from espeak-ng, from its first loud sample on (so that a
/// slice of it is speech from the start).
pub fn speech(text: &str) -> Vec<i16> {
    let out = std::process::Command::new("espeak-ng")
        .args(["--stdout", "-v", "en-us", "-s", "160", text])
        .output()
        .expect("espeak-ng is installed (scripts/install-test-deps.sh)");
    let w = stonepot_voice::wav::read(&out.stdout).unwrap();
    let pcm = stonepot_voice::resample::resample_all(&w.samples, w.rate, 16_000).unwrap();
    let first = pcm
        .iter()
        .position(|s| s.unsigned_abs() > 2_000)
        .unwrap_or(0);
    pcm[first..].to_vec()
}

impl Guest {
    /// Sends 16 kHz audio as the microphone would: 20 ms frames in real time (the last
    /// padded with silence).
    pub async fn speak(&mut self, pcm: &[i16]) {
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        for chunk in pcm.chunks(320) {
            tick.tick().await;
            let mut f = chunk.to_vec();
            f.resize(320, 0);
            self.frame(&f).await;
        }
    }
}
