//! Voice conversations on the chat socket: which speech engines a tenant's sessions use
//! (the mode), whether the local engines are installed (for `/health`), and the voice
//! session that runs on each socket ([`session`]) with its spoken turns ([`turn`]).

pub mod session;
mod turn;

use crate::config::{ConfigError, Secret};
use std::collections::HashMap;
use std::sync::Arc;
use stonepot_domain::TenantId;
use stonepot_voice::openai::{Endpoint, HttpRecognizer, HttpSpeaker};
use stonepot_voice::{Espeak, Pocketsphinx, Recognizer, Speaker};
use tokio::sync::OnceCell;

/// How a tenant's voice sessions are served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Local engines: pocketsphinx with the tenant's menu as its grammar, espeak-ng.
    Offline,
    /// Speech providers over the OpenAI-compatible audio endpoints around the same agent.
    Cascade,
    /// A realtime speech model (OpenAI Realtime, Gemini Live) relayed; served by the
    /// realtime crate when it is wired in, refused with a clear error until then.
    Relay,
}

impl Mode {
    pub fn parse(s: &str) -> Option<Mode> {
        match s.trim() {
            "offline" => Some(Mode::Offline),
            "cascade" => Some(Mode::Cascade),
            "relay" => Some(Mode::Relay),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Offline => "offline",
            Mode::Cascade => "cascade",
            Mode::Relay => "relay",
        }
    }
}

/// Voice settings (environment: `VOICE_MODE`, `VOICE_TENANT_MODES`, `SPEECH_*`).
#[derive(Debug, Clone)]
pub struct VoiceConfig {
    /// The mode of tenants not listed in `tenant_modes`.
    pub mode: Mode,
    /// Per-tenant modes (`VOICE_TENANT_MODES=pizzeria=cascade,bistro=offline`).
    pub tenant_modes: HashMap<String, Mode>,
    /// `SPEECH_STT_URL` / `SPEECH_STT_MODEL`: an OpenAI-compatible transcription server.
    pub stt_url: Option<String>,
    pub stt_model: String,
    /// `SPEECH_TTS_URL` / `SPEECH_TTS_MODEL` / `SPEECH_TTS_VOICE`.
    pub tts_url: Option<String>,
    pub tts_model: String,
    pub tts_voice: String,
    /// `SPEECH_API_KEY`: sent to both speech endpoints.
    pub api_key: Option<Secret>,
    /// `ESPEAK_PROGRAM` (default `espeak-ng`) and `VOICE_PYTHON` (default `python3`,
    /// which must have the `pocketsphinx` package).
    pub espeak: String,
    pub python: String,
}

impl VoiceConfig {
    /// Reads the settings; an unknown mode or a cascade without URLs fails start-up with
    /// the setting named.
    pub fn from_env(
        get: &dyn Fn(&str) -> Option<String>,
        api_key: Option<Secret>,
    ) -> Result<VoiceConfig, ConfigError> {
        let stt_url = get("SPEECH_STT_URL");
        let tts_url = get("SPEECH_TTS_URL");
        for (name, url) in [("SPEECH_STT_URL", &stt_url), ("SPEECH_TTS_URL", &tts_url)] {
            if let Some(u) = url
                && !(u.starts_with("http://") || u.starts_with("https://"))
            {
                return Err(ConfigError::Invalid {
                    name,
                    problem: format!("'{u}' is not an http(s) URL"),
                });
            }
        }
        let providers = stt_url.is_some() && tts_url.is_some();
        let parse = |name: &'static str, v: &str| {
            Mode::parse(v).ok_or_else(|| ConfigError::Invalid {
                name,
                problem: format!("'{v}' is not offline, cascade or relay"),
            })
        };
        let mode = match get("VOICE_MODE") {
            Some(m) => parse("VOICE_MODE", &m)?,
            None if providers => Mode::Cascade,
            None => Mode::Offline,
        };
        let mut tenant_modes = HashMap::new();
        for pair in get("VOICE_TENANT_MODES").unwrap_or_default().split(',') {
            let pair = pair.trim();
            if pair.is_empty() {
                continue;
            }
            let Some((t, m)) = pair.split_once('=') else {
                return Err(ConfigError::Invalid {
                    name: "VOICE_TENANT_MODES",
                    problem: format!("'{pair}' is not tenant=mode"),
                });
            };
            tenant_modes.insert(t.trim().to_string(), parse("VOICE_TENANT_MODES", m)?);
        }
        let wants_cascade =
            mode == Mode::Cascade || tenant_modes.values().any(|m| *m == Mode::Cascade);
        if wants_cascade && !providers {
            return Err(ConfigError::Invalid {
                name: "VOICE_MODE",
                problem: "cascade needs SPEECH_STT_URL and SPEECH_TTS_URL".into(),
            });
        }
        Ok(VoiceConfig {
            mode,
            tenant_modes,
            stt_url,
            stt_model: get("SPEECH_STT_MODEL").unwrap_or_else(|| "whisper-1".into()),
            tts_url,
            tts_model: get("SPEECH_TTS_MODEL").unwrap_or_else(|| "tts-1".into()),
            tts_voice: get("SPEECH_TTS_VOICE").unwrap_or_else(|| "alloy".into()),
            api_key,
            espeak: get("ESPEAK_PROGRAM").unwrap_or_else(|| "espeak-ng".into()),
            python: get("VOICE_PYTHON").unwrap_or_else(|| "python3".into()),
        })
    }
}

