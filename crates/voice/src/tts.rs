//! Text to speech: the [`Speaker`] trait, espeak-ng as the offline engine, and the
//! sentence splitter that lets speech start before the whole reply is written.

use crate::VoiceError;
use crate::frame::PIPELINE_RATE;
use crate::resample::Resampler;
use async_trait::async_trait;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

/// Something that turns text into 16 kHz PCM16, streamed in pieces as it is produced.
#[async_trait]
pub trait Speaker: Send + Sync {
    /// Speaks `text`, sending audio to `out` as it is made. Returns when all of it has
    /// been sent, or early (without error) when `out` is closed — the listener is gone
    /// or was interrupted.
    async fn speak(&self, text: &str, out: &mpsc::Sender<Vec<i16>>) -> Result<(), VoiceError>;

    /// A short name for logs and `/health` (`espeak-ng`, `openai-compatible`).
    fn name(&self) -> &'static str;
}

/// The longest text given to an engine at once.
pub const MAX_SPEAK_CHARS: usize = 2_000;

/// espeak-ng, run once per sentence: `espeak-ng --stdout` streams a WAV as it
/// synthesizes, which is read, resampled to 16 kHz and forwarded in ~20 ms pieces.
#[derive(Debug, Clone)]
pub struct Espeak {
    pub program: String,
    /// espeak-ng voice (`en-us`).
    pub voice: String,
    /// Words per minute.
    pub speed: u32,
}

impl Default for Espeak {
    fn default() -> Self {
        Espeak {
            program: "espeak-ng".into(),
            voice: "en-us".into(),
            speed: 175,
        }
    }
}

impl Espeak {
    /// Whether the program runs here.
    pub async fn available(&self) -> bool {
        tokio::process::Command::new(&self.program)
            .arg("--version")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .await
            .is_ok_and(|s| s.success())
    }
}

#[async_trait]
impl Speaker for Espeak {
    async fn speak(&self, text: &str, out: &mpsc::Sender<Vec<i16>>) -> Result<(), VoiceError> {
        let text: String = text.chars().take(MAX_SPEAK_CHARS).collect();
        if text.trim().is_empty() {
            return Ok(());
        }
        // Text goes in on stdin, never as an argument, so it can't be read as an option.
        let mut child = tokio::process::Command::new(&self.program)
            .args(["--stdout", "-v", &self.voice, "-s", &self.speed.to_string()])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| VoiceError::Unavailable(format!("{}: {e}", self.program)))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(text.as_bytes()).await?;
            stdin.shutdown().await?;
        }
        let mut stdout = child
            .stdout
            .take()
            .ok_or_else(|| VoiceError::Engine("espeak-ng: no stdout".into()))?;
        let mut buf = Vec::with_capacity(8192);
        let mut header = None;
        let mut resampler: Option<Resampler> = None;
        let mut chunk = [0u8; 4096];
        loop {
            let n = stdout.read(&mut chunk).await?;
            if n > 0 {
                buf.extend_from_slice(&chunk[..n]);
            }
            if header.is_none() {
                match crate::wav::parse_header(&buf)? {
                    Some(h) => {
                        buf.drain(..h.data_offset.min(buf.len()));
                        resampler = Some(Resampler::new(h.rate, PIPELINE_RATE)?);
                        header = Some(h);
                    }
                    None if n == 0 => {
                        return Err(VoiceError::Engine("espeak-ng wrote no audio".into()));
                    }
                    None => continue,
                }
            }
            let Some(r) = resampler.as_mut() else {
                continue;
            };
            let whole = buf.len() / 2 * 2;
            let samples = crate::frame::to_samples(&buf[..whole]);
            buf.drain(..whole);
            let mut pcm = r.push(&samples)?;
            if n == 0 {
                pcm.extend(r.finish()?);
            }
            if !pcm.is_empty() && out.send(pcm).await.is_err() {
                return Ok(()); // interrupted: dropping the child kills it
            }
            if n == 0 {
                break;
            }
        }
        let status = child.wait().await?;
        if !status.success() {
            return Err(VoiceError::Engine(format!(
                "espeak-ng exited with {status}"
            )));
        }
        Ok(())
    }

    fn name(&self) -> &'static str {
        "espeak-ng"
    }
}

