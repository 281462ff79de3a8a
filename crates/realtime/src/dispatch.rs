//! What each input and provider event means for a session: audio in and out (with
//! resampling), transcripts, barge-in with truncation to what the guest heard, and tool
//! calls recorded when proposed, run once on their own task, and acknowledged to the
//! model even when the turn was interrupted or the connection replaced meanwhile.

use crate::event::{RelayEvent, RelayInput, Speaker, ToolCall};
use crate::history::{Turn, heard_prefix};
use crate::provider::ProviderEvent;
use crate::session::{CallState, Outcome, Relay};
use serde_json::{Value, json};
use tokio::time::Instant;

/// Finished reply ids remembered to recognise late events for them.
const FINISHED_KEPT: usize = 16;

impl Relay {
    pub(crate) async fn on_input(&mut self, input: RelayInput) {
        match input {
            RelayInput::Audio(samples) => {
                let mut out = Vec::with_capacity(samples.len() * 2);
                if let Err(e) = self.up.push(&samples, &mut out) {
                    self.emit(RelayEvent::Error {
                        code: "input_audio".into(),
                        message: e.to_string(),
                    })
                    .await;
                    return;
                }
                self.listen_to_guest(&out).await;
                self.send_audio(out).await;
            }
            RelayInput::Playout { played_ms } => {
                // Monotonic: a late or reordered report never moves it back.
                self.played_ms = self.played_ms.max(played_ms);
            }
            RelayInput::Text(text) => {
                if self.can_send() {
                    self.send_text(text).await;
                } else {
                    self.pending_texts.push(text);
                }
            }
            // Handled by the loops that own the connection.
            RelayInput::Close => {}
        }
    }

    pub(crate) async fn send_text(&mut self, text: String) {
        for m in self.proto.user_text(&text) {
            self.send(m).await;
        }
        self.history.push(Turn::User(text));
    }

    pub(crate) async fn malformed(&mut self, why: String) {
        tracing::warn!(provider = self.proto.name(), %why, "malformed realtime event");
        self.emit(RelayEvent::Error {
            code: "malformed_event".into(),
            message: format!("{}: {why}", self.proto.name()),
        })
        .await;
    }

    async fn unexpected(&mut self, why: String) {
        tracing::warn!(provider = self.proto.name(), %why, "out-of-order realtime event");
        self.emit(RelayEvent::Error {
            code: "unexpected_event".into(),
            message: format!("{}: {why}", self.proto.name()),
        })
        .await;
    }

    /// One server message; `Some` ends the connection.
    pub(crate) async fn on_message(&mut self, text: &str) -> Option<Outcome> {
        let events = match self.proto.decode(text) {
            Ok(evs) => evs,
            Err(m) => {
                self.malformed(m.0).await;
                return None;
            }
        };
        for ev in events {
            if let Some(o) = self.on_event(ev).await {
                return Some(o);
            }
        }
        None
    }

