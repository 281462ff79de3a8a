//! One socket's voice session: the state machine between the guest's audio and the
//! spoken turns. Audio frames are validated, rate-limited, resampled to 16 kHz and run
//! through voice activity detection; an utterance is streamed to the recognizer from
//! the moment speech starts (where the engine can: partial transcripts go out as it
//! hears), and when it ends it starts a spoken turn ([`super::turn`]); speech that starts while the agent talks interrupts it (barge-in)
//! unless the reply is an order read-back. In relay mode the frames go to the realtime
//! model session instead ([`super::relay`]), after the same validation and rate limit.

use super::relay::RelayVoice;
use super::turn::{Heard, Playback, SpokenTurn, forward_partials, vocabulary};
use super::{Engines, Mode};
use crate::app::App;
use axum::extract::ws::Message;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use stonepot_store::ConversationRecord;
use stonepot_voice::resample::Resampler;
use stonepot_voice::{RecognitionStream, SampleRate, Segmenter, VadConfig, VadEvent, frame};
use tokio::sync::mpsc;
use tokio_util::sync::{CancellationToken, DropGuard};

/// What spoken turns send to the socket.
pub enum VoiceOut {
    Event(Value),
    /// One 20 ms frame of reply audio, from playback generation `generation`.
    Audio {
        generation: u64,
        pcm: Vec<u8>,
    },
    /// One 20 ms frame of a realtime model's reply: the relay itself drops what follows
    /// an interruption, so it always goes out.
    Relayed(Vec<u8>),
}

/// Most 20 ms frames in one binary message.
const MAX_FRAMES_PER_MESSAGE: usize = 3;
/// Audio a client may send ahead of real time (ms), and how much faster than real time
/// it may keep sending: a replayed file or a flood is refused, a jittery network is not.
const BURST_MS: f64 = 2_000.0;
const RATE_FACTOR: f64 = 1.25;

pub struct VoiceSession {
    app: App,
    conv: ConversationRecord,
    mode: Mode,
    engines: Result<Engines, String>,
    out: mpsc::Sender<VoiceOut>,
    rate: SampleRate,
    inbound: Option<Resampler>,
    seg: Segmenter,
    bucket_ms: f64,
    bucket_at: Instant,
    warned_at: Option<Instant>,
    playback: Arc<Mutex<Playback>>,
    turn: Option<TurnTask>,
    /// Milliseconds of audio refused by the rate limit; past [`FLOOD_CLOSE_MS`] the
    /// socket is closed.
    dropped_ms: f64,
    told_unavailable: bool,
    /// The realtime model session (relay mode, after `start`).
    relay: Option<RelayVoice>,
    /// The utterance being spoken, when the recognizer hears it as it comes.
    listening: Option<Listening>,
}

/// An utterance streamed to the recognizer while it is spoken. Dropped (the socket
/// closed, `start` again), the stream is abandoned and its partials stop.
struct Listening {
    stream: RecognitionStream,
    /// Samples of the segmenter's utterance pushed so far.
    fed: usize,
    partials: tokio::task::JoinHandle<()>,
    stop: DropGuard,
}

/// The spoken turn running (or waiting for the previous one).
struct TurnTask {
    /// Socket closed: stop the turn.
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

/// Refused audio after which a flooding client is disconnected.
const FLOOD_CLOSE_MS: f64 = 10_000.0;

fn error(code: &str, message: impl Into<String>) -> Message {
    event(json!({"type": "error", "code": code, "message": message.into()}))
}

fn event(v: Value) -> Message {
    Message::Text(v.to_string().into())
}

impl VoiceSession {
    pub fn new(app: App, conv: ConversationRecord, out: mpsc::Sender<VoiceOut>) -> VoiceSession {
        let mode = app.voice.mode(&conv.tenant_id);
        let engines = app.voice.engines(mode);
        VoiceSession {
            app,
            conv,
            mode,
            engines,
            out,
            rate: SampleRate::PIPELINE,
            inbound: None,
            seg: Segmenter::new(VadConfig::default()),
            bucket_ms: BURST_MS,
            bucket_at: Instant::now(),
            warned_at: None,
            playback: Arc::new(Mutex::new(Playback::default())),
            turn: None,
            dropped_ms: 0.0,
            told_unavailable: false,
            relay: None,
            listening: None,
        }
    }

