//! pocketsphinx, the offline recognizer: a small pool of long-lived helper processes
//! (`recognizer.py`, one decoder each) that decode utterances as they are spoken.
//!
//! A decoder costs ~90 MB and ~0.5–3 s to load, so helpers are started only when needed
//! (the first by [`Pocketsphinx::start`], the others when guests speak at once) and then
//! reused. A guest who starts speaking while every decoder is busy is not refused: the
//! audio is kept and decoded when one frees — from there on as a stream, or whole (final
//! transcript only) if the utterance has ended by then. One process per decoder, rather
//! than threads in one, lets two utterances decode on two cores and confines a crash to
//! one stream.

use crate::VoiceError;
use crate::stt::{RecognitionStream, Recognizer, StreamFeed, StreamInput, Transcript, Vocabulary};
use async_trait::async_trait;
use serde::Deserialize;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout};
use tokio::sync::{Mutex, OwnedMutexGuard, OwnedSemaphorePermit, Semaphore};

const SCRIPT: &str = include_str!("recognizer.py");

/// The longest utterance decoded (30 s); audio beyond it is ignored.
const MAX_AUDIO: usize = 16_000 * 30;

/// Audio is written to the helper in batches of this many samples (160 ms): partials
/// still change several times a second, and the pipe carries a few writes a second per
/// guest instead of fifty.
const BATCH: usize = 16_000 * 160 / 1000;

/// Most decoders a server may configure.
pub const MAX_STREAMS: usize = 16;

/// pocketsphinx through `recognizer.py` run by `python`, with up to `streams` decoders.
pub struct Pocketsphinx {
    pool: Arc<Pool>,
}

struct Pool {
    python: String,
    timeout: Duration,
    /// One helper (or none yet) per decoder; locked by the stream using it.
    slots: Vec<Arc<Mutex<Option<Helper>>>>,
    /// One permit per slot: waiting for a permit is waiting for a free decoder, in
    /// arrival order.
    free: Arc<Semaphore>,
    next_stream: AtomicU64,
    /// The cepstral mean of the latest final transcript: a new decoder starts from it
    /// instead of the model's default, so its first guest is heard as well as the rest.
    cmn: std::sync::Mutex<Option<String>>,
}

struct Helper {
    /// No stream decoded yet (its first gets the pool's latest cepstral mean).
    fresh: bool,
    _child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
}

/// A decoder held by one stream until it is dropped.
struct Lease {
    // Declared first so the slot is unlocked before its permit is returned.
    helper: OwnedMutexGuard<Option<Helper>>,
    _permit: OwnedSemaphorePermit,
}

#[derive(Deserialize)]
struct Reply {
    #[serde(default)]
    ready: bool,
    #[serde(default)]
    stream: Option<u64>,
    #[serde(default)]
    partial: Option<String>,
    #[serde(default, rename = "final")]
    is_final: bool,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    confidence: Option<f32>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    cmn: Option<String>,
}

impl Pocketsphinx {
    /// A pool of at most `streams` decoders (at least one).
    pub fn new(python: impl Into<String>, streams: usize) -> Pocketsphinx {
        let n = streams.clamp(1, MAX_STREAMS);
        Pocketsphinx {
            pool: Arc::new(Pool {
                python: python.into(),
                timeout: Duration::from_secs(30),
                slots: (0..n).map(|_| Arc::new(Mutex::new(None))).collect(),
                free: Arc::new(Semaphore::new(n)),
                next_stream: AtomicU64::new(1),
                cmn: std::sync::Mutex::new(None),
            }),
        }
    }

    /// Starts the first helper if none runs; `Ok` means pocketsphinx and its model load
    /// here. A helper already running (or busy with a guest) is proof enough, so this
    /// neither waits for a busy decoder nor starts a second one.
    pub async fn start(&self) -> Result<(), VoiceError> {
        if self
            .pool
            .slots
            .iter()
            .any(|s| s.try_lock().map_or(true, |h| h.is_some()))
        {
            return Ok(());
        }
        let mut lease = self.pool.lease().await?;
        if lease.helper.is_none() {
            *lease.helper = Some(self.pool.spawn().await?);
        }
        Ok(())
    }