/// Cuts a reply streamed as text deltas into sentences to speak one by one, so the first
/// sentence is being spoken while the model still writes the rest.
#[derive(Debug, Default)]
pub struct Sentences {
    buf: String,
}

/// Below this many characters a sentence end is ignored ("Hi." is merged with what
/// follows), so the engine is not started for fragments.
const MIN_SENTENCE: usize = 12;

impl Sentences {
    /// Adds a delta; returns the sentences it completed.
    pub fn push(&mut self, delta: &str) -> Vec<String> {
        self.buf.push_str(delta);
        let mut out = Vec::new();
        while let Some(end) = self.boundary() {
            let s: String = self.buf.drain(..end).collect();
            let s = s.trim();
            if !s.is_empty() {
                out.push(s.to_string());
            }
        }
        out
    }

    /// What is left when the reply is complete.
    pub fn finish(&mut self) -> Option<String> {
        let s = std::mem::take(&mut self.buf);
        let s = s.trim();
        (!s.is_empty()).then(|| s.to_string())
    }

    /// The byte index just past the first sentence end (punctuation followed by
    /// whitespace, or a line break) that leaves a long enough sentence.
    fn boundary(&self) -> Option<usize> {
        let mut prev: Option<char> = None;
        for (i, c) in self.buf.char_indices() {
            if i >= MIN_SENTENCE || c == '\n' {
                let at_end = c == '\n'
                    || (c.is_whitespace() && matches!(prev, Some('.' | '!' | '?' | ';' | ':')));
                if at_end && self.buf[..i].trim().len() >= MIN_SENTENCE.min(i) {
                    return Some(i + c.len_utf8());
                }
            }
            prev = Some(c);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_come_out_as_soon_as_they_end() {
        let mut s = Sentences::default();
        assert!(s.push("Sure, one margherita").is_empty());
        assert_eq!(
            s.push(" pizza. Anything"),
            vec!["Sure, one margherita pizza."]
        );
        assert!(s.push(" else?").is_empty()); // no whitespace after '?' yet
        assert_eq!(s.push(" Your total is $12.50 now."), vec!["Anything else?"]);
        assert_eq!(s.finish().as_deref(), Some("Your total is $12.50 now."));
        assert_eq!(s.finish(), None);
    }

    #[test]
    fn short_fragments_merge_and_decimals_do_not_split() {
        let mut s = Sentences::default();
        assert_eq!(
            s.push("Hi. That is 3.5 dollars. "),
            vec!["Hi. That is 3.5 dollars."]
        );
        assert_eq!(s.push("Line one\nLine two\n"), vec!["Line one", "Line two"]);
    }

    #[tokio::test]
    async fn espeak_streams_16khz_pcm_in_pieces() {
        let e = Espeak::default();
        assert!(
            e.available().await,
            "espeak-ng is installed (scripts/install-test-deps.sh)"
        );
        let (tx, mut rx) = mpsc::channel(1024);
        e.speak("One margherita pizza, coming right up.", &tx)
            .await
            .unwrap();
        drop(tx);
        let mut pieces = 0;
        let mut total = 0;
        while let Some(p) = rx.recv().await {
            pieces += 1;
            total += p.len();
        }
        assert!(pieces > 5, "{pieces} pieces");
        // About two seconds of speech at 16 kHz.
        assert!((16_000..16_000 * 5).contains(&total), "{total} samples");
    }

    #[tokio::test]
    async fn a_closed_listener_stops_synthesis_without_error() {
        let (tx, rx) = mpsc::channel(1);
        drop(rx);
        Espeak::default()
            .speak("This will not be heard at all.", &tx)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_missing_program_is_unavailable() {
        let e = Espeak {
            program: "/nonexistent/espeak".into(),
            ..Espeak::default()
        };
        assert!(!e.available().await);
        let (tx, _rx) = mpsc::channel(1);
        assert!(matches!(
            e.speak("hello there", &tx).await,
            Err(VoiceError::Unavailable(_))
        ));
    }
}
