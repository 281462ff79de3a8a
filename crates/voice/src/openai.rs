//! Speech providers through the OpenAI-compatible audio endpoints, which OpenAI and
//! local servers (faster-whisper, Kokoro) implement: `POST /v1/audio/transcriptions`
//! (multipart WAV upload, JSON answer) and `POST /v1/audio/speech` (raw PCM16 streamed
//! back, 24 kHz mono for `response_format: "pcm"`).

use crate::VoiceError;
use crate::frame::PIPELINE_RATE;
use crate::resample::Resampler;
use crate::stt::{Recognizer, Transcript};
use crate::tts::{MAX_SPEAK_CHARS, Speaker};
use async_trait::async_trait;
use futures::StreamExt;
use serde::Deserialize;
use std::time::Duration;
use tokio::sync::mpsc;

/// Where and how to reach one audio endpoint.
#[derive(Clone)]
pub struct Endpoint {
    /// Base URL without `/v1` (`https://api.openai.com`, `http://127.0.0.1:8000`).
    pub base_url: String,
    pub api_key: Option<String>,
    pub model: String,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("model", &self.model)
            .finish()
    }
}

impl Endpoint {
    fn url(&self, path: &str) -> String {
        format!("{}/v1/audio/{path}", self.base_url.trim_end_matches('/'))
    }

    fn auth(&self, rb: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.api_key {
            Some(k) => rb.bearer_auth(k),
            None => rb,
        }
    }
}

fn client(timeout: Duration) -> Result<reqwest::Client, VoiceError> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(timeout)
        .build()
        .map_err(|e| VoiceError::Engine(format!("http client: {e}")))
}

/// Error body of an OpenAI-compatible server, shortened for logs.
async fn failure(what: &str, resp: reqwest::Response) -> VoiceError {
    let status = resp.status();
    let body = resp.text().await.unwrap_or_default();
    let body: String = body.chars().take(300).collect();
    VoiceError::Provider(format!("{what}: HTTP {status}: {body}"))
}

/// Speech to text over `/v1/audio/transcriptions`.
pub struct HttpRecognizer {
    endpoint: Endpoint,
    http: reqwest::Client,
}

impl HttpRecognizer {
    pub fn new(endpoint: Endpoint) -> Result<HttpRecognizer, VoiceError> {
        Ok(HttpRecognizer {
            endpoint,
            http: client(Duration::from_secs(30))?,
        })
    }
}

#[derive(Deserialize)]
struct TranscriptionResponse {
    text: String,
}

#[async_trait]
impl Recognizer for HttpRecognizer {
    async fn transcribe(
        &self,
        audio: &[i16],
        vocabulary: &[String],
    ) -> Result<Transcript, VoiceError> {
        let wav = crate::wav::write(audio, PIPELINE_RATE);
        let file = reqwest::multipart::Part::bytes(wav)
            .file_name("utterance.wav")
            .mime_str("audio/wav")
            .map_err(|e| VoiceError::Engine(e.to_string()))?;
        let mut form = reqwest::multipart::Form::new()
            .part("file", file)
            .text("model", self.endpoint.model.clone())
            .text("response_format", "json");
        if !vocabulary.is_empty() {
            // Whisper-style models take a prompt as a spelling hint for domain words.
            let hint: Vec<&str> = vocabulary
                .iter()
                .rev()
                .take(100)
                .map(String::as_str)
                .collect();
            form = form.text("prompt", hint.join(", "));
        }
        let resp = self
            .endpoint
            .auth(self.http.post(self.endpoint.url("transcriptions")))
            .multipart(form)
            .send()
            .await
            .map_err(|e| VoiceError::Provider(format!("transcriptions: {e}")))?;
        if !resp.status().is_success() {
            return Err(failure("transcriptions", resp).await);
        }
        let body: TranscriptionResponse = resp
            .json()
            .await
            .map_err(|e| VoiceError::Provider(format!("transcriptions: unexpected answer: {e}")))?;
        Ok(Transcript {
            text: body.text.trim().to_string(),
            confidence: None,
        })
    }

    fn name(&self) -> &'static str {
        "openai-compatible"
    }
}

/// Text to speech over `/v1/audio/speech`, streamed: PCM arrives as the server makes
/// it and is forwarded (resampled to 16 kHz) without waiting for the end.
pub struct HttpSpeaker {
    endpoint: Endpoint,
    voice: String,
    /// Rate of the PCM the server sends (OpenAI: 24 kHz).
    pub source_rate: u32,
    http: reqwest::Client,
}

impl HttpSpeaker {
    pub fn new(endpoint: Endpoint, voice: impl Into<String>) -> Result<HttpSpeaker, VoiceError> {
        Ok(HttpSpeaker {
            endpoint,
            voice: voice.into(),
            source_rate: 24_000,
            http: client(Duration::from_secs(60))?,
        })
    }
}

