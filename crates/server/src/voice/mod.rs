//! Voice conversations on the chat socket: which speech engines a tenant's sessions use
//! (the mode), whether the local engines are installed (for `/health`), and the voice
//! session that runs on each socket ([`session`]) with its spoken turns ([`turn`]) — or,
//! in relay mode, its realtime model session ([`relay`], recording its turns and running
//! its tool calls through [`relay_turns`]).

mod relay;
mod relay_turns;
pub mod session;
mod turn;

use crate::config::{ConfigError, Secret};
use std::collections::HashMap;
use std::sync::Arc;
use stonepot_domain::TenantId;
use stonepot_realtime::ProviderConfig;
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
    /// A realtime speech model (OpenAI Realtime, Gemini Live) relayed through
    /// `stonepot-realtime`; its function calls run the text agent's tools.
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

/// Voice settings (environment: `VOICE_MODE`, `VOICE_TENANT_MODES`, `SPEECH_*`,
/// `REALTIME_*` and the realtime provider's own names).
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
    /// `VOICE_STT_STREAMS` (default 2, at most 16): how many pocketsphinx decoders may
    /// run, each decoding one guest's utterance as it is spoken (~90 MB each, started
    /// when first needed). A guest speaking while all are busy is decoded when one
    /// frees, final transcript only.
    pub stt_streams: usize,
    /// The realtime model relay-mode sessions talk to; set exactly when some tenant uses
    /// relay mode. `REALTIME_PROVIDER` (`openai` or `gemini`; by default whichever has a
    /// key, OpenAI first), then the provider's settings (see
    /// [`stonepot_realtime::ProviderConfig::from_env`]).
    pub relay: Option<ProviderConfig>,
    /// `VOICE_BARGE_IN_MIN_MS` (default 200, like the offline detector's 208 ms): how
    /// long the guest must speak over a relay-mode reply before it is interrupted.
    pub barge_in_min_ms: u64,
}

impl VoiceConfig {
    /// Reads the settings; an unknown mode, a cascade without URLs or a relay without a
    /// key fails start-up with the setting named.
    pub fn from_env(
        env: &HashMap<String, String>,
        api_key: Option<Secret>,
    ) -> Result<VoiceConfig, ConfigError> {
        let get = |name: &str| env.get(name).filter(|v| !v.trim().is_empty()).cloned();
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
        let stt_streams = match get("VOICE_STT_STREAMS") {
            None => DEFAULT_STT_STREAMS,
            Some(v) => match v.trim().parse::<usize>() {
                Ok(n) if (1..=stonepot_voice::pocketsphinx::MAX_STREAMS).contains(&n) => n,
                _ => {
                    return Err(ConfigError::Invalid {
                        name: "VOICE_STT_STREAMS",
                        problem: format!(
                            "'{v}' is not a number of decoders from 1 to {}",
                            stonepot_voice::pocketsphinx::MAX_STREAMS
                        ),
                    });
                }
            },
        };
        let wants_cascade =
            mode == Mode::Cascade || tenant_modes.values().any(|m| *m == Mode::Cascade);
        if wants_cascade && !providers {
            return Err(ConfigError::Invalid {
                name: "VOICE_MODE",
                problem: "cascade needs SPEECH_STT_URL and SPEECH_TTS_URL".into(),
            });
        }
        let wants_relay = mode == Mode::Relay || tenant_modes.values().any(|m| *m == Mode::Relay);
        let relay = if wants_relay {
            Some(relay_provider(env, &get)?)
        } else {
            None
        };
        let barge_in_min_ms = match get("VOICE_BARGE_IN_MIN_MS") {
            None => 200,
            Some(v) => v
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|ms| *ms <= 2_000)
                .ok_or_else(|| ConfigError::Invalid {
                    name: "VOICE_BARGE_IN_MIN_MS",
                    problem: format!("'{v}' is not a number of milliseconds from 0 to 2000"),
                })?,
        };
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
            stt_streams,
            relay,
            barge_in_min_ms,
        })
    }
}

/// Decoders by default: two guests can speak at once with partial transcripts.
const DEFAULT_STT_STREAMS: usize = 2;