    async fn on_event(&mut self, ev: ProviderEvent) -> Option<Outcome> {
        if !self.ready && !self.proto.audio_before_ready() {
            match &ev {
                ProviderEvent::Ready { .. } | ProviderEvent::Ignored => {}
                other => {
                    self.unexpected(format!("{other:?} before the session was set up"))
                        .await;
                    return None;
                }
            }
        }
        match ev {
            ProviderEvent::Ready { expires_in } => {
                if self.ready {
                    self.unexpected("a second setup confirmation".into()).await;
                    return None;
                }
                self.ready = true;
                let rollover = self.conn_no > 1;
                let provider = self.proto.name();
                self.emit(RelayEvent::Ready { provider, rollover }).await;
                if let Some(left) = expires_in {
                    self.schedule_rollover("session_expiry", left);
                }
                self.flush_queued().await;
            }
            ProviderEvent::ResponseStarted { response_id } => {
                self.reply_active = true;
                self.cur_response = Some(response_id);
            }
            ProviderEvent::Audio {
                response_id,
                item_id,
                samples,
            } => self.on_audio(response_id, item_id, samples).await,
            ProviderEvent::Transcript {
                user,
                text,
                is_final,
                confidence,
            } => self.on_transcript(user, text, is_final, confidence).await,
            ProviderEvent::SpeechStarted => {
                self.user_speaking = true;
                let over_reply = self.interruptible();
                if over_reply && !self.cfg.barge_in_min.is_zero() {
                    // Over a reply: decided once the guest has spoken long enough
                    // ([`Relay::decide_barge_in`]); their speech start is told then.
                    self.barge_at = Some(Instant::now() + self.cfg.barge_in_min);
                    return None;
                }
                if over_reply {
                    self.barge_in().await;
                }
                self.emit(RelayEvent::SpeechStarted).await;
            }
            ProviderEvent::SpeechStopped => {
                self.user_speaking = false;
                // Server VAD answers the turn by itself, and that reply sees every tool
                // output already sent.
                self.needs_reply = false;
                if self.barge_at.take().is_some() {
                    // Shorter than the minimum over a reply (a cough, an "mm"): the reply
                    // plays on, and the guest was never said to be speaking.
                    tracing::debug!(provider = self.proto.name(), "speech too short to barge in");
                    return None;
                }
                self.emit(RelayEvent::SpeechStopped).await;
            }
            ProviderEvent::InputCommitted => {
                // The provider took the buffered audio as a turn: nothing left to replay.
                self.replay.clear();
                if self.held && self.reply_active {
                    // Its automatic answer fails while a reply is being generated.
                    self.answer_held = true;
                }
            }
            ProviderEvent::Interrupted => {
                // Only a provider still configured to cut replies itself sends this.
                if self.audio_active {
                    self.barge_in().await;
                }
                self.reply_active = false;
            }
            ProviderEvent::TurnComplete { response_id } => {
                self.on_turn_complete(response_id).await;
            }
            ProviderEvent::ToolCall {
                call_id,
                name,
                arguments,
            } => self.propose(call_id, name, arguments).await,
            ProviderEvent::GoAway { time_left } => {
                tracing::info!(provider = self.proto.name(), ?time_left, "provider goAway");
                self.go_away(time_left);
            }
            ProviderEvent::Resumable {
                handle,
                last_consumed_index,
            } => {
                self.resume_handle = Some(handle);
                match last_consumed_index {
                    // Exactly what the resumed state holds.
                    Some(i) => self.replay.retain(|(idx, _)| *idx > i),
                    // Everything sent before the handle arrived is in it.
                    None => self.replay.clear(),
                }
            }
            ProviderEvent::Expired => return Some(Outcome::Rollover("session_expired".into())),
            ProviderEvent::Error { code, message }
                if code == "conversation_already_has_active_response" =>
            {
                // Expected now that speech does not cancel a reply by itself: OpenAI's
                // automatic answer to speech that stopped during a reply (a blip, words
                // over the read-back) is refused while the reply runs. The relay asks
                // again when it matters (after a held reply), so this is no error.
                tracing::debug!(provider = self.proto.name(), %message, "reply already under way");
            }
            ProviderEvent::Error { code, message } => {
                tracing::warn!(provider = self.proto.name(), %code, %message, "provider error");
                self.emit(RelayEvent::Error {
                    code: "provider_error".into(),
                    message: format!("{}: {code}: {message}", self.proto.name()),
                })
                .await;
            }
            ProviderEvent::Ignored => {}
        }
        None
    }

    async fn on_audio(
        &mut self,
        response_id: Option<String>,
        item_id: Option<String>,
        samples: Vec<i16>,
    ) {
        if self.dropping {
            // The rest of a reply cut locally, which the provider goes on generating.
            return;
        }
        if let Some(r) = &response_id {
            if self.cancelled.contains(r) {
                // The rest of an interrupted reply: dropped, never played.
                return;
            }
            if self.finished.contains(r) {
                self.unexpected(format!("audio for reply {r} after it finished"))
                    .await;
                return;
            }
        }
        if !self.audio_active {
            self.reply_audio_began();
            self.audio_active = true;
            self.reply_active = true;
            self.skip_assistant_final = false;
            self.held = std::mem::take(&mut self.hold_armed);
            self.item_start = self.sent_samples;
            self.cur_item = item_id.clone();
            if response_id.is_some() {
                self.cur_response = response_id;
            }
            self.emit(RelayEvent::AudioStart).await;
        } else {
            if item_id.is_some() && item_id != self.cur_item {
                self.item_start = self.sent_samples;
                self.cur_item = item_id;
            }
            if std::mem::take(&mut self.hold_armed) {
                // Audio after the held tool's result within one reply (Gemini answers a
                // call without ending its turn; an OpenAI reply ends with its calls):
                // the read-back has begun.
                self.held = true;
            }
        }
        let mut out = Vec::with_capacity(samples.len());
        if let Err(e) = self.down.push(&samples, &mut out) {
            self.emit(RelayEvent::Error {
                code: "output_audio".into(),
                message: e.to_string(),
            })
            .await;
            return;
        }
        if !out.is_empty() {
            self.sent_samples += out.len() as u64;
            self.emit(RelayEvent::Audio { samples: out }).await;
        }
    }

