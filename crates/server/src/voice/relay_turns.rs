//! The durable side of a relay session: which store turn the realtime model's speech
//! and tool calls belong to, running those calls with the text agent's tools, and
//! storing each finished turn (guest transcript, what the model said — cut to what the
//! guest heard when interrupted — and the latency ledger) in the conversation's
//! transcript.
//!
//! A turn's number is taken from the store only when something needs it (its first tool
//! call, the model answering, or storing it), so a cough the provider hears as speech
//! leaves no empty turn. Taking it is a durable write, and the event pump never waits for
//! one: it asks for the number on a spawned task ([`Turns::reserve`]) as soon as the turn
//! needs it and reads it later only if it is there ([`Turns::known`]), so no store write
//! sits between the provider's events and the guest.

use crate::app::App;
use async_trait::async_trait;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use stonepot_realtime::{ToolCall, ToolRunner};
use stonepot_store::{ConversationRecord, TurnRow};
use tokio::sync::OnceCell;

/// The store number of one turn: taken at most once, by whoever needs it first (the
/// pump's reservation, a tool call, or storing the turn); the others wait for that one
/// write instead of making their own.
#[derive(Default)]
pub(super) struct TurnNo {
    cell: OnceCell<u32>,
    /// Something asked for the number: the turn is stored even if it has no words.
    wanted: AtomicBool,
}

/// The turn in progress, shared by the event pump (which starts and ends turns) and the
/// tool runner (whose calls are recorded under it). Held only to swap or count, never
/// across a store call, so ending a turn never waits for a write.
#[derive(Default)]
struct Slot {
    current: Arc<TurnNo>,
    /// Calls recorded in the turn so far (the next one's position).
    calls: u32,
}

/// Turn numbering for one relay session.
pub(super) struct Turns {
    app: App,
    conv: ConversationRecord,
    slot: Mutex<Slot>,
}

impl Turns {
    pub fn new(app: App, conv: ConversationRecord) -> Arc<Turns> {
        Arc::new(Turns {
            app,
            conv,
            slot: Mutex::new(Slot::default()),
        })
    }

    fn slot(&self) -> std::sync::MutexGuard<'_, Slot> {
        // The slot holds no invariant a panicking holder could break half-way.
        self.slot.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The number of turn `no`, taking it from the store if nobody has yet.
    async fn resolve(&self, no: &TurnNo) -> Result<u32, crate::agent::EngineError> {
        no.wanted.store(true, Ordering::Relaxed);
        no.cell
            .get_or_try_init(|| self.app.engine.begin_voice_turn(&self.conv))
            .await
            .copied()
    }

    /// The turn in progress's number (taken from the store on first need) and the
    /// position of a new call in it. Runs on the call's own task.
    async fn claim_call(&self) -> Result<(u32, u32), crate::agent::EngineError> {
        let (no, position) = {
            let mut slot = self.slot();
            let position = slot.calls;
            slot.calls += 1;
            slot.current.wanted.store(true, Ordering::Relaxed);
            (slot.current.clone(), position)
        };
        Ok((self.resolve(&no).await?, position))
    }