/// The realtime provider relay mode uses. Without a key it would fail on every guest's
/// `start`, so start-up fails instead, naming the key.
fn relay_provider(
    env: &HashMap<String, String>,
    get: &dyn Fn(&str) -> Option<String>,
) -> Result<ProviderConfig, ConfigError> {
    let gemini_key = get("GEMINI_API_KEY").is_some() || get("GOOGLE_API_KEY").is_some();
    let name = match get("REALTIME_PROVIDER") {
        Some(p) => p.trim().to_ascii_lowercase(),
        None if get("OPENAI_API_KEY").is_none() && gemini_key => "gemini".into(),
        None => "openai".into(),
    };
    let provider = ProviderConfig::from_env(&name, env).map_err(|e| ConfigError::Invalid {
        name: "REALTIME_PROVIDER",
        problem: match e {
            stonepot_realtime::RelayError::Config(m) => m,
            other => other.to_string(),
        },
    })?;
    if provider.api_key().is_none() {
        return Err(ConfigError::Invalid {
            name: match provider {
                ProviderConfig::OpenAi { .. } => "OPENAI_API_KEY",
                ProviderConfig::Gemini { .. } => "GEMINI_API_KEY",
            },
            problem: format!(
                "relay voice mode with the {} realtime model needs its API key",
                provider.name()
            ),
        });
    }
    provider.validate().map_err(|e| ConfigError::Invalid {
        name: match provider {
            ProviderConfig::OpenAi { .. } => "OPENAI_REALTIME_URL",
            ProviderConfig::Gemini { .. } => "GEMINI_LIVE_URL",
        },
        problem: match e {
            stonepot_realtime::RelayError::Config(m) => m,
            other => other.to_string(),
        },
    })?;
    Ok(provider)
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
            stt_streams: DEFAULT_STT_STREAMS,
            relay: None,
            barge_in_min_ms: 200,
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
        let pocketsphinx = Arc::new(Pocketsphinx::new(config.python.clone(), config.stt_streams));
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
            // Served by the realtime model itself (see [`Voice::relay`]), not by engines.
            Mode::Relay => Err("relay mode talks to a realtime model, not speech engines".into()),
        }
    }

    /// The realtime model relay-mode sessions use (None when no tenant is in relay mode).
    pub fn relay(&self) -> Option<&ProviderConfig> {
        self.config.relay.as_ref()
    }

    /// How long the guest must speak over a relay-mode reply to interrupt it.
    pub fn barge_in_min(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.config.barge_in_min_ms)
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
        VoiceConfig::from_env(&m, None)
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
        with.push(("OPENAI_API_KEY", "sk-test"));
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
        let e = cfg(&[("VOICE_BARGE_IN_MIN_MS", "soon")])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("VOICE_BARGE_IN_MIN_MS") && e.contains("soon"),
            "{e}"
        );
        assert_eq!(cfg(&[]).unwrap().barge_in_min_ms, 200);
        assert_eq!(
            cfg(&[("VOICE_BARGE_IN_MIN_MS", "0")])
                .unwrap()
                .barge_in_min_ms,
            0
        );
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
        for bad in ["0", "17", "two"] {
            let e = cfg(&[("VOICE_STT_STREAMS", bad)]).unwrap_err().to_string();
            assert!(e.contains("VOICE_STT_STREAMS") && e.contains(bad), "{e}");
        }
        assert_eq!(cfg(&[]).unwrap().stt_streams, 2);
        assert_eq!(cfg(&[("VOICE_STT_STREAMS", "3")]).unwrap().stt_streams, 3);
    }

    #[test]
    fn relay_needs_the_providers_key_and_a_websocket_url() {
        let e = cfg(&[("VOICE_MODE", "relay")]).unwrap_err().to_string();
        assert!(e.contains("OPENAI_API_KEY"), "{e}");
        let e = cfg(&[("VOICE_MODE", "relay"), ("REALTIME_PROVIDER", "gemini")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("GEMINI_API_KEY"), "{e}");
        let e = cfg(&[("VOICE_MODE", "relay"), ("REALTIME_PROVIDER", "azure")])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("REALTIME_PROVIDER") && e.contains("azure"),
            "{e}"
        );
        let e = cfg(&[
            ("VOICE_MODE", "relay"),
            ("OPENAI_API_KEY", "sk-x"),
            ("REALTIME_URL", "http://127.0.0.1:1"),
        ])
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("OPENAI_REALTIME_URL") && e.contains("ws://"),
            "{e}"
        );
        // Only a Gemini key: Gemini, and REALTIME_URL/REALTIME_MODEL point it elsewhere.
        let c = cfg(&[
            ("VOICE_TENANT_MODES", "b=relay"),
            ("GOOGLE_API_KEY", "g-x"),
            ("REALTIME_URL", "ws://127.0.0.1:9/live"),
            ("REALTIME_MODEL", "live-test"),
        ])
        .unwrap();
        let p = c.relay.unwrap();
        assert_eq!(
            (p.name(), p.url(), p.model()),
            ("gemini", "ws://127.0.0.1:9/live", "live-test")
        );
        assert_eq!(p.api_key().map(|k| k.expose()), Some("g-x"));
        // No tenant in relay mode: no provider needed.
        assert!(cfg(&[]).unwrap().relay.is_none());
    }
}