    async fn on_transcript(
        &mut self,
        user: bool,
        text: String,
        is_final: bool,
        confidence: Option<f32>,
    ) {
        let speaker = if user {
            Speaker::User
        } else {
            Speaker::Assistant
        };
        if user && is_final {
            self.history.push(Turn::User(text.clone()));
        } else if !user && !is_final {
            self.assistant_text.push_str(&text);
        } else if !user && is_final {
            self.assistant_text.clear();
            if self.skip_assistant_final {
                // The interrupted reply is already in the history, cut to what was heard.
                self.skip_assistant_final = false;
            } else {
                self.history.push(Turn::Assistant(text.clone()));
            }
        }
        self.emit(RelayEvent::Transcript {
            speaker,
            text,
            is_final,
            confidence,
        })
        .await;
    }

    /// A barge-in waiting for the guest to have spoken long enough: due now, it
    /// interrupts the reply if one is still playing, then says the guest is speaking.
    pub(crate) async fn decide_barge_in(&mut self) {
        let Some(at) = self.barge_at else {
            return;
        };
        if Instant::now() < at {
            return;
        }
        self.barge_at = None;
        if self.interruptible() {
            self.barge_in().await;
        }
        self.emit(RelayEvent::SpeechStarted).await;
    }

    /// For a provider that reports no speech start or stop: the relay's own detector
    /// hears the guest's audio. Speech over an interruptible reply (or its tail) barges
    /// in once the guest has spoken `barge_in_min` (the detector's minimum speech); every
    /// start and stop is reported as [`RelayEvent::GuestSpeech`].
    async fn listen_to_guest(&mut self, audio: &[i16]) {
        let Some(vad) = self.vad.as_mut() else {
            return;
        };
        for e in vad.push(audio) {
            match e {
                stonepot_voice::VadEvent::SpeechStarted { .. } => {
                    if self.interruptible() {
                        self.barge_in().await;
                        // The provider goes on generating the reply: drop it until it
                        // completes.
                        self.dropping = self.reply_active;
                    }
                    self.emit(RelayEvent::GuestSpeech { started: true }).await;
                }
                stonepot_voice::VadEvent::SpeechStopped { .. } => {
                    self.emit(RelayEvent::GuestSpeech { started: false }).await;
                }
            }
        }
    }

    /// The guest spoke over the model: the client stops now, the rest of the reply is
    /// dropped, and the model is told how much was heard. Over a finished reply's tail
    /// see [`Relay::barge_in_tail`].
    async fn barge_in(&mut self) {
        if !self.audio_active {
            self.barge_in_tail().await;
            return;
        }
        let (heard, item_ms) = self.heard(self.item_start, self.sent_samples);
        self.audio_active = false;
        self.down.reset();
        self.emit(RelayEvent::Interrupted { played_ms: heard })
            .await;
        let msgs = self
            .proto
            .interrupt(self.cur_item.as_deref(), heard, self.reply_active);
        for m in msgs {
            self.send(m).await;
        }
        if let Some(r) = self.cur_response.take() {
            self.cancelled.insert(r);
        }
        let said = std::mem::take(&mut self.assistant_text);
        self.history
            .push(Turn::Assistant(heard_prefix(&said, heard, item_ms)));
        self.skip_assistant_final = true;
        self.cur_item = None;
        self.held = false;
    }