impl Default for VoiceConfig {
    fn default() -> Self {
        VoiceConfig {
            mode: Mode::Offline,
            tenant_modes: HashMap::new(),
            stt_url: None,
            stt_model: "whisper-1".into(),
            tts_url: None,
            tts_model: "tts-1".into(),
            tts_voice: "alloy".into(),
            api_key: None,
            espeak: "espeak-ng".into(),
            python: "python3".into(),
        }
    }
}

/// The speech engines of one mode.
#[derive(Clone)]
pub struct Engines {
    pub recognizer: Arc<dyn Recognizer>,
    pub speaker: Arc<dyn Speaker>,
}

/// Voice for the whole server: the configured engines, built once.
pub struct Voice {
    config: VoiceConfig,
    offline: Engines,
    cascade: Option<Engines>,
    espeak: Espeak,
    pocketsphinx: Arc<Pocketsphinx>,
    /// Whether the local engines run here (probed once, on first ask).
    local: OnceCell<(bool, bool)>,
}

impl Voice {
    pub fn new(config: VoiceConfig) -> anyhow::Result<Voice> {
        let espeak = Espeak {
            program: config.espeak.clone(),
            ..Espeak::default()
        };
        let pocketsphinx = Arc::new(Pocketsphinx::new(config.python.clone()));
        let offline = Engines {
            recognizer: pocketsphinx.clone(),
            speaker: Arc::new(espeak.clone()),
        };
        let key = config.api_key.as_ref().map(|k| k.expose().to_string());
        let cascade = match (&config.stt_url, &config.tts_url) {
            (Some(stt), Some(tts)) => Some(Engines {
                recognizer: Arc::new(HttpRecognizer::new(Endpoint {
                    base_url: stt.clone(),
                    api_key: key.clone(),
                    model: config.stt_model.clone(),
                })?),
                speaker: Arc::new(HttpSpeaker::new(
                    Endpoint {
                        base_url: tts.clone(),
                        api_key: key,
                        model: config.tts_model.clone(),
                    },
                    config.tts_voice.clone(),
                )?),
            }),
            _ => None,
        };
        Ok(Voice {
            config,
            offline,
            cascade,
            espeak,
            pocketsphinx,
            local: OnceCell::new(),
        })
    }

    /// The mode of `tenant`'s sessions.
    pub fn mode(&self, tenant: &TenantId) -> Mode {
        self.config
            .tenant_modes
            .get(tenant.as_str())
            .copied()
            .unwrap_or(self.config.mode)
    }

    /// The engines of `mode`, or why there are none.
    pub fn engines(&self, mode: Mode) -> Result<Engines, String> {
        match mode {
            Mode::Offline => Ok(self.offline.clone()),
            Mode::Cascade => self
                .cascade
                .clone()
                .ok_or_else(|| "cascade mode needs SPEECH_STT_URL and SPEECH_TTS_URL".into()),
            Mode::Relay => Err("relay mode is not available on this server yet".into()),
        }
    }

    /// Whether espeak-ng and the pocketsphinx recognizer run here (probed once: the
    /// recognizer's helper is started, which also warms it for the first utterance).
    pub async fn local_engines(&self) -> (bool, bool) {
        *self
            .local
            .get_or_init(|| async {
                let espeak = self.espeak.available().await;
                let ps = self.pocketsphinx.start().await;
                if let Err(e) = &ps {
                    tracing::warn!(error = %e, "offline recognizer unavailable");
                }
                (espeak, ps.is_ok())
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(pairs: &[(&str, &str)]) -> Result<VoiceConfig, ConfigError> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        VoiceConfig::from_env(&|k| m.get(k).cloned(), None)
    }

    #[test]
    fn offline_by_default_cascade_with_urls_and_per_tenant_modes() {
        assert_eq!(cfg(&[]).unwrap().mode, Mode::Offline);
        let urls = [
            ("SPEECH_STT_URL", "http://127.0.0.1:1"),
            ("SPEECH_TTS_URL", "http://127.0.0.1:1"),
        ];
        assert_eq!(cfg(&urls).unwrap().mode, Mode::Cascade);
        let mut with = urls.to_vec();
        with.push(("VOICE_TENANT_MODES", "a=offline, b=relay"));
        let c = cfg(&with).unwrap();
        let v = Voice::new(c).unwrap();
        assert_eq!(v.mode(&TenantId::new("a").unwrap()), Mode::Offline);
        assert_eq!(v.mode(&TenantId::new("b").unwrap()), Mode::Relay);
        assert_eq!(v.mode(&TenantId::new("c").unwrap()), Mode::Cascade);
        assert!(v.engines(Mode::Relay).is_err());
        assert!(v.engines(Mode::Cascade).is_ok());
    }

    #[test]
    fn bad_settings_are_named() {
        let e = cfg(&[("VOICE_MODE", "loud")]).unwrap_err().to_string();
        assert!(e.contains("VOICE_MODE") && e.contains("loud"), "{e}");
        let e = cfg(&[("VOICE_MODE", "cascade")]).unwrap_err().to_string();
        assert!(e.contains("SPEECH_STT_URL"), "{e}");
        let e = cfg(&[("SPEECH_STT_URL", "ftp://x")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("SPEECH_STT_URL"), "{e}");
        let e = cfg(&[("VOICE_TENANT_MODES", "a")]).unwrap_err().to_string();
        assert!(e.contains("tenant=mode"), "{e}");
    }
}
