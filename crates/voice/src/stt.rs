//! Speech to text: the [`Recognizer`] trait, the [`RecognitionStream`] of an utterance
//! recognized while it is spoken, and the vocabulary a tenant's menu gives the offline
//! recognizer (pocketsphinx, in [`crate::pocketsphinx`]).

use crate::VoiceError;
use async_trait::async_trait;
use std::future::Future;
use std::pin::Pin;
use tokio::sync::{mpsc, oneshot, watch};

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

    /// Starts recognizing an utterance while it is spoken (partial hypotheses as it
    /// goes, the final one soon after it ends), or `None` when the engine only takes
    /// whole utterances. The vocabulary is a future so the caller need not wait for it
    /// (it is read from the store) before audio can be pushed.
    fn stream(&self, vocabulary: Vocabulary) -> Option<RecognitionStream> {
        drop(vocabulary);
        None
    }
}

/// The words of a stream's grammar, when they are known.
pub type Vocabulary = Pin<Box<dyn Future<Output = Vec<String>> + Send>>;

/// One utterance being recognized as it is spoken. Pushing audio never waits (the
/// engine's task takes it from an unbounded queue, which the caller's voice activity
/// detection bounds to one utterance); dropping the stream without [`finish`] abandons
/// it.
///
/// [`finish`]: RecognitionStream::finish
pub struct RecognitionStream {
    audio: mpsc::UnboundedSender<StreamInput>,
    partial: watch::Receiver<String>,
    result: oneshot::Receiver<Result<Transcript, VoiceError>>,
}

/// What the caller sends an engine's stream task.
#[derive(Debug)]
pub enum StreamInput {
    Audio(Vec<i16>),
    /// The utterance ended: decode what is left and answer the final transcript.
    End,
}

/// The engine's side of a [`RecognitionStream`].
pub struct StreamFeed {
    /// The utterance's audio, then [`StreamInput::End`]; closed if the stream was
    /// abandoned.
    pub input: mpsc::UnboundedReceiver<StreamInput>,
    /// The latest partial hypothesis.
    pub partial: watch::Sender<String>,
    /// The final transcript (or why there is none).
    pub result: oneshot::Sender<Result<Transcript, VoiceError>>,
}

impl RecognitionStream {
    /// A stream and the engine's end of it.
    pub fn channel() -> (RecognitionStream, StreamFeed) {
        let (audio, input) = mpsc::unbounded_channel();
        let (ptx, partial) = watch::channel(String::new());
        let (rtx, result) = oneshot::channel();
        (
            RecognitionStream {
                audio,
                partial,
                result,
            },
            StreamFeed {
                input,
                partial: ptx,
                result: rtx,
            },
        )
    }

    /// More of the utterance, 16 kHz PCM16 mono.
    pub fn push(&self, pcm: &[i16]) {
        if !pcm.is_empty() {
            // A closed queue means the engine already failed; `finish` says why.
            let _ = self.audio.send(StreamInput::Audio(pcm.to_vec()));
        }
    }

    /// The partial hypotheses: `changed()` wakes on each new one, and errs once the
    /// stream is done.
    pub fn partials(&self) -> watch::Receiver<String> {
        self.partial.clone()
    }

    /// Ends the utterance. The engine finishes decoding on its own (whether or not the
    /// returned future is awaited at once), so the final transcript is ready as soon
    /// as it can be.
    pub fn finish(self) -> impl Future<Output = Result<Transcript, VoiceError>> + Send + 'static {
        let _ = self.audio.send(StreamInput::End);
        let result = self.result;
        async move {
            result
                .await
                .unwrap_or_else(|_| Err(VoiceError::Engine("recognizer: stream lost".into())))
        }
    }
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
}
