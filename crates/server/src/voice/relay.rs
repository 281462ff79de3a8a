//! Relay mode on the chat socket: one realtime model session (`stonepot-realtime`, OpenAI
//! Realtime or Gemini Live) per voice session. The guest's frames go up as they arrive
//! (the relay resamples them); an event pump turns what the relay reports into the
//! socket's events — the same shapes the cascade path sends — and 20 ms frames of reply
//! audio at the client's rate, keeps each turn's latency ledger, and hands the turn to
//! [`super::relay_turns`] for the transcript.
//!
//! Barge-in, exactly-once tool calls and provider rollover are the relay's; what this
//! file adds is the socket's view of them: `playout` reports are per reply on the socket
//! and cumulative for the relay, and the relay's audio chunks become whole frames.

use super::relay_turns::{Cut, Tools, TurnNo, Turns, VoiceTurn, ms};
use super::session::VoiceOut;
use crate::app::App;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};
use stonepot_agent::turn::TurnEvent;
use stonepot_realtime::{
    RelayConfig, RelayError, RelayEvent, RelayHandle, RelayInput, Speaker, audio::duration_ms,
};
use stonepot_store::ConversationRecord;
use stonepot_voice::{SampleRate, frame};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Characters of the stored conversation the realtime model is told when it starts.
const CONTEXT_CHARS: usize = 4_000;
/// Playout reports and typed messages queued for the pump.
const CONTROL_QUEUE: usize = 32;
/// How long the pump waits for the relay to confirm its close after the socket went.
const CLOSE_WAIT: Duration = Duration::from_secs(2);
/// The least a finished turn with reply audio waits before it is stored, for the
/// client's first `playout` (the ledger's last figure); a longer reply waits until it
/// has played out.
const PLAYED_WAIT: Duration = Duration::from_secs(2);

enum Control {
    /// The client's `playout`: milliseconds played of the current reply.
    Playout(u64),
    /// A typed guest message, answered by the realtime model.
    Text(String),
}

/// The socket's handle on its relay session.
pub(super) struct RelayVoice {
    handle: RelayHandle,
    control: mpsc::Sender<Control>,
    gone: CancellationToken,
}

impl RelayVoice {
    /// Connects to the configured realtime model with the text agent's instructions
    /// and tools for `conv`, and starts the event pump. The error is for the guest.
    pub async fn start(
        app: App,
        conv: ConversationRecord,
        rate: SampleRate,
        out: mpsc::Sender<VoiceOut>,
    ) -> Result<RelayVoice, String> {
        let Some(provider) = app.voice.relay().cloned() else {
            return Err("relay mode has no realtime model configured (REALTIME_PROVIDER)".into());
        };
        let (instructions, tools) =
            app.engine
                .voice_setup(&conv, CONTEXT_CHARS)
                .await
                .map_err(|e| {
                    tracing::warn!(conversation = %conv.id, error = %e, "relay setup failed");
                    "the voice session could not be prepared".to_string()
                })?;
        let name = provider.name();
        let model = provider.model().to_string();
        let mut cfg = RelayConfig::new(provider, instructions, tools);
        cfg.client_rate = rate.hz();
        cfg.barge_in_min = app.voice.barge_in_min();
        // The order read back after a successful quote is heard whole (as offline).
        cfg.hold_after = vec!["quote_order".to_string()];
        let turns = Turns::new(app.clone(), conv.clone());
        let runner = Arc::new(Tools {
            turns: turns.clone(),
        });
        let (handle, events) = stonepot_realtime::start(cfg, runner).await.map_err(|e| {
            tracing::warn!(conversation = %conv.id, provider = name, error = %e,
                "realtime model unreachable");
            format!("the {name} realtime model could not be reached")
        })?;
        tracing::info!(conversation = %conv.id, provider = name, "relay voice session started");
        let (control, control_rx) = mpsc::channel(CONTROL_QUEUE);
        let gone = CancellationToken::new();
        let pump = Pump {
            app,
            conv_id: conv.id.clone(),
            out,
            out_open: true,
            relay: handle.clone(),
            turns,
            turn: VoiceTurn::new(name, &model),
            next: None,
            closing: None,
            provider: name,
            model,
            rate,
            pending: Vec::new(),
            started: Instant::now(),
            relay_samples: 0,
            base_ms: 0,
            reply_sent_ms: 0,
            reply_began: None,
            audio_active: false,
            cut_reply: false,
            running: 0,
            awaiting_reply: false,
            saw_speech_events: false,
        };
        tokio::spawn(pump.run(events, control_rx, gone.clone()));
        Ok(RelayVoice {
            handle,
            control,
            gone,
        })
    }

