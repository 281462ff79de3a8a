//! One relay session: a task that owns the provider connection and the conversation
//! state, fed by a [`RelayHandle`] and reporting [`RelayEvent`]s. This file owns the
//! connection life cycle (ready, send, rollover); `connect.rs` opens connections; `dispatch.rs` owns
//! what each provider event and each input means.

use crate::audio::{RateConverter, duration_ms};
use crate::config::{ProviderConfig, RelayConfig};
use crate::connect::{Ws, connect};
use crate::event::{RelayError, RelayEvent, RelayInput, ToolRunner};
use crate::gemini::GeminiProtocol;
use crate::history::History;
use crate::openai::OpenAiProtocol;
use crate::provider::{OpenContext, Protocol};
use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use serde_json::Value;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::Message;

type Sink = SplitSink<Ws, Message>;
type Stream = SplitStream<Ws>;

/// Inputs queued per session before the sender waits (about 1.3 s of 20 ms frames).
const INPUT_QUEUE: usize = 64;
/// Events queued per session before the relay waits for the server to read them.
const EVENT_QUEUE: usize = 256;

/// The server's side of a relay session: cheap to clone, every method returns
/// [`RelayError::Closed`] once the session has ended.
#[derive(Debug, Clone)]
pub struct RelayHandle {
    tx: mpsc::Sender<RelayInput>,
}

impl RelayHandle {
    pub async fn send(&self, input: RelayInput) -> Result<(), RelayError> {
        self.tx.send(input).await.map_err(|_| RelayError::Closed)
    }

    /// Like [`RelayHandle::send`] but never waits: [`RelayError::Busy`] when the input
    /// queue is full. For a caller that must keep serving its own socket meanwhile (the
    /// server forwards the guest's audio from the loop that also writes the relay's
    /// events to that guest, so waiting here could stall both).
    pub fn try_send(&self, input: RelayInput) -> Result<(), RelayError> {
        self.tx.try_send(input).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => RelayError::Busy,
            mpsc::error::TrySendError::Closed(_) => RelayError::Closed,
        })
    }

    /// Guest audio, PCM16 mono at the client rate.
    pub async fn audio(&self, samples: Vec<i16>) -> Result<(), RelayError> {
        self.send(RelayInput::Audio(samples)).await
    }

    /// Total assistant audio played so far by the client, in milliseconds.
    pub async fn playout(&self, played_ms: u64) -> Result<(), RelayError> {
        self.send(RelayInput::Playout { played_ms }).await
    }

    /// A typed guest message.
    pub async fn text(&self, text: impl Into<String>) -> Result<(), RelayError> {
        self.send(RelayInput::Text(text.into())).await
    }

    /// Ends the session; the last event is `Closed`.
    pub async fn close(&self) -> Result<(), RelayError> {
        self.send(RelayInput::Close).await
    }
}

/// Where a call stands: the ledger that makes execution exactly-once.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum CallState {
    Running { name: String },
    Done,
}

/// A rollover waiting for a quiet moment (or its deadline).
#[derive(Debug, Clone)]
pub(crate) struct PendingRollover {
    pub reason: String,
    pub not_before: Instant,
    pub deadline: Instant,
}

/// Why the pump over one connection stopped.
pub(crate) enum Outcome {
    /// The server closed the session (or dropped the events receiver).
    Closed,
    /// Replace the connection on purpose (`goAway`, expiry, age).
    Rollover(String),
    /// The connection failed.
    Lost(String),
}

/// The state of one relay session (owned by its task).
pub(crate) struct Relay {
    pub cfg: RelayConfig,
    pub proto: Box<dyn Protocol>,
    pub tools: Arc<dyn ToolRunner>,
    pub events: mpsc::Sender<RelayEvent>,
    pub tool_tx: mpsc::UnboundedSender<(String, String, Value)>,
    pub up: RateConverter,
    pub down: RateConverter,
    pub history: History,

    // Connection.
    pub sink: Option<Sink>,
    pub broken: Option<String>,
    pub conn_no: u64,
    pub ready: bool,
    /// Client messages sent on this connection (`setup` is 0), for Gemini's
    /// `lastConsumedClientMessageIndex`.
    pub sent_index: u64,
    pub after_ready: Vec<String>,
    pub connected_at: Instant,
    pub rollover: Option<PendingRollover>,