    /// How many helpers run now (for tests and measurements).
    pub fn running(&self) -> usize {
        self.pool
            .slots
            .iter()
            .filter(|s| s.try_lock().map_or(true, |h| h.is_some()))
            .count()
    }

    fn open(&self, vocabulary: Vocabulary, partials: bool) -> RecognitionStream {
        let (stream, feed) = RecognitionStream::channel();
        let pool = self.pool.clone();
        tokio::spawn(async move {
            let StreamFeed {
                input,
                partial,
                result,
            } = feed;
            let outcome = pool.run(vocabulary, input, &partial, partials).await;
            if let Some(r) = outcome {
                let _ = result.send(r);
            }
        });
        stream
    }
}

#[async_trait]
impl Recognizer for Pocketsphinx {
    async fn transcribe(
        &self,
        audio: &[i16],
        vocabulary: &[String],
    ) -> Result<Transcript, VoiceError> {
        let words = vocabulary.to_vec();
        let s = self.open(Box::pin(async move { words }), false);
        s.push(&audio[..audio.len().min(MAX_AUDIO)]);
        s.finish().await
    }

    fn name(&self) -> &'static str {
        "pocketsphinx"
    }

    fn stream(&self, vocabulary: Vocabulary) -> Option<RecognitionStream> {
        Some(self.open(vocabulary, true))
    }
}

/// What the stream task does when the audio queue gives `input`.
enum Step {
    More,
    Ended,
    Abandoned,
}

fn take(input: Option<StreamInput>, audio: &mut Vec<i16>, total: &mut usize) -> Step {
    match input {
        Some(StreamInput::Audio(pcm)) => {
            let room = MAX_AUDIO.saturating_sub(*total).min(pcm.len());
            audio.extend_from_slice(&pcm[..room]);
            *total += room;
            Step::More
        }
        Some(StreamInput::End) => Step::Ended,
        None => Step::Abandoned,
    }
}

