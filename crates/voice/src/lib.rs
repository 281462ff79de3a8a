//! The audio side of voice conversations, with no server in it: PCM16 frames and their
//! validation, resampling, WAV, voice activity detection with hysteresis, and the speech
//! engines — espeak-ng and pocketsphinx offline, OpenAI-compatible audio endpoints for
//! providers. The server's voice sessions put these together.

pub mod frame;
pub mod openai;
pub mod pocketsphinx;
pub mod resample;
pub mod stt;
pub mod tts;
pub mod vad;
pub mod wav;

pub use frame::{PIPELINE_RATE, SampleRate};
pub use pocketsphinx::Pocketsphinx;
pub use stt::{RecognitionStream, Recognizer, Transcript};
pub use tts::{Espeak, Sentences, Speaker};
pub use vad::{Segmenter, VadConfig, VadEvent};

/// Why audio was refused or an engine failed.
#[derive(Debug, thiserror::Error)]
pub enum VoiceError {
    /// The audio or its announced format is wrong (the client's fault).
    #[error("{0}")]
    Format(String),
    /// The engine is not installed or would not start.
    #[error("speech engine unavailable: {0}")]
    Unavailable(String),
    /// A local engine failed.
    #[error("speech engine: {0}")]
    Engine(String),
    /// A speech provider refused or failed.
    #[error("speech provider: {0}")]
    Provider(String),
    #[error("speech engine i/o: {0}")]
    Io(#[from] std::io::Error),
}