    // Turn state.
    pub reply_active: bool,
    pub user_speaking: bool,
    pub audio_active: bool,
    pub cur_response: Option<String>,
    pub cur_item: Option<String>,
    /// Client-rate samples sent to the client this session, and where the current item
    /// began: with `played_ms` they say how much of the item the guest heard.
    pub sent_samples: u64,
    pub item_start: u64,
    pub played_ms: u64,
    pub cancelled: HashSet<String>,
    pub finished: VecDeque<String>,
    pub assistant_text: String,
    pub skip_assistant_final: bool,

    // Barge-in: the relay decides, not the provider.
    /// The guest started speaking over the reply: interrupt at this instant unless
    /// their speech stops first (a cough). Their `SpeechStarted` waits for the decision.
    pub barge_at: Option<Instant>,
    /// When the reply under way first sent audio to the client, and a finished reply
    /// the client may still be playing ([`crate::tail`]).
    pub audio_began: Option<Instant>,
    pub tail: Option<crate::tail::Tail>,
    /// The reply playing may not be interrupted (it follows a successful call of a
    /// [`RelayConfig::hold_after`] tool), and the next reply will be held.
    pub held: bool,
    pub hold_armed: bool,
    /// The provider took guest speech as a turn while a held reply was being generated:
    /// its own answer to it could not start then, so the relay asks once the reply ends.
    pub answer_held: bool,
    /// After a local barge-in on a provider that keeps generating (Gemini with its own
    /// interruption off): the rest of that reply is dropped until it completes.
    pub dropping: bool,
    /// Speech detection for providers that report no speech start (Gemini), fed all of
    /// the guest's audio; its minimum speech is `barge_in_min`.
    pub vad: Option<stonepot_voice::Segmenter>,

    // Tools.
    pub ledger: HashMap<String, CallState>,
    pub running: usize,
    /// Results not yet told to the current connection: (call id, name, output).
    pub unacked: Vec<(String, String, Value)>,
    pub needs_reply: bool,
    pub pending_texts: Vec<String>,

    // Audio that must reach the provider across a rollover, at the provider input rate:
    // sent but perhaps not kept by the provider (tagged with its message index), and not
    // yet sent.
    pub replay: VecDeque<(u64, Vec<i16>)>,
    pub unsent: VecDeque<Vec<i16>>,
    pub resume_handle: Option<String>,
    pub overflow_reported: bool,
}

/// Connects to the configured provider and starts the session task. Fails (without a
/// task) when the first connection cannot be made, so the caller can fall back to
/// another voice mode.
pub async fn start(
    cfg: RelayConfig,
    tools: Arc<dyn ToolRunner>,
) -> Result<(RelayHandle, mpsc::Receiver<RelayEvent>), RelayError> {
    cfg.validate()?;
    let proto: Box<dyn Protocol> = match &cfg.provider {
        ProviderConfig::OpenAi {
            url,
            model,
            api_key,
            voice,
            transcription_model,
        } => Box::new(OpenAiProtocol::new(
            url,
            model,
            api_key.as_ref().map(|k| k.expose()),
            voice,
            transcription_model,
        )),
        ProviderConfig::Gemini {
            url,
            model,
            api_key,
            transparent_resumption,
        } => Box::new(GeminiProtocol::new(
            url,
            model,
            api_key.as_ref().map(|k| k.expose()),
            *transparent_resumption,
        )),
    };
    let (url, headers) = proto.endpoint();
    let ws = connect(url, headers).await?;
    let up = RateConverter::new(cfg.client_rate, proto.input_rate())?;
    let down = RateConverter::new(proto.output_rate(), cfg.client_rate)?;
    let (tx, inputs) = mpsc::channel(INPUT_QUEUE);
    let (events, events_rx) = mpsc::channel(EVENT_QUEUE);
    let (tool_tx, tool_rx) = mpsc::unbounded_channel();
    let vad = (!proto.reports_speech()
        && proto.input_rate() == stonepot_voice::frame::PIPELINE_RATE)
        .then(|| {
            stonepot_voice::Segmenter::new(stonepot_voice::VadConfig {
                min_speech_ms: u32::try_from(cfg.barge_in_min.as_millis()).unwrap_or(u32::MAX),
                ..Default::default()
            })
        });
    let relay = Relay {
        cfg,
        proto,
        tools,
        events,
        tool_tx,
        up,
        down,
        history: History::default(),
        sink: None,
        broken: None,
        conn_no: 0,
        ready: false,
        sent_index: 0,
        after_ready: Vec::new(),
        connected_at: Instant::now(),
        rollover: None,
        reply_active: false,
        user_speaking: false,
        audio_active: false,
        cur_response: None,
        cur_item: None,
        sent_samples: 0,
        item_start: 0,
        played_ms: 0,
        cancelled: HashSet::new(),
        finished: VecDeque::new(),
        assistant_text: String::new(),
        skip_assistant_final: false,
        barge_at: None,
        audio_began: None,
        tail: None,
        held: false,
        hold_armed: false,
        answer_held: false,
        dropping: false,
        vad,
        ledger: HashMap::new(),
        running: 0,
        unacked: Vec::new(),
        needs_reply: false,
        pending_texts: Vec::new(),
        replay: VecDeque::new(),
        unsent: VecDeque::new(),
        resume_handle: None,
        overflow_reported: false,
    };
    tokio::spawn(relay.run(ws, inputs, tool_rx));
    Ok((RelayHandle { tx }, events_rx))
}