impl Pool {
    /// A free decoder: a running helper if there is one, else an empty slot to start
    /// one in. Waits (in arrival order) while all are busy.
    async fn lease(&self) -> Result<Lease, VoiceError> {
        let permit = self
            .free
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| VoiceError::Engine("recognizer: pool closed".into()))?;
        self.slot(permit)
    }

    fn try_lease(&self) -> Option<Lease> {
        let permit = self.free.clone().try_acquire_owned().ok()?;
        self.slot(permit).ok()
    }

    fn slot(&self, permit: OwnedSemaphorePermit) -> Result<Lease, VoiceError> {
        let mut empty = None;
        for s in &self.slots {
            if let Ok(g) = s.clone().try_lock_owned() {
                if g.is_some() {
                    return Ok(Lease {
                        helper: g,
                        _permit: permit,
                    });
                }
                if empty.is_none() {
                    empty = Some(g);
                }
            }
        }
        // Every permit holder locks at most one slot, so with a permit one is free.
        empty
            .map(|helper| Lease {
                helper,
                _permit: permit,
            })
            .ok_or_else(|| VoiceError::Engine("recognizer: no free decoder".into()))
    }

    async fn spawn(&self) -> Result<Helper, VoiceError> {
        let mut child = tokio::process::Command::new(&self.python)
            .args(["-c", SCRIPT])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| VoiceError::Unavailable(format!("{}: {e}", self.python)))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(VoiceError::Engine("recognizer: no pipes".into()));
        };
        let mut helper = Helper {
            fresh: true,
            _child: child,
            stdin,
            stdout: BufReader::new(stdout).lines(),
        };
        let hello = helper.reply(self.timeout).await?;
        if let Some(e) = hello.error {
            return Err(VoiceError::Unavailable(e));
        }
        if !hello.ready {
            return Err(VoiceError::Engine("recognizer: no ready line".into()));
        }
        Ok(helper)
    }

    /// One stream, from its first audio to its final transcript (`None`: abandoned).
    async fn run(
        &self,
        vocabulary: Vocabulary,
        mut input: tokio::sync::mpsc::UnboundedReceiver<StreamInput>,
        partial: &tokio::sync::watch::Sender<String>,
        partials: bool,
    ) -> Option<Result<Transcript, VoiceError>> {
        let id = self.next_stream.fetch_add(1, Ordering::Relaxed);
        let mut audio: Vec<i16> = Vec::new();
        let mut total = 0usize;
        let mut ended = false;
        // The vocabulary and a decoder; the audio arriving meanwhile is kept.
        let mut vocabulary = vocabulary;
        let mut words: Option<Vec<String>> = None;
        let mut lease = self.try_lease();
        // Pinned once, so a guest waiting for a decoder keeps its place in the queue.
        let waiting = self.lease();
        tokio::pin!(waiting);
        while words.is_none() || lease.is_none() {
            tokio::select! {
                w = &mut vocabulary, if words.is_none() => {
                    if w.is_empty() {
                        return Some(Err(VoiceError::Format(
                            "the recognizer needs a vocabulary".into(),
                        )));
                    }
                    words = Some(w);
                }
                l = &mut waiting, if lease.is_none() => match l {
                    Ok(l) => lease = Some(l),
                    Err(e) => return Some(Err(e)),
                },
                i = input.recv(), if !ended => match take(i, &mut audio, &mut total) {
                    Step::More => {}
                    Step::Ended => ended = true,
                    Step::Abandoned => return None,
                },
            }
        }
        let (Some(words), Some(mut lease)) = (words, lease) else {
            return Some(Err(VoiceError::Engine("recognizer: no decoder".into())));
        };
        if lease.helper.is_none() {
            match self.spawn().await {
                Ok(h) => *lease.helper = Some(h),
                Err(e) => return Some(Err(e)),
            }
        }
        let Some(helper) = lease.helper.as_mut() else {
            return Some(Err(VoiceError::Engine("recognizer: not started".into())));
        };
        let cmn = if std::mem::replace(&mut helper.fresh, false) {
            self.cmn.lock().unwrap_or_else(|p| p.into_inner()).clone()
        } else {
            None
        };
        let r = helper
            .decode(
                id,
                &words,
                cmn.as_deref(),
                Feed {
                    input: &mut input,
                    audio,
                    total,
                    ended,
                    partials,
                },
                partial,
                self.timeout,
            )
            .await;
        match r {
            Ok(Some((t, cmn))) => {
                if cmn.is_some() {
                    *self.cmn.lock().unwrap_or_else(|p| p.into_inner()) = cmn;
                }
                Some(Ok(t))
            }
            Ok(None) => None,
            Err(e) => {
                if !matches!(e, VoiceError::Format(_)) {
                    // Out of step or dead: the next stream starts a fresh helper.
                    *lease.helper = None;
                }
                Some(Err(e))
            }
        }
    }
}

/// A stream's audio as the helper gets it.
struct Feed<'a> {
    input: &'a mut tokio::sync::mpsc::UnboundedReceiver<StreamInput>,
    /// Audio kept while waiting for the decoder, not yet written.
    audio: Vec<i16>,
    total: usize,
    ended: bool,
    partials: bool,
}

impl Helper {
    async fn reply(&mut self, timeout: Duration) -> Result<Reply, VoiceError> {
        let line = tokio::time::timeout(timeout, self.stdout.next_line())
            .await
            .map_err(|_| VoiceError::Engine("recognizer: timed out".into()))??;
        let Some(line) = line else {
            return Err(VoiceError::Unavailable("recognizer exited".into()));
        };
        serde_json::from_str(&line)
            .map_err(|e| VoiceError::Engine(format!("recognizer said {line:?}: {e}")))
    }

