//! One spoken turn: the utterance's final transcript (from the recognizer that heard it
//! as it was spoken, or transcribed whole), the same agent turn as typed text
//! runs on it, and its reply is spoken sentence by sentence while the model still
//! writes, paced at real time so an interruption leaves little unplayed audio queued.
//! At the end the turn's voice record (confidence, interruption, latency ledger) is
//! stored, and an interrupted reply is truncated to what the guest heard.

use super::Engines;
use super::session::VoiceOut;
use crate::app::App;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use stonepot_agent::turn::TurnEvent;
use stonepot_store::ConversationRecord;
use stonepot_voice::resample::Resampler;
use stonepot_voice::{PIPELINE_RATE, SampleRate, Sentences, Transcript, VoiceError, frame};
use tokio::sync::mpsc;
use tokio_util::sync::{CancellationToken, DropGuard};

/// How far ahead of real time reply audio is sent (the client's jitter buffer).
const LEAD: Duration = Duration::from_millis(200);

/// The reply audio in flight, shared by the socket (barge-in, playout) and the turn.
#[derive(Default)]
pub struct Playback {
    /// Bumped on interruption: frames of an older generation are dropped.
    pub generation: u64,
    pub active: bool,
    /// False while an order read-back plays (it must be heard whole).
    pub interruptible: bool,
    pub interrupted: bool,
    /// The client reported its playout after the interruption (its final word on
    /// what was heard).
    pub reported_after_interrupt: bool,
    /// Stops the speaking turn's audio (barge-in); set while it plays.
    pub speech: Option<CancellationToken>,
    /// Milliseconds of reply audio sent, and played as the client last reported.
    pub sent_ms: u64,
    pub played_ms: Option<u64>,
    /// Sentences spoken, with the audio time each ends at.
    pub spoken: Vec<(String, u64)>,
    pub speech_end: Option<Instant>,
    pub first_played: Option<Instant>,
}

/// How the utterance is heard.
pub enum Heard {
    /// Transcribed whole by the turn.
    Audio(Vec<i16>),
    /// Recognized while spoken ([`super::session`] fed the stream): the final transcript
    /// comes from `result`; `partials` forwards partial hypotheses until `stop` is
    /// dropped. `audio` is transcribed whole if the stream fails.
    Stream {
        result: tokio::task::JoinHandle<Result<Transcript, VoiceError>>,
        partials: tokio::task::JoinHandle<()>,
        stop: DropGuard,
        audio: Vec<i16>,
    },
}