    /// The turn in progress will be stored: take its number now, on its own task, so
    /// that it is known by the time an event names it. Never waits.
    pub fn reserve(self: &Arc<Self>) {
        let no = self.slot().current.clone();
        if no.wanted.swap(true, Ordering::Relaxed) {
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            if let Err(e) = this.resolve(&no).await {
                // Storing the turn tries again.
                tracing::warn!(conversation = %this.conv.id, error = %e, "voice turn not opened");
            }
        });
    }

    /// The turn in progress's number if the store has given it already (see
    /// [`Turns::reserve`]); None while that write is still under way or failed.
    pub fn known(&self) -> Option<u32> {
        self.slot().current.cell.get().copied()
    }

    /// Ends the turn in progress: its number, taken or not. Calls from now on belong
    /// to the next turn.
    pub fn take(&self) -> Arc<TurnNo> {
        let mut slot = self.slot();
        slot.calls = 0;
        std::mem::take(&mut slot.current)
    }

    /// Stores `turn` under `number` (from [`Turns::take`]; taking it now when nothing
    /// needed it before) unless it is empty. Logged, never raised: the socket has nothing
    /// to undo, and the tool calls — the part that changed state — were recorded when
    /// they ran.
    pub fn store_later(self: &Arc<Self>, number: Arc<TurnNo>, turn: VoiceTurn) {
        if !number.wanted.load(Ordering::Relaxed) && turn.is_empty() {
            return;
        }
        let this = self.clone();
        // Off the event pump: storing must not hold up the next turn's audio.
        tokio::spawn(async move {
            if let Err(e) = this.store(number, turn).await {
                tracing::warn!(conversation = %this.conv.id, error = %e, "voice turn not stored");
            }
        });
    }

    async fn store(&self, number: Arc<TurnNo>, t: VoiceTurn) -> Result<(), String> {
        let app = &self.app;
        let number = self.resolve(&number).await.map_err(|e| e.to_string())?;
        // What the guest heard (the history the text agent replays), with the voice
        // record, in one write.
        let said = t.heard_text().unwrap_or_else(|| t.assistant_text());
        let voice = json!({
            "mode": "relay",
            "provider": t.provider,
            "typed": t.typed,
            "transcript": {"text": t.user_text.trim(), "confidence": t.confidence},
            "interrupted": t.interrupted.is_some(),
            "heardMs": t.interrupted.map(|i| i.heard_ms),
            "latencyMs": {
                "transcript": t.latency.transcript,
                "firstToken": t.latency.first_token,
                "firstAudio": t.latency.first_audio,
                "firstPlayed": t.latency.first_played,
            },
        });
        let row = TurnRow {
            turn: number,
            user_text: t.user_text.trim().to_string(),
            assistant_text: said,
            model: t.model.clone(),
            target: format!("realtime:{}", t.provider),
            status: "ok".into(),
            error: None,
            input_tokens: 0,
            output_tokens: 0,
            cached_tokens: 0,
            cost_micros: 0,
            ttft_ms: t.latency.first_token,
            latency_ms: ms(t.started.elapsed()),
            created_at: 0,
            tool_calls: Vec::new(),
            voice: Some(voice),
        };
        app.store
            .save_turn(&self.conv.tenant_id, &self.conv.id, &row)
            .await
            .map_err(|e| e.to_string())?;
        Ok(())
    }
}

/// Milliseconds, saturating.
pub(super) fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The latency ledger of one turn, in milliseconds from the end of the guest's speech.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Latency {
    pub transcript: Option<u64>,
    pub first_token: Option<u64>,
    pub first_audio: Option<u64>,
    pub first_played: Option<u64>,
}

/// An interrupted reply: how much of it the guest heard, of how much was sent.
#[derive(Debug, Clone, Copy)]
pub(super) struct Cut {
    pub heard_ms: u64,
    pub sent_ms: u64,
}

/// What the event pump gathers for the turn in progress.
#[derive(Debug)]
pub(super) struct VoiceTurn {
    pub provider: &'static str,
    pub model: String,
    pub started: Instant,
    /// The guest's words: final transcripts, or the typed message.
    pub user_text: String,
    pub typed: bool,
    pub user_final: bool,
    pub confidence: Option<f32>,
    /// Final transcripts of the model's replies in this turn.
    pub replies: Vec<String>,
    /// The reply being spoken (its transcript deltas so far).
    pub partial: String,
    /// Set when the guest spoke over the turn's reply.
    pub interrupted: Option<Cut>,
    /// Whether the model has answered (audio, words or a call) in this turn.
    pub answered: bool,
    /// The end of the guest's speech (provider turn detection); the ledger counts from it.
    pub speech_end: Option<Instant>,
    pub latency: Latency,
}

impl VoiceTurn {
    pub fn new(provider: &'static str, model: &str) -> VoiceTurn {
        VoiceTurn {
            provider,
            model: model.to_string(),
            started: Instant::now(),
            user_text: String::new(),
            typed: false,
            user_final: false,
            confidence: None,
            replies: Vec::new(),
            partial: String::new(),
            interrupted: None,
            answered: false,
            speech_end: None,
            latency: Latency::default(),
        }
    }