#[async_trait]
impl Speaker for HttpSpeaker {
    async fn speak(&self, text: &str, out: &mpsc::Sender<Vec<i16>>) -> Result<(), VoiceError> {
        let input: String = text.chars().take(MAX_SPEAK_CHARS).collect();
        if input.trim().is_empty() {
            return Ok(());
        }
        let body = serde_json::json!({
            "model": self.endpoint.model,
            "input": input,
            "voice": self.voice,
            "response_format": "pcm",
        });
        let resp = self
            .endpoint
            .auth(self.http.post(self.endpoint.url("speech")))
            .json(&body)
            .send()
            .await
            .map_err(|e| VoiceError::Provider(format!("speech: {e}")))?;
        if !resp.status().is_success() {
            return Err(failure("speech", resp).await);
        }
        let mut r = Resampler::new(self.source_rate, PIPELINE_RATE)?;
        let mut odd: Option<u8> = None;
        let mut stream = resp.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| VoiceError::Provider(format!("speech stream: {e}")))?;
            let mut bytes = Vec::with_capacity(chunk.len() + 1);
            bytes.extend(odd.take());
            bytes.extend_from_slice(&chunk);
            if !bytes.len().is_multiple_of(2) {
                odd = bytes.pop();
            }
            let pcm = r.push(&crate::frame::to_samples(&bytes))?;
            if !pcm.is_empty() && out.send(pcm).await.is_err() {
                return Ok(()); // interrupted: dropping the response closes the stream
            }
        }
        let tail = r.finish()?;
        if !tail.is_empty() {
            let _ = out.send(tail).await;
        }
        Ok(())
    }

    fn name(&self) -> &'static str {
        "openai-compatible"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::body::Body;
    use axum::extract::Multipart;
    use axum::http::HeaderMap;
    use axum::routing::post;

    async fn serve(app: Router) -> String {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
        format!("http://{addr}")
    }

    fn endpoint(base: String) -> Endpoint {
        Endpoint {
            base_url: base,
            api_key: Some("sk-test".into()),
            model: "whisper-1".into(),
        }
    }

    #[tokio::test]
    async fn transcription_uploads_a_wav_form_with_the_key() {
        let app = Router::new().route(
            "/v1/audio/transcriptions",
            post(|headers: HeaderMap, mut form: Multipart| async move {
                assert_eq!(headers["authorization"], "Bearer sk-test");
                let mut model = String::new();
                let mut samples = 0;
                while let Some(f) = form.next_field().await.unwrap() {
                    match f.name().unwrap_or_default() {
                        "model" => model = f.text().await.unwrap(),
                        "file" => {
                            assert_eq!(f.file_name(), Some("utterance.wav"));
                            let w = crate::wav::read(&f.bytes().await.unwrap()).unwrap();
                            assert_eq!(w.rate, 16_000);
                            samples = w.samples.len();
                        }
                        _ => {}
                    }
                }
                axum::Json(serde_json::json!({"text": format!(" {model} heard {samples} ")}))
            }),
        );
        let base = serve(app).await;
        let r = HttpRecognizer::new(endpoint(base)).unwrap();
        let t = r.transcribe(&[0; 1600], &["pizza".into()]).await.unwrap();
        assert_eq!(t.text, "whisper-1 heard 1600");
        assert_eq!(t.confidence, None);
    }

    #[tokio::test]
    async fn provider_errors_name_the_status() {
        let app = Router::new().route(
            "/v1/audio/transcriptions",
            post(|| async { (axum::http::StatusCode::TOO_MANY_REQUESTS, "slow down") }),
        );
        let r = HttpRecognizer::new(endpoint(serve(app).await)).unwrap();
        let e = r.transcribe(&[0; 320], &[]).await.unwrap_err().to_string();
        assert!(e.contains("429") && e.contains("slow down"), "{e}");
    }

    #[tokio::test]
    async fn speech_streams_pcm_resampled_to_16khz() {
        let app = Router::new().route(
            "/v1/audio/speech",
            post(|axum::Json(b): axum::Json<serde_json::Value>| async move {
                assert_eq!(b["response_format"], "pcm");
                assert_eq!(b["voice"], "alloy");
                // One second at 24 kHz in odd-sized pieces.
                let pcm = crate::frame::to_bytes(&vec![1000i16; 24_000]);
                let pieces: Vec<Result<Vec<u8>, std::io::Error>> =
                    pcm.chunks(1001).map(|c| Ok(c.to_vec())).collect();
                Body::from_stream(futures::stream::iter(pieces))
            }),
        );
        let s = HttpSpeaker::new(endpoint(serve(app).await), "alloy").unwrap();
        let (tx, mut rx) = mpsc::channel(1024);
        s.speak("Hello there.", &tx).await.unwrap();
        drop(tx);
        let mut n = 0;
        let mut pieces = 0;
        while let Some(p) = rx.recv().await {
            n += p.len();
            pieces += 1;
        }
        assert!(pieces > 3);
        assert!((16_000..16_000 + 1_000).contains(&n), "{n}");
    }
}