    /// Guest audio at the client rate. Never waits: a relay that is not keeping up
    /// refuses it ([`RelayError::Busy`]) rather than stall the socket.
    pub fn audio(&self, samples: Vec<i16>) -> Result<(), RelayError> {
        self.handle.try_send(RelayInput::Audio(samples))
    }

    /// The client's `playout` report (milliseconds of the current reply played).
    pub fn playout(&self, played_ms: u64) {
        // A dropped report is superseded by the next one (every 100 ms or so).
        let _ = self.control.try_send(Control::Playout(played_ms));
    }

    /// A typed message for the realtime model.
    pub fn text(&self, text: String) -> Result<(), RelayError> {
        self.control
            .try_send(Control::Text(text))
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => RelayError::Busy,
                mpsc::error::TrySendError::Closed(_) => RelayError::Closed,
            })
    }

    /// The socket closed: hang up. The pump stores the last turn and ends by itself.
    pub fn close(self) {
        let _ = self.handle.try_send(RelayInput::Close);
        self.gone.cancel();
    }
}

/// Turns relay events into socket frames and turns into transcript rows.
struct Pump {
    app: App,
    conv_id: String,
    out: mpsc::Sender<VoiceOut>,
    /// False once the socket is gone: events are still followed (to store the turn) but
    /// nothing is sent.
    out_open: bool,
    relay: RelayHandle,
    turns: Arc<Turns>,
    turn: VoiceTurn,
    /// The guest's next turn, gathered while a reply that may not be interrupted (the
    /// read-back) plays on: it becomes the turn when that reply completes.
    next: Option<VoiceTurn>,
    /// A finished turn waiting for the client's first `playout` of its reply: its number,
    /// the turn, and until when it waits.
    closing: Option<(Arc<TurnNo>, VoiceTurn, tokio::time::Instant)>,
    provider: &'static str,
    model: String,
    rate: SampleRate,
    /// Reply audio short of a whole frame.
    pending: Vec<i16>,
    started: Instant,
    /// Client-rate samples the relay has sent this session, and where the current reply
    /// began in ms: the relay counts `playout` over the session, the socket per reply.
    relay_samples: u64,
    base_ms: u64,
    /// Milliseconds of the current reply sent to the client (whole frames), and when
    /// its first frame went.
    reply_sent_ms: u64,
    reply_began: Option<tokio::time::Instant>,
    audio_active: bool,
    /// The current reply was interrupted: its late transcript is not the guest's to see.
    cut_reply: bool,
    /// Tool calls running, and whether a result came in whose reply has not started.
    running: usize,
    awaiting_reply: bool,
    /// The provider reports the guest's speech start/stop (OpenAI does; Gemini does not,
    /// so there a guest transcript after the model answered starts the next turn).
    saw_speech_events: bool,
}

impl Pump {
    async fn run(
        mut self,
        mut events: mpsc::Receiver<RelayEvent>,
        mut control: mpsc::Receiver<Control>,
        gone: CancellationToken,
    ) {
        let mut deadline: Option<tokio::time::Instant> = None;
        loop {
            let wait = deadline.unwrap_or_else(tokio::time::Instant::now);
            let closing_until = self
                .closing
                .as_ref()
                .map_or_else(tokio::time::Instant::now, |c| c.2);
            tokio::select! {
                ev = events.recv() => match ev {
                    None => break,
                    Some(RelayEvent::Closed { reason }) => {
                        if reason != "closed" {
                            self.error("relay_closed", format!("the voice session ended: {reason}")).await;
                        }
                        break;
                    }
                    Some(ev) => self.on_event(ev).await,
                },
                Some(c) = control.recv() => self.on_control(c).await,
                () = gone.cancelled(), if deadline.is_none() => {
                    self.out_open = false;
                    deadline = Some(tokio::time::Instant::now() + CLOSE_WAIT);
                }
                // The relay did not confirm the close in time: dropping its events
                // receiver ends it.
                () = tokio::time::sleep_until(wait), if deadline.is_some() => break,
                () = tokio::time::sleep_until(closing_until), if self.closing.is_some() => {
                    self.store_closing();
                }
            }
        }
        self.store_closing();
        let last = std::mem::replace(&mut self.turn, VoiceTurn::new(self.provider, &self.model));
        let number = self.turns.take();
        self.turns.store_later(number, last);
        if let Some(next) = self.next.take() {
            // Words said over the last reply, never answered: kept in the transcript.
            let number = self.turns.take();
            self.turns.store_later(number, next);
        }
        tracing::info!(conversation = %self.conv_id, provider = self.provider, "relay voice session ended");
    }