impl Relay {
    async fn run(
        mut self,
        first: Ws,
        mut inputs: mpsc::Receiver<RelayInput>,
        mut tool_rx: mpsc::UnboundedReceiver<(String, String, Value)>,
    ) {
        let mut ws = first;
        // Connections in a row that died before the provider confirmed the setup: a
        // provider that accepts and hangs up at once must not be retried forever.
        let mut failures: u32 = 0;
        loop {
            let (sink, stream) = ws.split();
            self.sink = Some(sink);
            self.open().await;
            let outcome = self.pump(stream, &mut inputs, &mut tool_rx).await;
            if let Some(mut sink) = self.sink.take() {
                // Best effort: the provider may already be gone.
                let _ = tokio::time::timeout(Duration::from_millis(200), sink.close()).await;
            }
            let (reason, deliberate) = match outcome {
                Outcome::Closed => {
                    self.emit(RelayEvent::Closed {
                        reason: "closed".into(),
                    })
                    .await;
                    return;
                }
                Outcome::Rollover(r) => (r, true),
                Outcome::Lost(r) => (r, false),
            };
            if !deliberate {
                tracing::warn!(provider = self.proto.name(), %reason, "realtime connection lost");
            }
            if self.ready || deliberate {
                failures = 0;
            } else {
                failures += 1;
            }
            self.disconnected().await;
            match self.reconnect(&mut inputs, failures).await {
                Ok(Some(next)) => {
                    ws = next;
                    let resumed = self.proto.resumes() && self.resume_handle.is_some();
                    self.emit(RelayEvent::RolledOver { reason, resumed }).await;
                }
                Ok(None) => {
                    self.emit(RelayEvent::Closed {
                        reason: "closed".into(),
                    })
                    .await;
                    return;
                }
                Err(e) => {
                    tracing::error!(provider = self.proto.name(), error = %e, "realtime reconnect failed");
                    self.emit(RelayEvent::Error {
                        code: e.code().into(),
                        message: e.to_string(),
                    })
                    .await;
                    self.emit(RelayEvent::Closed {
                        reason: format!("provider unreachable after {reason}"),
                    })
                    .await;
                    return;
                }
            }
        }
    }

    /// Sends the opening messages of a new connection.
    async fn open(&mut self) {
        self.conn_no += 1;
        self.ready = false;
        self.sent_index = 0;
        self.connected_at = Instant::now();
        let first = self.conn_no == 1;
        let history = (!first).then_some(&self.history);
        let handle = self.resume_handle.clone();
        let opening = self.proto.open(&OpenContext {
            instructions: &self.cfg.instructions,
            tools: &self.cfg.tools,
            resume_handle: handle.as_deref(),
            history,
            reinject_chars: self.cfg.reinject_chars,
        });
        self.after_ready = opening.after_ready;
        for m in opening.now {
            self.send(m).await;
        }
        if let Some(age) = self.cfg.max_connection_age {
            self.schedule_rollover("max_connection_age", age);
        }
        if self.proto.audio_before_ready() {
            self.flush_queued().await;
        }
    }