pub struct SpokenTurn {
    pub app: App,
    pub conv: ConversationRecord,
    pub engines: Engines,
    pub heard: Heard,
    pub speech_end: Instant,
    pub out: mpsc::Sender<VoiceOut>,
    pub playback: Arc<Mutex<Playback>>,
    /// The socket closed: stop everything.
    pub cancel: CancellationToken,
    /// Barge-in: stop speaking (a child of `cancel`). The agent turn goes on, so a
    /// tool call under way completes and is stored once.
    pub speech: CancellationToken,
    /// The client's rate: reply audio goes down at it.
    pub rate: SampleRate,
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl SpokenTurn {
    fn lock(&self) -> std::sync::MutexGuard<'_, Playback> {
        self.playback.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn send(&self, v: Value) {
        let _ = self.out.send(VoiceOut::Event(v)).await;
    }

    /// The final transcript: the stream's (once its partials have all gone out), or a
    /// whole-utterance transcription — also when the stream failed, so a recognizer
    /// that died mid-utterance costs time, not the guest's words.
    async fn final_transcript(&mut self) -> Option<Result<Transcript, VoiceError>> {
        let audio = match std::mem::replace(&mut self.heard, Heard::Audio(Vec::new())) {
            Heard::Audio(audio) => audio,
            Heard::Stream {
                result,
                partials,
                stop,
                audio,
            } => {
                let r = tokio::select! {
                    r = result => r.unwrap_or_else(|e| Err(VoiceError::Engine(e.to_string()))),
                    () = self.cancel.cancelled() => return None,
                };
                drop(stop);
                let _ = partials.await;
                match r {
                    Err(e) if !matches!(e, VoiceError::Format(_)) => {
                        tracing::warn!(conversation = %self.conv.id, error = %e, "streaming recognition failed; transcribing the utterance whole");
                        audio
                    }
                    r => return Some(r),
                }
            }
        };
        let vocab = vocabulary(self.app.clone(), self.conv.tenant_id.clone()).await;
        tokio::select! {
            r = self.engines.recognizer.transcribe(&audio, &vocab) => Some(r),
            () = self.cancel.cancelled() => None,
        }
    }

    pub async fn run(mut self) {
        let Some(heard) = self.final_transcript().await else {
            return;
        };
        let transcript_ms = ms(self.speech_end.elapsed());
        self.app
            .metrics
            .observe_voice("transcript", self.speech_end.elapsed());
        let heard = match heard {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(conversation = %self.conv.id, error = %e, "speech recognition failed");
                self.send(json!({"type": "error", "code": "stt_failed", "message": "speech could not be transcribed; please try again or type"}))
                    .await;
                return;
            }
        };
        let text = heard.text.trim().to_string();
        self.send(json!({
            "type": "transcript", "final": true, "text": text,
            "confidence": heard.confidence, "latencyMs": transcript_ms,
        }))
        .await;
        if text.is_empty() || crate::agent::check_text(&text).is_err() {
            return;
        }
        {
            let mut p = self.lock();
            let generation = p.generation;
            *p = Playback {
                generation,
                interruptible: true,
                speech_end: Some(self.speech_end),
                ..Playback::default()
            };
        }
        // The agent turn, exactly as typed text runs it.
        let (tx, mut rx) = mpsc::channel::<TurnEvent>(64);
        let (a, conv, c) = (self.app.clone(), self.conv.clone(), self.cancel.clone());
        let t = text.clone();
        let agent = tokio::spawn(async move { a.engine.run(&a, &conv.id, &t, tx, c).await });
        // Sentences go to the speaker task as the model writes them.
        let (stx, srx) = mpsc::channel::<String>(32);
        let speaker = tokio::spawn(speak_all(
            self.engines.clone(),
            srx,
            self.out.clone(),
            self.playback.clone(),
            self.speech.clone(),
            self.rate,
            self.speech_end,
            self.app.clone(),
        ));
        let mut sentences = Sentences::default();
        let mut first_token: Option<u64> = None;
        while let Some(ev) = rx.recv().await {
            match &ev {
                TurnEvent::AssistantDelta { text } => {
                    if first_token.is_none() {
                        first_token = Some(ms(self.speech_end.elapsed()));
                        self.app
                            .metrics
                            .observe_voice("first_token", self.speech_end.elapsed());
                    }
                    for s in sentences.push(text) {
                        let _ = stx.send(s).await;
                    }
                }
                TurnEvent::ToolResult { name, ok: true, .. } if name == "quote_order" => {
                    // The order read-back: the guest must hear it whole.
                    self.lock().interruptible = false;
                }
                TurnEvent::AssistantDone { .. } => {
                    if let Some(s) = sentences.finish() {
                        let _ = stx.send(s).await;
                    }
                }
                _ => {}
            }
            self.send(ev.to_json()).await;
        }
        drop(stx);
        let record = agent.await;
        let first_audio = speaker.await.ok().flatten();
        let Ok(Ok(rec)) = record else { return };
        self.await_final_playout().await;
        let (interrupted, heard_ms, spoken, played) = {
            let p = self.lock();
            (
                p.interrupted,
                p.played_ms.unwrap_or(p.sent_ms).min(p.sent_ms),
                p.spoken.clone(),
                p.first_played
                    .map(|t| ms(t.duration_since(self.speech_end))),
            )
        };
        let heard_text = interrupted.then(|| heard_text(&spoken, heard_ms));
        let voice = json!({
            "transcript": {"text": text, "confidence": heard.confidence},
            "interrupted": interrupted,
            "heardMs": interrupted.then_some(heard_ms),
            "latencyMs": {
                "transcript": transcript_ms,
                "firstToken": first_token,
                "firstAudio": first_audio,
                "firstPlayed": played,
            },
        });
        if let Err(e) = self
            .app
            .store
            .set_turn_voice(
                &self.conv.tenant_id,
                &self.conv.id,
                rec.turn,
                heard_text.as_deref(),
                &voice,
            )
            .await
        {
            tracing::warn!(conversation = %self.conv.id, error = %e, "voice record not stored");
        }
    }
}

