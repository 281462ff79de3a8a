//! Speech to text: the [`Recognizer`] trait, the vocabulary a tenant's menu gives the
//! offline recognizer, and pocketsphinx run as a long-lived helper process.

use crate::VoiceError;
use async_trait::async_trait;
use serde::Deserialize;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout};

/// What was heard.
#[derive(Debug, Clone, PartialEq)]
pub struct Transcript {
    pub text: String,
    /// 0..1 where the engine says (pocketsphinx's posterior); `None` when it doesn't.
    pub confidence: Option<f32>,
}

/// Something that transcribes one utterance of 16 kHz PCM16.
#[async_trait]
pub trait Recognizer: Send + Sync {
    /// Transcribes `audio`; `vocabulary` are the words the domain expects (engines that
    /// take hints use them, open-vocabulary ones may ignore them).
    async fn transcribe(
        &self,
        audio: &[i16],
        vocabulary: &[String],
    ) -> Result<Transcript, VoiceError>;

    /// A short name for logs and `/health`.
    fn name(&self) -> &'static str;
}

/// Words any order needs, whatever the menu: quantities, politeness, confirmations.
const ORDER_WORDS: &str = "i i'd i'll we we'd would like want have get give me can could \
    please a an the some and with without no not yes yeah yep okay ok that's that it is all \
    one two three four five six seven eight nine ten eleven twelve \
    add remove cancel change make extra large small medium regular \
    confirm order done thanks thank you what's how much also another more less of for to \
    nothing else everything finished";

/// The vocabulary for `phrases` (menu item, modifier and category names): lower-case
/// words of letters and apostrophes, the ordering words included, without duplicates,
/// at most `MAX_WORDS`.
pub fn vocabulary<'a>(phrases: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let base = ORDER_WORDS.split_whitespace();
    for p in base.chain(
        phrases
            .into_iter()
            .flat_map(|p| p.split(|c: char| !(c.is_alphabetic() || c == '\''))),
    ) {
        let w = p.trim_matches('\'').to_lowercase();
        if w.is_empty() || w.len() > 32 || !w.chars().all(|c| c.is_ascii_lowercase() || c == '\'') {
            continue;
        }
        if out.len() >= MAX_WORDS {
            break;
        }
        if seen.insert(w.clone()) {
            out.push(w);
        }
    }
    out
}

/// Most words a grammar holds; a bigger menu is cut (ordering words come first).
pub const MAX_WORDS: usize = 1_500;

/// pocketsphinx through `recognizer.py` run by `python`. One helper serves every
/// session, one utterance at a time (decoding an utterance takes ~0.1–1 s of one
/// core); it is started on first use and restarted after any failure.
pub struct Pocketsphinx {
    python: String,
    helper: tokio::sync::Mutex<Option<Helper>>,
    timeout: Duration,
}

struct Helper {
    _child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

#[derive(Deserialize)]
struct Reply {
    #[serde(default)]
    ready: bool,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    confidence: Option<f32>,
    #[serde(default)]
    error: Option<String>,
}

const SCRIPT: &str = include_str!("recognizer.py");

/// The longest utterance sent to the helper (30 s).
const MAX_AUDIO: usize = 16_000 * 30;

impl Pocketsphinx {
    pub fn new(python: impl Into<String>) -> Pocketsphinx {
        Pocketsphinx {
            python: python.into(),
            helper: tokio::sync::Mutex::new(None),
            timeout: Duration::from_secs(30),
        }
    }

    /// Starts the helper if needed; `Ok` means pocketsphinx and its model load here.
    pub async fn start(&self) -> Result<(), VoiceError> {
        let mut h = self.helper.lock().await;
        if h.is_none() {
            *h = Some(self.spawn().await?);
        }
        Ok(())
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
            _child: child,
            stdin,
            stdout: BufReader::new(stdout),
        };
        let hello = read_reply(&mut helper.stdout, self.timeout).await?;
        if let Some(e) = hello.error {
            return Err(VoiceError::Unavailable(e));
        }
        if !hello.ready {
            return Err(VoiceError::Engine("recognizer: no ready line".into()));
        }
        Ok(helper)
    }
}

async fn read_reply(
    out: &mut BufReader<ChildStdout>,
    timeout: Duration,
) -> Result<Reply, VoiceError> {
    let mut line = String::new();
    let n = tokio::time::timeout(timeout, out.read_line(&mut line))
        .await
        .map_err(|_| VoiceError::Engine("recognizer: timed out".into()))??;
    if n == 0 {
        return Err(VoiceError::Unavailable("recognizer exited".into()));
    }
    serde_json::from_str(&line)
        .map_err(|e| VoiceError::Engine(format!("recognizer said {line:?}: {e}")))
}