    fn is_empty(&self) -> bool {
        self.user_text.trim().is_empty() && !self.answered
    }

    /// Everything the model said in the turn.
    pub fn assistant_text(&self) -> String {
        let mut parts: Vec<&str> = self.replies.iter().map(|s| s.trim()).collect();
        if !self.partial.trim().is_empty() {
            parts.push(self.partial.trim());
        }
        parts.retain(|p| !p.is_empty());
        parts.join(" ")
    }

    /// After an interruption: the earlier replies whole, and the cut one's words in
    /// proportion to the time the guest heard of it.
    fn heard_text(&self) -> Option<String> {
        let cut = self.interrupted?;
        let last = self.replies.last().map(String::as_str).unwrap_or("");
        let cut_reply = if self.partial.trim().is_empty() {
            last
        } else {
            self.partial.as_str()
        };
        let heard = stonepot_realtime::history::heard_prefix(
            cut_reply.trim(),
            cut.heard_ms,
            cut.sent_ms.max(1),
        );
        let whole = if self.partial.trim().is_empty() {
            &self.replies[..self.replies.len().saturating_sub(1)]
        } else {
            &self.replies[..]
        };
        let mut parts: Vec<String> = whole.iter().map(|s| s.trim().to_string()).collect();
        parts.push(heard);
        parts.retain(|p| !p.is_empty());
        Some(parts.join(" "))
    }

    /// Milliseconds since the end of the guest's speech, if the turn was spoken.
    pub fn since_speech(&self) -> Option<Duration> {
        self.speech_end.map(|t| t.elapsed())
    }
}

/// Runs the realtime model's calls with the text agent's tools (see
/// [`crate::agent::Engine::run_tool`]): same validation, same cart, same display
/// updates, recorded once per call id under the turn in progress.
pub(super) struct Tools {
    pub turns: Arc<Turns>,
}

#[async_trait]
impl ToolRunner for Tools {
    async fn run(&self, call: ToolCall) -> Value {
        let t = &self.turns;
        let ran = match t.claim_call().await {
            Ok((turn, position)) => {
                t.app
                    .engine
                    .run_tool(
                        &t.app,
                        &t.conv,
                        turn,
                        position,
                        &call.call_id,
                        &call.name,
                        &call.arguments.to_string(),
                    )
                    .await
            }
            Err(e) => Err(e),
        };
        match ran {
            Ok(rec) => rec.result,
            Err(e) => {
                tracing::warn!(conversation = %t.conv.id, tool = %call.name, error = %e,
                    "realtime tool call failed");
                json!({"error": {"code": "tool_failed",
                    "message": "the tool could not be run just now; try again"}})
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_interrupted_turn_keeps_its_earlier_replies_and_the_heard_share_of_the_cut_one() {
        let mut t = VoiceTurn::new("openai", "gpt-realtime");
        assert!(t.is_empty());
        t.replies.push("Added a margherita.".into());
        t.partial = "Would you like a drink with your pizza".into();
        assert_eq!(
            t.assistant_text(),
            "Added a margherita. Would you like a drink with your pizza"
        );
        assert_eq!(t.heard_text(), None, "not interrupted: all of it stands");
        t.interrupted = Some(Cut {
            heard_ms: 500,
            sent_ms: 1000,
        });
        assert_eq!(
            t.heard_text().as_deref(),
            Some("Added a margherita. Would you like a")
        );
        // The cut reply's final transcript came in: it is the one cut.
        t.replies.push(std::mem::take(&mut t.partial));
        assert_eq!(
            t.heard_text().as_deref(),
            Some("Added a margherita. Would you like a")
        );
        t.interrupted = Some(Cut {
            heard_ms: 0,
            sent_ms: 1000,
        });
        assert_eq!(t.heard_text().as_deref(), Some("Added a margherita."));
    }
}