    async fn on_turn_complete(&mut self, response_id: Option<String>) {
        if self.audio_active {
            // Before `held` is cleared: a held reply leaves no tail to interrupt.
            self.keep_tail();
        }
        self.reply_active = false;
        self.dropping = false;
        self.held = false;
        let cancelled = response_id
            .as_ref()
            .is_some_and(|r| self.cancelled.remove(r));
        if let Some(r) = response_id {
            if self.finished.contains(&r) {
                self.unexpected(format!("reply {r} finished twice")).await;
                return;
            }
            self.finished.push_back(r);
            if self.finished.len() > FINISHED_KEPT {
                self.finished.pop_front();
            }
        }
        if self.audio_active {
            self.audio_active = false;
            self.emit(RelayEvent::AudioEnd).await;
        }
        self.cur_response = None;
        self.cur_item = None;
        if !cancelled {
            self.emit(RelayEvent::TurnComplete).await;
        }
        if std::mem::take(&mut self.answer_held) && !self.user_speaking {
            // The guest spoke over a held reply: answer them now that it is over (if
            // they are still speaking, the provider answers when they stop).
            self.needs_reply = true;
        }
        self.maybe_request_reply().await;
    }

    /// A call the model proposed: recorded, announced and started once per call id.
    async fn propose(&mut self, call_id: String, name: String, arguments: String) {
        if let Some(state) = self.ledger.get(&call_id) {
            if let CallState::Running { name: known } = state
                && *known != name
            {
                let why = format!("call {call_id} proposed again as {name}, was {known}");
                self.unexpected(why).await;
            }
            return;
        }
        self.history.push(Turn::Call {
            call_id: call_id.clone(),
            name: name.clone(),
            arguments: arguments.clone(),
        });
        let args: Value = match serde_json::from_str(&arguments) {
            Ok(v @ Value::Object(_)) => v,
            Ok(Value::Null) => json!({}),
            _ => {
                // Told to the model as a refusal, so it can correct itself; never run.
                self.ledger.insert(call_id.clone(), CallState::Done);
                let result = json!({"error": {"code": "bad_tool_arguments",
                    "message": "the arguments are not a JSON object"}});
                self.emit(RelayEvent::Error {
                    code: "bad_tool_arguments".into(),
                    message: format!("{name} ({call_id}): arguments are not a JSON object"),
                })
                .await;
                self.finish_call(call_id, name, result).await;
                return;
            }
        };
        self.ledger
            .insert(call_id.clone(), CallState::Running { name: name.clone() });
        self.running += 1;
        let call = ToolCall {
            call_id,
            name,
            arguments: args,
        };
        self.emit(RelayEvent::ToolCall(call.clone())).await;
        let tools = self.tools.clone();
        let tx = self.tool_tx.clone();
        // Its own task: a barge-in, a rollover or even the session ending never cancels
        // a call half-way.
        tokio::spawn(async move {
            let (id, name) = (call.call_id.clone(), call.name.clone());
            let result = tools.run(call).await;
            let _ = tx.send((id, name, result));
        });
    }

    pub(crate) async fn on_tool_result(&mut self, call_id: String, name: String, result: Value) {
        if self.ledger.get(&call_id) != Some(&CallState::Running { name: name.clone() }) {
            return;
        }
        self.ledger.insert(call_id.clone(), CallState::Done);
        self.running = self.running.saturating_sub(1);
        if result.get("error").is_none() && self.cfg.hold_after.contains(&name) {
            // The reply that follows (the order read back) may not be interrupted.
            self.hold_armed = true;
        }
        self.finish_call(call_id, name, result).await;
    }

    async fn finish_call(&mut self, call_id: String, name: String, result: Value) {
        self.emit(RelayEvent::ToolResult {
            call_id: call_id.clone(),
            name: name.clone(),
            result: result.clone(),
        })
        .await;
        self.unacked.push((call_id, name, result));
        self.flush_acks().await;
    }

    /// Tells the current connection every result it has not heard yet.
    pub(crate) async fn flush_acks(&mut self) {
        if !self.can_send() || self.unacked.is_empty() {
            return;
        }
        for (call_id, name, output) in std::mem::take(&mut self.unacked) {
            for m in self.proto.tool_output(&call_id, &name, &output) {
                self.send(m).await;
            }
            self.history.push(Turn::Output { call_id, output });
        }
        self.needs_reply = true;
        self.maybe_request_reply().await;
    }

    /// Asks for a reply to tool outputs once no call is running, no reply is under way
    /// and the guest is not speaking (then the provider's own turn detection answers).
    async fn maybe_request_reply(&mut self) {
        if self.needs_reply
            && self.running == 0
            && !self.reply_active
            && !self.user_speaking
            && self.can_send()
        {
            self.needs_reply = false;
            for m in self.proto.request_reply() {
                self.send(m).await;
            }
        }
    }
}