    async fn send(&mut self, v: Value) {
        if self.out_open && self.out.send(VoiceOut::Event(v)).await.is_err() {
            self.out_open = false;
        }
    }

    async fn error(&mut self, code: &str, message: String) {
        self.send(json!({"type": "error", "code": code, "message": message}))
            .await;
    }

    fn at_ms(&self) -> u64 {
        ms(self.started.elapsed())
    }

    /// Ends the turn in progress (stored in the background) and starts the next. A turn
    /// whose reply is still playing waits for the client's first `playout` of it first.
    async fn next_turn(&mut self) {
        let following = self
            .next
            .take()
            .unwrap_or_else(|| VoiceTurn::new(self.provider, &self.model));
        let last = std::mem::replace(&mut self.turn, following);
        self.awaiting_reply = false;
        let number = self.turns.take();
        self.store_closing();
        if last.latency.first_audio.is_some() && last.interrupted.is_none() {
            // Kept until the client has played the reply (its `playout` reaches the end,
            // or the reply's length has passed): its first `playout` gives the ledger's
            // `first_played`, and speech over its tail cuts what it stores.
            let now = tokio::time::Instant::now();
            let played_out = self.reply_began.map_or(now, |b| {
                b + Duration::from_millis(self.reply_sent_ms) + stonepot_realtime::PLAYER_SLACK
            });
            self.closing = Some((number, last, played_out.max(now + PLAYED_WAIT)));
        } else {
            self.turns.store_later(number, last);
        }
    }

    fn store_closing(&mut self) {
        if let Some((number, turn, _)) = self.closing.take() {
            self.turns.store_later(number, turn);
        }
    }

    /// The first sign of the model answering: the ledger's first token. The turn will
    /// be stored, so its number is asked for now (off the pump) to be known when the
    /// reply's `assistant_done` names it.
    fn answered(&mut self) {
        self.turn.answered = true;
        self.turns.reserve();
        if self.turn.latency.first_token.is_none()
            && let Some(d) = self.turn.since_speech()
        {
            self.turn.latency.first_token = Some(ms(d));
            self.app.metrics.observe_voice("first_token", d);
        }
    }