    /// Whether messages other than the opening may go out now.
    pub(crate) fn can_send(&self) -> bool {
        self.sink.is_some() && (self.ready || self.proto.audio_before_ready())
    }

    /// Sends what waited for the connection: context, texts, tool results, audio.
    pub(crate) async fn flush_queued(&mut self) {
        for m in std::mem::take(&mut self.after_ready) {
            self.send(m).await;
        }
        for t in std::mem::take(&mut self.pending_texts) {
            self.send_text(t).await;
        }
        self.flush_acks().await;
        while let Some(chunk) = self.unsent.pop_front() {
            self.send_audio(chunk).await;
        }
    }

    /// One message to the provider; a failure marks the connection broken.
    pub(crate) async fn send(&mut self, msg: String) {
        let Some(sink) = self.sink.as_mut() else {
            return;
        };
        if let Err(e) = sink.send(Message::text(msg)).await {
            self.broken
                .get_or_insert_with(|| format!("send failed: {e}"));
        }
        self.sent_index += 1;
    }

    /// Guest audio at the provider rate: sent (and kept for replay) or queued.
    pub(crate) async fn send_audio(&mut self, chunk: Vec<i16>) {
        if chunk.is_empty() {
            return;
        }
        if !self.can_send() {
            self.unsent.push_back(chunk);
            self.trim_unsent();
            return;
        }
        let msg = self.proto.audio(&chunk);
        let index = self.sent_index;
        self.send(msg).await;
        self.replay.push_back((index, chunk));
        let cap = self.replay_cap();
        let mut total: usize = self.replay.iter().map(|(_, c)| c.len()).sum();
        while total > cap {
            match self.replay.pop_front() {
                Some((_, c)) => total -= c.len(),
                None => break,
            }
        }
    }

    fn replay_cap(&self) -> usize {
        (u64::from(self.proto.input_rate()) * u64::from(self.cfg.replay_ms) / 1000) as usize
    }

    /// Keeps queued audio within the replay budget, dropping the oldest (and saying so once
    /// per outage: that audio is lost).
    fn trim_unsent(&mut self) {
        let cap = self.replay_cap();
        let mut total: usize = self.unsent.iter().map(Vec::len).sum();
        let mut dropped = 0;
        while total > cap {
            match self.unsent.pop_front() {
                Some(c) => {
                    total -= c.len();
                    dropped += c.len();
                }
                None => break,
            }
        }
        if dropped > 0 && !self.overflow_reported {
            self.overflow_reported = true;
            let ms = duration_ms(dropped, self.proto.input_rate());
            tracing::warn!(
                provider = self.proto.name(),
                ms,
                "guest audio dropped while reconnecting"
            );
            let ev = RelayEvent::Error {
                code: "replay_overflow".into(),
                message: format!(
                    "the provider was unreachable; {ms} ms of guest audio was dropped"
                ),
            };
            // Never blocks the relay: if the server is not reading, it learns from Closed.
            let _ = self.events.try_send(ev);
        }
    }

    /// Reports an event; false once the server stopped listening.
    pub(crate) async fn emit(&mut self, ev: RelayEvent) -> bool {
        self.events.send(ev).await.is_ok()
    }

    /// Arranges a rollover for a connection that ends in `left`: at the first quiet
    /// moment in its last quarter, and at the latest `rollover_margin` before the end.
    pub(crate) fn schedule_rollover(&mut self, reason: &str, left: Duration) {
        let now = Instant::now();
        let margin = self.cfg.rollover_margin.min(left / 4);
        let candidate = PendingRollover {
            reason: reason.to_string(),
            not_before: now + left * 3 / 4,
            deadline: now + left.saturating_sub(margin),
        };
        match &self.rollover {
            Some(p) if p.deadline <= candidate.deadline => {}
            _ => self.rollover = Some(candidate),
        }
    }