impl SpokenTurn {
    /// After an interruption the client reports how much it played; wait briefly for
    /// that report so the stored reply is what the guest heard, not what was sent.
    async fn await_final_playout(&self) {
        let until = Instant::now() + FINAL_PLAYOUT_WAIT;
        loop {
            {
                let p = self.lock();
                if !p.interrupted || p.reported_after_interrupt {
                    return;
                }
            }
            if Instant::now() >= until {
                return;
            }
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(10)) => {}
                () = self.cancel.cancelled() => return,
            }
        }
    }
}

/// The words the recognizer listens for in `tenant`'s conversations: its menu's
/// sections, items, aliases and modifiers, with the ordering words.
pub async fn vocabulary(app: App, tenant: stonepot_domain::TenantId) -> Vec<String> {
    let menu = app.store.menu(&tenant).await.unwrap_or_default();
    let names = menu
        .sections
        .iter()
        .map(|s| s.name.as_str())
        .chain(menu.items.iter().flat_map(|i| {
            std::iter::once(i.name.as_str())
                .chain(i.aliases.iter().map(String::as_str))
                .chain(
                    i.modifier_groups
                        .iter()
                        .flat_map(|g| g.modifiers.iter().map(|m| m.name.as_str())),
                )
        }));
    stonepot_voice::stt::vocabulary(names)
}

/// At most this often a partial transcript goes to the client (4 a second).
const PARTIAL_EVERY: Duration = Duration::from_millis(250);

/// Sends the recognizer's partial hypotheses as `transcript` events with `final:
/// false`: only changed, non-empty ones, at most one per [`PARTIAL_EVERY`] (the newest
/// one then), until `stop` is cancelled or the stream ends.
pub fn forward_partials(
    mut partials: tokio::sync::watch::Receiver<String>,
    out: mpsc::Sender<VoiceOut>,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut last = String::new();
        loop {
            tokio::select! {
                r = partials.changed() => if r.is_err() { return },
                () = stop.cancelled() => return,
            }
            let text = partials.borrow_and_update().trim().to_string();
            if text.is_empty() || text == last {
                continue;
            }
            let v = json!({"type": "transcript", "final": false, "text": text, "confidence": null});
            last = text;
            if out.send(VoiceOut::Event(v)).await.is_err() {
                return;
            }
            tokio::select! {
                () = tokio::time::sleep(PARTIAL_EVERY) => {}
                () = stop.cancelled() => return,
            }
        }
    })
}

/// How long an interrupted turn waits for the client's last `playout`.
const FINAL_PLAYOUT_WAIT: Duration = Duration::from_millis(300);

/// What the guest heard of an interrupted reply: the sentences that finished playing,
/// plus the words of the one cut short in proportion to the time it played.
pub fn heard_text(spoken: &[(String, u64)], heard_ms: u64) -> String {
    let mut out = Vec::new();
    let mut start = 0;
    for (s, end) in spoken {
        if *end <= heard_ms {
            out.push(s.clone());
        } else {
            let span = end.saturating_sub(start).max(1);
            let words: Vec<&str> = s.split_whitespace().collect();
            let n = (words.len() as u64 * heard_ms.saturating_sub(start) / span) as usize;
            if n > 0 {
                out.push(format!("{}…", words[..n.min(words.len())].join(" ")));
            }
            break;
        }
        start = *end;
    }
    out.join(" ")
}