    async fn on_event(&mut self, ev: RelayEvent) {
        match ev {
            RelayEvent::Ready { provider, rollover } => {
                tracing::debug!(conversation = %self.conv_id, provider, rollover, "realtime session ready");
            }
            RelayEvent::RolledOver { reason, resumed } => {
                tracing::info!(conversation = %self.conv_id, provider = self.provider, %reason,
                    resumed, "realtime connection rolled over");
            }
            RelayEvent::AudioStart => {
                // Later `playout` reports are this reply's, not the closing turn's.
                self.store_closing();
                self.answered();
                self.audio_active = true;
                self.cut_reply = false;
                self.awaiting_reply = false;
                self.pending.clear();
                self.reply_sent_ms = 0;
                self.reply_began = Some(tokio::time::Instant::now());
                self.base_ms = duration_ms(self.relay_samples as usize, self.rate.hz());
                self.send(json!({"type": "audio_start", "sampleRate": self.rate.hz()}))
                    .await;
            }
            RelayEvent::Audio { samples } => self.on_audio(samples).await,
            RelayEvent::AudioEnd => {
                if !self.pending.is_empty() {
                    // The tail, padded with silence to a whole frame.
                    let mut tail = std::mem::take(&mut self.pending);
                    tail.resize(self.rate.frame_samples(), 0);
                    self.frame(tail).await;
                }
                self.audio_active = false;
                let sent = self.reply_sent_ms;
                self.send(json!({"type": "audio_end", "sentMs": sent}))
                    .await;
            }
            RelayEvent::Transcript {
                speaker: Speaker::User,
                text,
                is_final,
                confidence,
            } => self.on_guest_words(text, is_final, confidence).await,
            RelayEvent::Transcript {
                speaker: Speaker::Assistant,
                text,
                is_final,
                ..
            } => {
                if self.cut_reply {
                    return;
                }
                if is_final {
                    self.turn.partial.clear();
                    self.reply_done(text).await;
                } else {
                    self.answered();
                    self.turn.partial.push_str(&text);
                    self.send(TurnEvent::AssistantDelta { text }.to_json())
                        .await;
                }
            }
            RelayEvent::SpeechStarted => {
                self.saw_speech_events = true;
                if self.audio_active {
                    // Speech the relay let the reply play over (the read-back): what
                    // the guest says is the next turn, which starts when it completes.
                    self.next
                        .get_or_insert_with(|| VoiceTurn::new(self.provider, &self.model));
                } else {
                    // The guest speaking again ends the previous turn.
                    self.next_turn().await;
                }
                let at = self.at_ms();
                self.send(json!({"type": "speech_started", "atMs": at}))
                    .await;
            }
            RelayEvent::SpeechStopped => {
                self.saw_speech_events = true;
                self.gathering().speech_end = Some(Instant::now());
                let at = self.at_ms();
                self.send(json!({"type": "speech_stopped", "atMs": at}))
                    .await;
            }
            RelayEvent::GuestSpeech { started } => {
                // Gemini: the relay's detector, shown to the client. Turns still follow
                // the transcripts (`saw_speech_events` stays false).
                let at = self.at_ms();
                if started {
                    self.send(json!({"type": "speech_started", "atMs": at}))
                        .await;
                } else {
                    self.gathering().speech_end = Some(Instant::now());
                    self.send(json!({"type": "speech_stopped", "atMs": at}))
                        .await;
                }
            }
            RelayEvent::ToolCall(call) => {
                self.answered();
                self.running += 1;
                self.send(
                    TurnEvent::ToolCall {
                        id: call.call_id,
                        name: call.name,
                        arguments: call.arguments,
                    }
                    .to_json(),
                )
                .await;
            }
            RelayEvent::ToolResult {
                call_id,
                name,
                result,
            } => {
                self.running = self.running.saturating_sub(1);
                self.awaiting_reply = true;
                // A refusal is `{"error": …}` (the agent's ToolOutcome contract).
                let ok = result.get("error").is_none();
                self.send(
                    TurnEvent::ToolResult {
                        id: call_id,
                        name,
                        ok,
                        result,
                    }
                    .to_json(),
                )
                .await;
            }
            RelayEvent::Interrupted { played_ms } => {
                let stopped = Instant::now();
                let cut = Cut {
                    heard_ms: played_ms,
                    sent_ms: self.reply_sent_ms,
                };
                // Over the tail of a finished reply the client is still playing: its turn
                // has ended and waits, as `closing`, until the reply has played out.
                let in_tail = !self.audio_active;
                if in_tail {
                    if let Some((_, turn, _)) = self.closing.as_mut() {
                        turn.interrupted = Some(cut);
                    }
                    self.store_closing();
                } else {
                    self.pending.clear();
                    self.audio_active = false;
                    self.cut_reply = true;
                    self.turn.interrupted = Some(cut);
                }
                self.send(
                    json!({"type": "interrupted", "heardMs": cut.heard_ms, "sentMs": cut.sent_ms}),
                )
                .await;
                self.app
                    .metrics
                    .observe_voice("barge_in_stop", stopped.elapsed());
                if !in_tail {
                    // Close the reply for clients that show it as it is written.
                    let said = self.turn.partial.clone();
                    self.assistant_done(said).await;
                }
            }
            RelayEvent::TurnComplete => {
                if !self.cut_reply && !self.turn.partial.trim().is_empty() {
                    // A provider that sent no final transcript: the deltas are the reply.
                    let said = std::mem::take(&mut self.turn.partial);
                    self.reply_done(said).await;
                }
                let guest_done = self.turn.user_final || !self.saw_speech_events;
                let done = self.turn.answered && (guest_done || self.next.is_some());
                if self.running == 0 && !self.awaiting_reply && done {
                    self.next_turn().await;
                }
            }
            RelayEvent::Error { code, message } => self.error(&code, message).await,
            // Handled by the loop.
            RelayEvent::Closed { .. } => {}
        }
    }