    /// A goAway: the connection ends in `left`; roll over as soon as it is quiet.
    pub(crate) fn go_away(&mut self, left: Duration) {
        let now = Instant::now();
        let margin = self.cfg.rollover_margin.min(left / 4);
        self.rollover = Some(PendingRollover {
            reason: "go_away".into(),
            not_before: now,
            deadline: now + left.saturating_sub(margin),
        });
    }

    /// Whether nobody is speaking and no reply is being generated.
    pub(crate) fn quiet(&self) -> bool {
        !self.audio_active && !self.reply_active && !self.user_speaking
    }

    /// The rollover due now, if any.
    fn due_rollover(&self) -> Option<String> {
        let p = self.rollover.as_ref()?;
        let now = Instant::now();
        (now >= p.deadline || (now >= p.not_before && self.quiet())).then(|| p.reason.clone())
    }

    async fn pump(
        &mut self,
        mut stream: Stream,
        inputs: &mut mpsc::Receiver<RelayInput>,
        tool_rx: &mut mpsc::UnboundedReceiver<(String, String, Value)>,
    ) -> Outcome {
        loop {
            if let Some(reason) = self.broken.take() {
                return Outcome::Lost(reason);
            }
            if self.events.is_closed() {
                return Outcome::Closed;
            }
            if let Some(reason) = self.due_rollover() {
                return Outcome::Rollover(reason);
            }
            self.decide_barge_in().await;
            let mut wake = self
                .rollover
                .as_ref()
                .map(|p| {
                    if self.quiet() {
                        p.not_before
                    } else {
                        p.deadline
                    }
                })
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            if let Some(at) = self.barge_at {
                wake = wake.min(at);
            }
            tokio::select! {
                input = inputs.recv() => match input {
                    None | Some(RelayInput::Close) => return Outcome::Closed,
                    Some(i) => self.on_input(i).await,
                },
                msg = stream.next() => match msg {
                    None => return Outcome::Lost("the provider closed the connection".into()),
                    Some(Err(e)) => return Outcome::Lost(e.to_string()),
                    Some(Ok(Message::Close(frame))) => {
                        let why = frame.map(|f| format!("{} {}", u16::from(f.code), f.reason.as_str()))
                            .unwrap_or_default();
                        return Outcome::Lost(format!("the provider closed the connection {why}"));
                    }
                    Some(Ok(Message::Text(t))) => {
                        if let Some(o) = self.on_message(t.as_str()).await {
                            return o;
                        }
                    }
                    Some(Ok(Message::Binary(b))) => match std::str::from_utf8(&b) {
                        // Gemini sends its JSON in binary frames.
                        Ok(t) => {
                            if let Some(o) = self.on_message(t).await {
                                return o;
                            }
                        }
                        Err(_) => self.malformed("a binary frame that is not UTF-8 JSON".into()).await,
                    },
                    Some(Ok(_)) => {}
                },
                Some((id, name, output)) = tool_rx.recv() => self.on_tool_result(id, name, output).await,
                _ = tokio::time::sleep_until(wake) => {}
            }
        }
    }

    /// Forgets the dead connection's turn state; what the provider had not kept goes
    /// back in the queue for the next one.
    async fn disconnected(&mut self) {
        self.sink = None;
        self.ready = false;
        self.rollover = None;
        self.reply_active = false;
        self.user_speaking = false;
        self.needs_reply = false;
        self.barge_at = None;
        // The new connection has no item to truncate.
        self.tail = None;
        self.audio_began = None;
        self.held = false;
        self.answer_held = false;
        self.dropping = false;
        self.cur_response = None;
        self.cur_item = None;
        self.down.reset();
        if self.audio_active {
            self.audio_active = false;
            self.emit(RelayEvent::AudioEnd).await;
        }
        if !self.assistant_text.is_empty() {
            let text = std::mem::take(&mut self.assistant_text);
            self.history.push(crate::history::Turn::Assistant(text));
        }
        // Audio the old connection may not have kept is replayed first, then the rest.
        let mut front: VecDeque<Vec<i16>> = self.replay.drain(..).map(|(_, c)| c).collect();
        front.extend(self.unsent.drain(..));
        self.unsent = front;
        if !self.proto.resumes() {
            // A fresh session gets the conversation from the history instead.
            self.resume_handle = None;
        }
        self.overflow_reported = false;
    }
}