    /// Whether `kind` is a voice event this session handles.
    pub fn handles(kind: &str) -> bool {
        matches!(kind, "start" | "stop" | "playout")
    }

    /// A frame from a spoken turn, if it should still go out (audio of an interrupted
    /// playback is dropped here, so nothing of it follows `interrupted`).
    pub fn outbound(&self, out: VoiceOut) -> Option<Message> {
        match out {
            VoiceOut::Event(v) => Some(event(v)),
            VoiceOut::Audio { generation, pcm } => {
                (self.lock().generation == generation).then(|| Message::Binary(pcm.into()))
            }
            VoiceOut::Relayed(pcm) => Some(Message::Binary(pcm.into())),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Playback> {
        self.playback.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A JSON voice event from the client.
    pub async fn on_event(&mut self, v: &Value) -> Vec<Message> {
        match v.get("type").and_then(Value::as_str) {
            Some("start") => {
                let hz = match v.get("sampleRate") {
                    None => frame::PIPELINE_RATE,
                    Some(n) => match n.as_u64().and_then(|n| u32::try_from(n).ok()) {
                        Some(n) => n,
                        None => {
                            return vec![error("invalid_message", "sampleRate: a number of Hz")];
                        }
                    },
                };
                let rate = match SampleRate::new(hz) {
                    Ok(r) => r,
                    Err(e) => return vec![error("invalid_message", e.to_string())],
                };
                if self.mode == Mode::Relay {
                    return self.start_relay(rate).await;
                }
                if let Err(e) = &self.engines {
                    return vec![error("voice_unavailable", e.clone())];
                }
                self.rate = rate;
                self.inbound = if hz == frame::PIPELINE_RATE {
                    None
                } else {
                    match Resampler::new(hz, frame::PIPELINE_RATE) {
                        Ok(r) => Some(r),
                        Err(e) => return vec![error("invalid_message", e.to_string())],
                    }
                };
                self.seg.reset();
                self.listening = None;
                vec![event(json!({
                    "type": "started",
                    "mode": self.mode.as_str(),
                    "sampleRate": hz,
                    "frameBytes": rate.frame_bytes(),
                }))]
            }
            Some("stop") => {
                let mut replies = Vec::new();
                if let Some(VadEvent::SpeechStopped { at_ms, audio }) = self.seg.finish() {
                    replies.push(event(json!({"type": "speech_stopped", "atMs": at_ms})));
                    self.utterance(audio);
                }
                self.seg.reset();
                replies.push(event(json!({"type": "stopped"})));
                replies
            }
            Some("playout") => {
                let Some(ms) = v.get("playedMs").and_then(Value::as_u64) else {
                    return vec![error(
                        "invalid_message",
                        "playedMs: required number of milliseconds",
                    )];
                };
                if let Some(r) = &self.relay {
                    r.playout(ms);
                    return Vec::new();
                }
                let mut p = self.lock();
                if p.first_played.is_none() && ms > 0 && p.sent_ms > 0 {
                    p.first_played = Some(Instant::now());
                    if let Some(end) = p.speech_end {
                        self.app
                            .metrics
                            .observe_voice("first_played", end.elapsed());
                    }
                }
                p.played_ms = Some(ms.min(p.sent_ms));
                if p.interrupted {
                    p.reported_after_interrupt = true;
                }
                Vec::new()
            }
            _ => vec![error("unknown_type", "not a voice event")],
        }
    }

    /// Relay mode's `start`: opens the realtime model session at the client's rate (once
    /// per socket; it lives until the socket closes, across `stop` and `start`).
    async fn start_relay(&mut self, rate: SampleRate) -> Vec<Message> {
        let started = || {
            event(json!({
                "type": "started",
                "mode": Mode::Relay.as_str(),
                "sampleRate": rate.hz(),
                "frameBytes": rate.frame_bytes(),
            }))
        };
        if self.relay.is_some() {
            if rate != self.rate {
                return vec![error(
                    "invalid_message",
                    format!(
                        "sampleRate: the voice session runs at {} Hz and cannot change",
                        self.rate.hz()
                    ),
                )];
            }
            return vec![started()];
        }
        match RelayVoice::start(self.app.clone(), self.conv.clone(), rate, self.out.clone()).await {
            Ok(r) => {
                self.relay = Some(r);
                self.rate = rate;
                self.told_unavailable = false;
                vec![started()]
            }
            Err(m) => vec![error("voice_unavailable", m)],
        }
    }

    /// Whether typed messages go to the realtime model (relay mode, session open).
    pub fn relaying(&self) -> bool {
        self.relay.is_some()
    }

    /// A typed message in relay mode: the realtime model answers it, in the same
    /// conversation as the speech.
    pub fn relay_text(&mut self, text: String) -> Vec<Message> {
        let Some(r) = &self.relay else {
            return vec![error("voice_unavailable", "no voice session")];
        };
        match r.text(text) {
            Ok(()) => Vec::new(),
            Err(stonepot_realtime::RelayError::Busy) => {
                vec![error(
                    "busy",
                    "too many messages waiting; wait for the reply",
                )]
            }
            Err(e) => {
                self.relay = None;
                vec![error("voice_unavailable", e.to_string())]
            }
        }
    }

    /// Said once per outage: a client that keeps streaming is not answered frame by frame.
    fn unavailable(&mut self, message: String) -> Vec<Message> {
        if std::mem::replace(&mut self.told_unavailable, true) {
            return Vec::new();
        }
        vec![error("voice_unavailable", message)]
    }

    /// A binary frame of guest audio.
    pub fn on_audio(&mut self, bytes: &[u8]) -> Vec<Message> {
        let arrived = Instant::now();
        if self.mode == Mode::Relay {
            if self.relay.is_none() {
                return self.unavailable(
                    "send start first: relay mode opens the realtime model session on start".into(),
                );
            }
        } else if let Err(e) = &self.engines {
            let e = e.clone();
            return self.unavailable(e);
        }
        let samples = match frame::decode_frame(bytes, self.rate, MAX_FRAMES_PER_MESSAGE) {
            Ok(s) => s,
            Err(e) => return vec![error("invalid_audio", e.to_string())],
        };
        // Token bucket in milliseconds of audio.
        let ms = self.rate.ms(samples.len()) as f64;
        let now = Instant::now();
        let refill = now.duration_since(self.bucket_at).as_secs_f64() * 1000.0 * RATE_FACTOR;
        self.bucket_at = now;
        self.bucket_ms = (self.bucket_ms + refill).min(BURST_MS);
        if self.bucket_ms < ms {
            self.dropped_ms += ms;
            if self.dropped_ms > FLOOD_CLOSE_MS {
                return vec![Message::Close(Some(axum::extract::ws::CloseFrame {
                    code: axum::extract::ws::close_code::POLICY,
                    reason: "audio flood: far more than real time".into(),
                }))];
            }
            if self.warned_at.is_none_or(|w| w.elapsed().as_secs() >= 1) {
                self.warned_at = Some(now);
                return vec![error(
                    "rate_limited",
                    "audio is arriving faster than real time; frames dropped",
                )];
            }
            return Vec::new();
        }
        self.bucket_ms -= ms;
        if let Some(r) = &self.relay {
            return match r.audio(samples) {
                Ok(()) => Vec::new(),
                Err(stonepot_realtime::RelayError::Busy) => {
                    if self.warned_at.is_none_or(|w| w.elapsed().as_secs() >= 1) {
                        self.warned_at = Some(now);
                        return vec![error(
                            "relay_busy",
                            "the realtime model is not keeping up; frames dropped",
                        )];
                    }
                    Vec::new()
                }
                Err(_) => {
                    // The relay ended (its reason was sent as an `error`): a new `start`
                    // opens another.
                    self.relay = None;
                    self.unavailable("the realtime model session has ended; send start".into())
                }
            };
        }
        let pcm = match self.inbound.as_mut() {
            Some(r) => match r.push(&samples) {
                Ok(p) => p,
                Err(e) => return vec![error("invalid_audio", e.to_string())],
            },
            None => samples,
        };
        let mut replies = Vec::new();
        for ev in self.seg.push(&pcm) {
            match ev {
                VadEvent::SpeechStarted { at_ms } => {
                    replies.push(event(json!({"type": "speech_started", "atMs": at_ms})));
                    if let Some(m) = self.barge_in(arrived) {
                        replies.push(m);
                    }
                    self.listen();
                }
                VadEvent::SpeechStopped { at_ms, audio } => {
                    replies.push(event(json!({"type": "speech_stopped", "atMs": at_ms})));
                    self.utterance(audio);
                }
            }
        }
        if let (Some(l), Some(u)) = (self.listening.as_mut(), self.seg.utterance()) {
            l.stream.push(u.get(l.fed..).unwrap_or_default());
            l.fed = u.len();
        }
        replies
    }

    /// Speech started: stream it to the recognizer if the engine hears as it goes.
    fn listen(&mut self) {
        self.listening = None;
        let Ok(engines) = &self.engines else {
            return;
        };
        let words = Box::pin(vocabulary(self.app.clone(), self.conv.tenant_id.clone()));
        let Some(stream) = engines.recognizer.stream(words) else {
            return;
        };
        let stop = CancellationToken::new();
        let partials = forward_partials(stream.partials(), self.out.clone(), stop.clone());
        self.listening = Some(Listening {
            stream,
            fed: 0,
            partials,
            stop: stop.drop_guard(),
        });
    }

    /// Speech started: stop the agent's audio now unless the reply may not be cut.
    fn barge_in(&mut self, detected: Instant) -> Option<Message> {
        let mut p = self.lock();
        if !p.active || !p.interruptible {
            return None;
        }
        p.generation += 1;
        p.active = false;
        p.interrupted = true;
        let heard = p.played_ms.unwrap_or(p.sent_ms).min(p.sent_ms);
        let sent = p.sent_ms;
        if let Some(speech) = p.speech.take() {
            speech.cancel();
        }
        self.app
            .metrics
            .observe_voice("barge_in_stop", detected.elapsed());
        Some(event(
            json!({"type": "interrupted", "heardMs": heard, "sentMs": sent}),
        ))
    }

    /// An utterance ended: run it as a spoken turn (after the previous one, which the
    /// engine's per-conversation lock orders anyway).
    fn utterance(&mut self, audio: Vec<i16>) {
        let listening = self.listening.take();
        let Ok(engines) = self.engines.clone() else {
            return;
        };
        let heard = match listening {
            Some(l) => {
                l.stream.push(audio.get(l.fed..).unwrap_or_default());
                Heard::Stream {
                    // The recognizer finishes on its own; the turn may start later.
                    result: tokio::spawn(l.stream.finish()),
                    partials: l.partials,
                    stop: l.stop,
                    audio,
                }
            }
            None => Heard::Audio(audio),
        };
        let cancel = CancellationToken::new();
        let speech = cancel.child_token();
        let previous = self.turn.take();
        let turn = SpokenTurn {
            app: self.app.clone(),
            conv: self.conv.clone(),
            engines,
            heard,
            speech_end: Instant::now(),
            out: self.out.clone(),
            playback: self.playback.clone(),
            cancel: cancel.clone(),
            speech: speech.clone(),
            rate: self.rate,
        };
        let closed = cancel.clone();
        let task = tokio::spawn(async move {
            if let Some(mut t) = previous {
                tokio::select! {
                    _ = &mut t.task => {}
                    () = closed.cancelled() => {
                        t.cancel.cancel();
                        let _ = t.task.await;
                        return;
                    }
                }
            }
            turn.run().await;
        });
        self.turn = Some(TurnTask { cancel, task });
    }

    /// The socket closed: stop the turn in progress (or hang up the relay).
    pub async fn close(self) {
        if let Some(r) = self.relay {
            r.close();
        }
        if let Some(t) = self.turn {
            t.cancel.cancel();
            let _ = t.task.await;
        }
    }
}