#[async_trait]
impl Recognizer for Pocketsphinx {
    async fn transcribe(
        &self,
        audio: &[i16],
        vocabulary: &[String],
    ) -> Result<Transcript, VoiceError> {
        if vocabulary.is_empty() {
            return Err(VoiceError::Format(
                "the recognizer needs a vocabulary".into(),
            ));
        }
        let audio = &audio[..audio.len().min(MAX_AUDIO)];
        let mut guard = self.helper.lock().await;
        if guard.is_none() {
            *guard = Some(self.spawn().await?);
        }
        let Some(helper) = guard.as_mut() else {
            return Err(VoiceError::Engine("recognizer: not started".into()));
        };
        let result = exchange(helper, audio, vocabulary, self.timeout).await;
        match result {
            Ok(r) => match (r.text, r.error) {
                (_, Some(e)) => Err(VoiceError::Engine(format!("recognizer: {e}"))),
                (Some(text), None) => Ok(Transcript {
                    text,
                    confidence: r.confidence,
                }),
                (None, None) => Err(VoiceError::Engine("recognizer: empty answer".into())),
            },
            Err(e) => {
                // Out of step or dead: start afresh next time.
                *guard = None;
                Err(e)
            }
        }
    }

    fn name(&self) -> &'static str {
        "pocketsphinx"
    }
}

async fn exchange(
    helper: &mut Helper,
    audio: &[i16],
    vocabulary: &[String],
    timeout: Duration,
) -> Result<Reply, VoiceError> {
    let bytes = crate::frame::to_bytes(audio);
    let mut req =
        serde_json::to_vec(&serde_json::json!({"words": vocabulary, "bytes": bytes.len()}))
            .map_err(|e| VoiceError::Engine(e.to_string()))?;
    req.push(b'\n');
    let send = async {
        helper.stdin.write_all(&req).await?;
        helper.stdin.write_all(&bytes).await?;
        helper.stdin.flush().await
    };
    tokio::time::timeout(timeout, send)
        .await
        .map_err(|_| VoiceError::Engine("recognizer: timed out".into()))??;
    read_reply(&mut helper.stdout, timeout).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vocabulary_takes_menu_words_once() {
        let v = vocabulary([
            "Margherita Pizza",
            "Pizza (large)",
            "Chef's Salad",
            "Crème brûlée",
            "7-Up",
        ]);
        assert!(v.contains(&"margherita".to_string()));
        assert!(v.contains(&"chef's".to_string()));
        assert!(v.contains(&"up".to_string()));
        assert_eq!(v.iter().filter(|w| *w == "pizza").count(), 1);
        assert!(
            !v.iter().any(|w| w.contains('è') || w.contains('7')),
            "{v:?}"
        );
        assert!(v.contains(&"yes".to_string()) && v.contains(&"two".to_string()));
    }

    fn speech(text: &str) -> Vec<i16> {
        let out = std::process::Command::new("espeak-ng")
            .args(["--stdout", "-v", "en-us", text])
            .output()
            .expect("espeak-ng is installed (scripts/install-test-deps.sh)");
        let w = crate::wav::read(&out.stdout).unwrap();
        let mut pcm = vec![0i16; 4_000];
        pcm.extend(crate::resample::resample_all(&w.samples, w.rate, 16_000).unwrap());
        pcm.extend(vec![0i16; 4_000]);
        pcm
    }

    #[tokio::test]
    async fn pocketsphinx_hears_menu_words() {
        let ps = Pocketsphinx::new("python3");
        ps.start()
            .await
            .expect("pocketsphinx is installed (scripts/install-test-deps.sh)");
        let vocab = vocabulary([
            "Margherita Pizza",
            "Pepperoni Pizza",
            "Tiramisu",
            "Caesar Salad",
        ]);
        let t = ps
            .transcribe(&speech("I'd like a margherita pizza"), &vocab)
            .await
            .unwrap();
        assert!(t.text.contains("margherita"), "{t:?}");
        assert!(t.confidence.is_some_and(|c| (0.0..=1.0).contains(&c)));
        let t = ps.transcribe(&speech("yes"), &vocab).await.unwrap();
        assert!(t.text.contains("yes"), "{t:?}");
        // Silence: nothing (or nearly nothing) heard, and no error.
        let t = ps.transcribe(&vec![0i16; 16_000], &vocab).await.unwrap();
        assert!(t.text.split_whitespace().count() <= 1, "{t:?}");
    }

    #[tokio::test]
    async fn a_missing_python_is_unavailable_and_empty_vocabularies_refused() {
        let ps = Pocketsphinx::new("/nonexistent/python3");
        assert!(matches!(ps.start().await, Err(VoiceError::Unavailable(_))));
        assert!(matches!(
            ps.transcribe(&[0; 320], &[]).await,
            Err(VoiceError::Format(_))
        ));
    }
}