    async fn send(&mut self, req: serde_json::Value, pcm: &[i16]) -> Result<(), VoiceError> {
        let mut line = serde_json::to_vec(&req).map_err(|e| VoiceError::Engine(e.to_string()))?;
        line.push(b'\n');
        if !pcm.is_empty() {
            line.extend_from_slice(&crate::frame::to_bytes(pcm));
        }
        self.stdin.write_all(&line).await?;
        self.stdin.flush().await?;
        Ok(())
    }

    async fn audio(&mut self, id: u64, pcm: &[i16]) -> Result<(), VoiceError> {
        if pcm.is_empty() {
            return Ok(());
        }
        let req = serde_json::json!({"stream": id, "op": "audio", "bytes": pcm.len() * 2});
        self.send(req, pcm).await
    }

    /// Runs stream `id` on this helper: the kept audio, then audio as it arrives in
    /// batches (partials read meanwhile), then its end and final transcript. `None`:
    /// the stream was abandoned (the helper is left in step for the next one).
    async fn decode(
        &mut self,
        id: u64,
        words: &[String],
        cmn: Option<&str>,
        mut feed: Feed<'_>,
        partial: &tokio::sync::watch::Sender<String>,
        timeout: Duration,
    ) -> Result<Option<(Transcript, Option<String>)>, VoiceError> {
        let streaming = feed.partials && !feed.ended;
        self.send(
            serde_json::json!({
                "stream": id, "op": "start", "words": words, "partials": streaming, "cmn": cmn,
            }),
            &[],
        )
        .await?;
        let mut abandoned = false;
        if !feed.ended {
            // Catch up on what was said while waiting for the decoder, then stream.
            self.audio(id, &std::mem::take(&mut feed.audio)).await?;
            loop {
                tokio::select! {
                    i = feed.input.recv() => match take(i, &mut feed.audio, &mut feed.total) {
                        Step::More => {
                            if feed.audio.len() >= BATCH {
                                self.audio(id, &std::mem::take(&mut feed.audio)).await?;
                            }
                        }
                        Step::Ended => break,
                        Step::Abandoned => {
                            abandoned = true;
                            feed.audio.clear();
                            break;
                        }
                    },
                    line = self.stdout.next_line() => {
                        let Some(line) = line? else {
                            return Err(VoiceError::Unavailable("recognizer exited".into()));
                        };
                        let r: Reply = serde_json::from_str(&line).map_err(|e| {
                            VoiceError::Engine(format!("recognizer said {line:?}: {e}"))
                        })?;
                        match (r.stream, r.partial) {
                            (Some(s), Some(p)) if s == id => {
                                partial.send_replace(p);
                            }
                            _ => {
                                return Err(VoiceError::Engine(format!(
                                    "recognizer: unexpected {line:?} while streaming"
                                )));
                            }
                        }
                    }
                }
            }
        }
        self.audio(id, &feed.audio).await?;
        self.send(serde_json::json!({"stream": id, "op": "end"}), &[])
            .await?;
        loop {
            let r = self.reply(timeout).await?;
            if r.stream != Some(id) {
                return Err(VoiceError::Engine(
                    "recognizer: an answer for another stream".into(),
                ));
            }
            if let Some(p) = r.partial {
                if !abandoned {
                    partial.send_replace(p);
                }
                continue;
            }
            if abandoned {
                return Ok(None);
            }
            return match (r.is_final, r.text, r.error) {
                (_, _, Some(e)) if e.contains("vocabulary") => {
                    Err(VoiceError::Format(format!("recognizer: {e}")))
                }
                (_, _, Some(e)) => Err(VoiceError::Engine(format!("recognizer: {e}"))),
                (true, Some(text), None) => Ok(Some((
                    Transcript {
                        text,
                        // A posterior, which rounding can put a hair above 1.
                        confidence: r.confidence.map(|c| c.clamp(0.0, 1.0)),
                    },
                    r.cmn,
                ))),
                _ => Err(VoiceError::Engine("recognizer: empty answer".into())),
            };
        }
    }
}
