//! Fake OpenAI Realtime and Gemini Live servers on 127.0.0.1 that speak the real event
//! protocol. Each accepted connection becomes a [`FakeConn`] the test (or benchmark)
//! drives: it sees every client message with its arrival time and sends server events,
//! which makes any scenario scriptable — a tool call mid-utterance, an interruption,
//! `goAway`, expiry, malformed or out-of-order events. The handshake is answered by the
//! fake itself (OpenAI `session.created` / `session.updated` / `conversation.item.added`
//! / `conversation.item.truncated`; Gemini `setupComplete`), as the real servers do.

use crate::audio::{pcm16_from_base64, pcm16_to_base64};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};

/// Which protocol a fake speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FakeKind {
    OpenAi,
    Gemini,
}

/// A client message as the fake received it.
#[derive(Debug, Clone)]
pub struct Received {
    pub at: Instant,
    pub msg: Value,
}

impl Received {
    /// OpenAI `type`, or the Gemini top-level key (`setup`, `realtimeInput`, …).
    pub fn kind(&self) -> &str {
        if let Some(t) = self.msg.get("type").and_then(Value::as_str) {
            return t;
        }
        self.msg
            .as_object()
            .and_then(|o| o.keys().next())
            .map(String::as_str)
            .unwrap_or("")
    }

    /// Whether this is a guest audio message (without decoding it).
    pub fn is_audio(&self) -> bool {
        self.kind() == "input_audio_buffer.append"
            || self.msg.pointer("/realtimeInput/audio").is_some()
    }

    /// The guest audio this message carries, if it is an audio message.
    pub fn audio(&self) -> Option<Vec<i16>> {
        let b64 = self
            .msg
            .get("audio")
            .filter(|_| self.kind() == "input_audio_buffer.append")
            .and_then(Value::as_str)
            .or_else(|| {
                self.msg
                    .pointer("/realtimeInput/audio/data")
                    .and_then(Value::as_str)
            })?;
        pcm16_from_base64(b64)
    }
}

enum Outgoing {
    Text(String),
    Close,
}

/// One accepted connection.
pub struct FakeConn {
    /// The request path and query (`/v1/realtime?model=…`).
    pub uri: String,
    /// The `Authorization` header, if any.
    pub authorization: Option<String>,
    /// Messages sent to the client, counted (for pairing with arrival times).
    pub sent: u64,
    tx: mpsc::UnboundedSender<Outgoing>,
    rx: mpsc::UnboundedReceiver<Received>,
    kind: FakeKind,
}

impl FakeConn {
    /// Sends a server event: OpenAI's in a text frame, Gemini's in a binary frame (as the
    /// real service does).
    pub fn send(&mut self, v: Value) -> bool {
        self.sent += 1;
        self.tx.send(Outgoing::Text(v.to_string())).is_ok()
    }

    /// Sends raw text (for malformed events).
    pub fn send_raw(&mut self, s: &str) -> bool {
        self.sent += 1;
        self.tx.send(Outgoing::Text(s.to_string())).is_ok()
    }

    /// Closes the connection from the server side.
    pub fn close(&self) {
        let _ = self.tx.send(Outgoing::Close);
    }

    /// The next client message, or None after `wait` or when the client left.
    pub async fn recv(&mut self, wait: Duration) -> Option<Received> {
        tokio::time::timeout(wait, self.rx.recv())
            .await
            .ok()
            .flatten()
    }

    /// Skips to the next client message of `kind` (see [`Received::kind`]), collecting
    /// the audio of the messages skipped into `audio`.
    pub async fn expect(&mut self, kind: &str, audio: &mut Vec<i16>) -> Option<Received> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let r = tokio::time::timeout_at(deadline, self.rx.recv())
                .await
                .ok()
                .flatten()?;
            if r.kind() == kind {
                return Some(r);
            }
            if let Some(a) = r.audio() {
                audio.extend(a);
            }
        }
    }

    /// All guest audio received until the client goes quiet for `quiet`.
    pub async fn drain_audio(&mut self, quiet: Duration) -> Vec<i16> {
        let mut out = Vec::new();
        while let Some(r) = self.recv(quiet).await {
            if let Some(a) = r.audio() {
                out.extend(a);
            }
        }
        out
    }

    /// Model audio as the provider sends it (24 kHz PCM16 for both).
    pub fn send_audio(&mut self, response_id: &str, item_id: &str, samples: &[i16]) -> bool {
        let b64 = pcm16_to_base64(samples);
        let v = match self.kind {
            FakeKind::OpenAi => json!({"type": "response.output_audio.delta",
                "event_id": format!("ev_{}", self.sent), "response_id": response_id,
                "item_id": item_id, "output_index": 0, "content_index": 0, "delta": b64}),
            FakeKind::Gemini => json!({"serverContent": {"modelTurn": {"parts": [
                {"inlineData": {"mimeType": "audio/pcm;rate=24000", "data": b64}}]}}}),
        };
        self.send(v)
    }
}

/// A fake provider listening on 127.0.0.1.
pub struct FakeServer {
    /// `ws://127.0.0.1:PORT/…` to put in the provider config.
    pub url: String,
    conns: mpsc::UnboundedReceiver<FakeConn>,
}