    async fn on_audio(&mut self, samples: Vec<i16>) {
        self.relay_samples += samples.len() as u64;
        self.pending.extend_from_slice(&samples);
        let n = self.rate.frame_samples();
        while self.pending.len() >= n {
            let f: Vec<i16> = self.pending.drain(..n).collect();
            self.frame(f).await;
        }
    }

    /// One whole 20 ms frame down.
    async fn frame(&mut self, f: Vec<i16>) {
        if self.turn.latency.first_audio.is_none()
            && let Some(d) = self.turn.since_speech()
        {
            self.turn.latency.first_audio = Some(ms(d));
            self.app.metrics.observe_voice("first_audio", d);
        }
        self.reply_sent_ms += u64::from(frame::FRAME_MS);
        if self.out_open
            && self
                .out
                .send(VoiceOut::Relayed(frame::to_bytes(&f)))
                .await
                .is_err()
        {
            self.out_open = false;
        }
    }

    /// The turn the guest's words belong to: the next one while a held reply plays.
    fn gathering(&mut self) -> &mut VoiceTurn {
        self.next.as_mut().unwrap_or(&mut self.turn)
    }

    async fn on_guest_words(&mut self, text: String, is_final: bool, confidence: Option<f32>) {
        if !self.saw_speech_events && self.turn.answered {
            // Gemini: the guest speaking after the model answered starts the next turn.
            self.next_turn().await;
        }
        if !is_final {
            self.send(json!({"type": "transcript", "final": false, "text": text}))
                .await;
            return;
        }
        let metrics = self.app.metrics.clone();
        let turn = self.gathering();
        if turn.speech_end.is_none() {
            // No speech-stopped event (Gemini): the transcript is the first sign.
            turn.speech_end = Some(Instant::now());
        }
        let latency = turn.since_speech().map(ms);
        if turn.latency.transcript.is_none()
            && let Some(d) = turn.since_speech()
        {
            turn.latency.transcript = Some(ms(d));
            metrics.observe_voice("transcript", d);
        }
        if !turn.user_text.is_empty() {
            turn.user_text.push(' ');
        }
        turn.user_text.push_str(text.trim());
        turn.user_final = true;
        turn.confidence = confidence.or(turn.confidence);
        self.send(json!({
            "type": "transcript", "final": true, "text": text,
            "confidence": confidence, "latencyMs": latency,
        }))
        .await;
    }

    /// A reply's words are complete.
    async fn reply_done(&mut self, text: String) {
        if text.trim().is_empty() {
            return;
        }
        self.answered();
        self.turn.replies.push(text.clone());
        self.assistant_done(text).await;
    }

    /// Closes a reply for the client. `turn` is the store's number for the turn when it
    /// has given it (asked for when the model started answering), else null: waiting for
    /// that write here would hold up every event behind it — the next `speech_started`
    /// among them.
    async fn assistant_done(&mut self, text: String) {
        let mut done = TurnEvent::AssistantDone {
            turn: 0,
            text,
            model: self.model.clone(),
            usage: Default::default(),
        }
        .to_json();
        done["turn"] = self.turns.known().map_or(Value::Null, Value::from);
        self.send(done).await;
    }

    async fn on_control(&mut self, c: Control) {
        match c {
            Control::Playout(played) => {
                let played = played.min(self.reply_sent_ms);
                let _ = self.relay.try_send(RelayInput::Playout {
                    played_ms: self.base_ms + played,
                });
                if played == 0 {
                    return;
                }
                let metrics = self.app.metrics.clone();
                let turn = match self.closing.as_mut() {
                    Some((_, t, _)) => t,
                    None => &mut self.turn,
                };
                if turn.latency.first_played.is_none()
                    && turn.latency.first_audio.is_some()
                    && let Some(d) = turn.since_speech()
                {
                    turn.latency.first_played = Some(ms(d));
                    metrics.observe_voice("first_played", d);
                }
                if played >= self.reply_sent_ms {
                    // All of it heard: nothing left to cut.
                    self.store_closing();
                }
            }
            Control::Text(text) => {
                self.next_turn().await;
                self.turn.user_text = text.clone();
                self.turn.typed = true;
                self.turn.user_final = true;
                if let Err(e) = self.relay.try_send(RelayInput::Text(text)) {
                    self.error(e.code(), e.to_string()).await;
                }
            }
        }
    }
}