/// Speaks each sentence, sending 20 ms frames at the client's rate no faster than real
/// time (plus [`LEAD`]); returns when first audio went out (ms after end of speech).
#[expect(clippy::too_many_arguments, reason = "one task's whole context")]
async fn speak_all(
    engines: Engines,
    mut sentences: mpsc::Receiver<String>,
    out: mpsc::Sender<VoiceOut>,
    playback: Arc<Mutex<Playback>>,
    cancel: CancellationToken,
    rate: SampleRate,
    speech_end: Instant,
    app: App,
) -> Option<u64> {
    let lock = || playback.lock().unwrap_or_else(|p| p.into_inner());
    let generation = lock().generation;
    let frame_samples = rate.frame_samples();
    let mut resampler = Resampler::new(PIPELINE_RATE, rate.hz()).ok()?;
    let mut pending: Vec<i16> = Vec::new();
    let mut started: Option<Instant> = None;
    let mut first_audio = None;
    let mut sent_ms = 0u64;
    while let Some(sentence) = tokio::select! {
        s = sentences.recv() => s,
        () = cancel.cancelled() => None,
    } {
        let (ptx, prx) = mpsc::channel::<Vec<i16>>(64);
        let speaker = engines.speaker.clone();
        let text = sentence.clone();
        // Owns the sender, so the frame loop below ends when synthesis does.
        let speak = async move { speaker.speak(&text, &ptx).await };
        let send = async {
            // Owned here: when this loop stops early (barge-in, socket gone) the
            // receiver is dropped and synthesis ends instead of blocking on it.
            let mut prx = prx;
            while let Some(pcm) = prx.recv().await {
                let Ok(conv) = resampler.push(&pcm) else {
                    break;
                };
                pending.extend(conv);
                while pending.len() >= frame_samples {
                    let f: Vec<i16> = pending.drain(..frame_samples).collect();
                    let at = *started.get_or_insert_with(Instant::now);
                    if first_audio.is_none() {
                        let _ = out
                            .send(VoiceOut::Event(
                                json!({"type": "audio_start", "sampleRate": rate.hz()}),
                            ))
                            .await;
                        first_audio = Some(ms(speech_end.elapsed()));
                        app.metrics
                            .observe_voice("first_audio", speech_end.elapsed());
                        let mut p = lock();
                        if p.generation == generation {
                            p.active = true;
                            p.speech = Some(cancel.clone());
                        }
                    }
                    // Pace: never more than LEAD ahead of real time.
                    let due = at + Duration::from_millis(sent_ms);
                    let wait = due.saturating_duration_since(Instant::now() + LEAD);
                    tokio::select! {
                        () = tokio::time::sleep(wait) => {}
                        () = cancel.cancelled() => return,
                    }
                    if out
                        .send(VoiceOut::Audio {
                            generation,
                            pcm: frame::to_bytes(&f),
                        })
                        .await
                        .is_err()
                    {
                        return;
                    }
                    sent_ms += u64::from(frame::FRAME_MS);
                    let mut p = lock();
                    if p.generation != generation {
                        return;
                    }
                    p.sent_ms = sent_ms;
                }
            }
        };
        let (spoken, ()) = tokio::join!(speak, send);
        if cancel.is_cancelled() {
            break;
        }
        if let Err(e) = spoken {
            tracing::warn!(error = %e, "speech synthesis failed");
            let _ = out
                .send(VoiceOut::Event(json!({"type": "error", "code": "tts_failed", "message": "the reply could not be spoken"})))
                .await;
            break;
        }
        let mut p = lock();
        if p.generation == generation {
            p.spoken.push((sentence, sent_ms));
        }
    }
    let was_active = {
        let mut p = lock();
        let a = p.generation == generation && p.active;
        if p.generation == generation {
            p.active = false;
            p.speech = None;
        }
        a
    };
    if was_active {
        let _ = out
            .send(VoiceOut::Event(
                json!({"type": "audio_end", "sentMs": sent_ms}),
            ))
            .await;
    }
    first_audio
}

#[cfg(test)]
mod tests {
    use super::heard_text;

    #[test]
    fn heard_text_keeps_played_sentences_and_part_of_the_cut_one() {
        let spoken = vec![
            ("One margherita added.".to_string(), 1_000),
            ("Anything else for you today?".to_string(), 3_000),
        ];
        assert_eq!(heard_text(&spoken, 0), "");
        assert_eq!(heard_text(&spoken, 1_000), "One margherita added.");
        assert_eq!(
            heard_text(&spoken, 2_000),
            "One margherita added. Anything else…"
        );
        assert_eq!(
            heard_text(&spoken, 9_000),
            "One margherita added. Anything else for you today?"
        );
    }
}