impl FakeServer {
    /// A fake OpenAI Realtime server whose sessions expire after `expires_in`
    /// (announced in `session.created`, as `expires_at`).
    pub async fn openai(expires_in: Duration) -> std::io::Result<FakeServer> {
        Self::start(FakeKind::OpenAi, expires_in).await
    }

    /// A fake Gemini Live server.
    pub async fn gemini() -> std::io::Result<FakeServer> {
        Self::start(FakeKind::Gemini, Duration::from_secs(600)).await
    }

    async fn start(kind: FakeKind, expires_in: Duration) -> std::io::Result<FakeServer> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let url = match kind {
            FakeKind::OpenAi => format!("ws://{addr}/v1/realtime"),
            FakeKind::Gemini => format!(
                "ws://{addr}/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent"
            ),
        };
        let (tx, conns) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let _ = tcp.set_nodelay(true);
                let tx = tx.clone();
                tokio::spawn(serve(kind, tcp, tx, expires_in));
            }
        });
        Ok(FakeServer { url, conns })
    }

    /// The next connection the relay opens (None after 5 s).
    pub async fn next_conn(&mut self) -> Option<FakeConn> {
        self.next_conn_within(Duration::from_secs(5)).await
    }

    pub async fn next_conn_within(&mut self, wait: Duration) -> Option<FakeConn> {
        tokio::time::timeout(wait, self.conns.recv())
            .await
            .ok()
            .flatten()
    }
}

#[expect(
    clippy::result_large_err,
    reason = "the handshake callback's error type is tungstenite's, not ours"
)]
async fn serve(
    kind: FakeKind,
    tcp: tokio::net::TcpStream,
    conns: mpsc::UnboundedSender<FakeConn>,
    expires_in: Duration,
) {
    if conns.is_closed() {
        // The FakeServer is gone: refuse the handshake like a dead endpoint.
        return;
    }
    let mut uri = String::new();
    let mut authorization = None;
    let ws = tokio_tungstenite::accept_hdr_async_with_config(
        tcp,
        |req: &Request, resp: Response| {
            uri = req.uri().to_string();
            authorization = req
                .headers()
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            Ok::<Response, ErrorResponse>(resp)
        },
        Some(crate::connect::ws_config()),
    )
    .await;
    let Ok(ws) = ws else {
        return;
    };
    let (mut sink, mut stream) = ws.split();
    let (out_tx, mut out_rx) = mpsc::unbounded_channel();
    let (in_tx, in_rx) = mpsc::unbounded_channel();
    let conn = FakeConn {
        uri,
        authorization,
        sent: 0,
        tx: out_tx.clone(),
        rx: in_rx,
        kind,
    };
    if conns.send(conn).is_err() {
        return;
    }
    let mut n = 0u64;
    let mut event_id = move || {
        n += 1;
        format!("event_fake_{n}")
    };
    if kind == FakeKind::OpenAi {
        let expires_at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() + expires_in.as_secs())
            .unwrap_or(0);
        let created = json!({"type": "session.created", "event_id": event_id(),
            "session": {"type": "realtime", "object": "realtime.session", "id": "sess_fake",
                "expires_at": expires_at}});
        let _ = out_tx.send(Outgoing::Text(created.to_string()));
    }
    loop {
        tokio::select! {
            out = out_rx.recv() => match out {
                Some(Outgoing::Text(t)) => {
                    let msg = match kind {
                        FakeKind::OpenAi => Message::text(t),
                        FakeKind::Gemini => Message::binary(t.into_bytes()),
                    };
                    if sink.send(msg).await.is_err() {
                        return;
                    }
                }
                Some(Outgoing::Close) | None => {
                    let _ = sink.close().await;
                    return;
                }
            },
            msg = stream.next() => {
                let text = match msg {
                    Some(Ok(Message::Text(t))) => t.as_str().to_string(),
                    Some(Ok(Message::Binary(b))) => String::from_utf8_lossy(&b).into_owned(),
                    Some(Ok(_)) => continue,
                    _ => return,
                };
                let at = Instant::now();
                let Ok(msg) = serde_json::from_str::<Value>(&text) else {
                    continue;
                };
                if let Some(reply) = auto_reply(kind, &msg, &mut event_id) {
                    let _ = out_tx.send(Outgoing::Text(reply.to_string()));
                }
                let _ = in_tx.send(Received { at, msg });
            }
        }
    }
}

/// What the real server answers by itself.
fn auto_reply(kind: FakeKind, msg: &Value, event_id: &mut impl FnMut() -> String) -> Option<Value> {
    match kind {
        FakeKind::OpenAi => match msg.get("type").and_then(Value::as_str)? {
            "session.update" => {
                let mut session = msg.get("session").cloned().unwrap_or(json!({}));
                session["object"] = json!("realtime.session");
                Some(json!({"type": "session.updated", "event_id": event_id(), "session": session}))
            }
            "conversation.item.create" => Some(json!({"type": "conversation.item.added",
                "event_id": event_id(), "item": msg.get("item")})),
            "conversation.item.truncate" => Some(json!({"type": "conversation.item.truncated",
                "event_id": event_id(), "item_id": msg.get("item_id"), "content_index": 0,
                "audio_end_ms": msg.get("audio_end_ms")})),
            _ => None,
        },
        FakeKind::Gemini => msg.get("setup").map(|_| json!({"setupComplete": {}})),
    }
}
