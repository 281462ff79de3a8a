//! The `[llm]` settings: named targets (a provider, a model, where to reach it and which
//! environment variable holds its key), weighted routes over them with an ordered
//! fallback, and the retry, timeout and circuit-breaker knobs. Keys never live in the
//! file; with no targets configured, [`LlmConfig::with_env_defaults`] derives them from
//! the providers' usual environment variables.

use crate::provider::Price;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// The wire format a target speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// OpenAI Chat Completions, also Ollama, vLLM, llama.cpp and other compatible servers.
    OpenAi,
    Anthropic,
    Gemini,
}

impl ProviderKind {
    pub const ALL: [ProviderKind; 3] = [
        ProviderKind::OpenAi,
        ProviderKind::Anthropic,
        ProviderKind::Gemini,
    ];

    /// The name used in config files and in `provider/model` pairs.
    pub fn name(self) -> &'static str {
        match self {
            ProviderKind::OpenAi => "openai",
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::Gemini => "gemini",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The public endpoint, as each official SDK takes it.
    pub fn default_base_url(self) -> &'static str {
        match self {
            ProviderKind::OpenAi => "https://api.openai.com/v1",
            ProviderKind::Anthropic => "https://api.anthropic.com",
            ProviderKind::Gemini => "https://generativelanguage.googleapis.com",
        }
    }

    /// The model used when the environment names none.
    pub fn default_model(self) -> &'static str {
        match self {
            ProviderKind::OpenAi => "gpt-4o-mini",
            ProviderKind::Anthropic => "claude-haiku-4-5",
            ProviderKind::Gemini => "gemini-2.5-flash-lite",
        }
    }

    /// Environment variables: (key candidates, base URL, model).
    fn env_names(self) -> (&'static [&'static str], &'static str, &'static str) {
        match self {
            ProviderKind::OpenAi => (&["OPENAI_API_KEY"], "OPENAI_BASE_URL", "OPENAI_MODEL"),
            ProviderKind::Anthropic => (
                &["ANTHROPIC_API_KEY"],
                "ANTHROPIC_BASE_URL",
                "ANTHROPIC_MODEL",
            ),
            ProviderKind::Gemini => (
                &["GEMINI_API_KEY", "GOOGLE_API_KEY"],
                "GEMINI_BASE_URL",
                "GEMINI_MODEL",
            ),
        }
    }
}

/// `[llm.targets.NAME]`: one model at one endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    pub provider: ProviderKind,
    /// The model name as the provider knows it.
    pub model: String,
    /// Defaults to the provider's public endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// The environment variable holding the key; none for keyless local servers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_env: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<Price>,
}

/// One entry of a route's weighted set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeightedTarget {
    pub target: String,
    /// Relative share of first picks; 0 leaves the target out of the weighted set.
    #[serde(default = "one")]
    pub weight: u32,
}

fn one() -> u32 {
    1
}

/// `[llm.routes.NAME]`: a weighted set of targets, then an ordered fallback. Unset knobs
/// take the `[llm]` values.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    pub targets: Vec<WeightedTarget>,
    /// Tried in order once the weighted set has failed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fallback: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttft_timeout_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stall_timeout_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff_base_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff_max_ms: Option<u64>,
}

/// The `[llm]` table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LlmConfig {
    pub targets: BTreeMap<String, TargetConfig>,
    pub routes: BTreeMap<String, RouteConfig>,
    /// Extra attempts on the same target before its first event (429, 5xx, connect
    /// errors, time-outs), with jittered exponential backoff.
    pub retries: u32,
    /// How long an attempt may take to produce its first event.
    pub ttft_timeout_ms: u64,
    /// How long a started stream may go without an event before it is abandoned.
    pub stall_timeout_ms: u64,
    pub backoff_base_ms: u64,
    /// Cap on one backoff; a `Retry-After` longer than this moves on to the next target.
    pub backoff_max_ms: u64,
    /// Consecutive failures that open a target's circuit.
    pub breaker_failures: u32,
    /// How long an open circuit stays open before one trial request.
    pub breaker_cooldown_ms: u64,
}

impl Default for LlmConfig {
    fn default() -> Self {
        LlmConfig {
            targets: BTreeMap::new(),
            routes: BTreeMap::new(),
            retries: 2,
            ttft_timeout_ms: 10_000,
            stall_timeout_ms: 60_000,
            backoff_base_ms: 200,
            backoff_max_ms: 5_000,
            breaker_failures: 5,
            breaker_cooldown_ms: 30_000,
        }
    }
}

/// Why the `[llm]` settings cannot be used; each message names the setting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("llm.routes.{route}: unknown target `{target}`")]
    UnknownTarget { route: String, target: String },
    #[error("llm.routes.{route}.targets: needs at least one target with a weight above 0")]
    NoWeight { route: String },
    #[error("llm: `{0}` names both a route and a target")]
    NameClash(String),
    #[error("llm.targets.{target}.model: must not be empty")]
    EmptyModel { target: String },
    #[error("llm.targets.{target}.base_url: `{url}` is not an http:// or https:// URL")]
    BadBaseUrl { target: String, url: String },
    #[error("llm.targets.{target}.api_key_env: environment variable {var} is not set")]
    MissingKey { target: String, var: String },
    #[error("llm.{setting}: {reason}")]
    Invalid {
        setting: &'static str,
        reason: &'static str,
    },
    #[error("llm: the HTTP client could not be built: {0}")]
    Client(String),
}

/// A non-empty environment value.
fn var<'a>(env: &'a HashMap<String, String>, name: &str) -> Option<&'a str> {
    env.get(name).map(|v| v.trim()).filter(|v| !v.is_empty())
}

impl LlmConfig {
    /// The defaults plus targets from the environment (see [`Self::with_env_defaults`]).
    pub fn from_env(env: &HashMap<String, String>) -> Self {
        LlmConfig::default().with_env_defaults(env)
    }

    /// When no targets are configured, adds one per provider whose key is set
    /// (`OPENAI_API_KEY`, `ANTHROPIC_API_KEY`, `GEMINI_API_KEY` or `GOOGLE_API_KEY`; a
    /// bare `OPENAI_BASE_URL` gives a keyless OpenAI-compatible target for a local
    /// server), each named after its provider, with `*_BASE_URL` and `*_MODEL`
    /// overrides. Unless a `default` route exists, it sends everything to the first of
    /// openai, anthropic, gemini that exists and falls back to the others in that order.
    pub fn with_env_defaults(mut self, env: &HashMap<String, String>) -> Self {
        if !self.targets.is_empty() {
            return self;
        }
        for kind in ProviderKind::ALL {
            let (keys, base_var, model_var) = kind.env_names();
            let key_var = keys.iter().copied().find(|k| var(env, k).is_some());
            let base_url = var(env, base_var).map(String::from);
            let keyless_ok = kind == ProviderKind::OpenAi && base_url.is_some();
            if key_var.is_none() && !keyless_ok {
                continue;
            }
            self.targets.insert(
                kind.name().to_string(),
                TargetConfig {
                    provider: kind,
                    model: var(env, model_var)
                        .unwrap_or(kind.default_model())
                        .to_string(),
                    base_url,
                    api_key_env: key_var.map(String::from),
                    price: None,
                },
            );
        }
        let mut names = ProviderKind::ALL
            .into_iter()
            .map(ProviderKind::name)
            .filter(|n| self.targets.contains_key(*n))
            .map(String::from);
        if let Some(first) = names.next()
            && !self.routes.contains_key("default")
        {
            self.routes.insert(
                "default".into(),
                RouteConfig {
                    targets: vec![WeightedTarget {
                        target: first,
                        weight: 1,
                    }],
                    fallback: names.collect(),
                    ..RouteConfig::default()
                },
            );
        }
        self
    }

    /// Checks everything that does not need the environment.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.breaker_failures == 0 {
            return Err(ConfigError::Invalid {
                setting: "breaker_failures",
                reason: "must be at least 1",
            });
        }
        if self.ttft_timeout_ms == 0 || self.stall_timeout_ms == 0 {
            return Err(ConfigError::Invalid {
                setting: "ttft_timeout_ms/stall_timeout_ms",
                reason: "must be above 0",
            });
        }
        for (name, t) in &self.targets {
            if t.model.trim().is_empty() {
                return Err(ConfigError::EmptyModel {
                    target: name.clone(),
                });
            }
            if let Some(url) = &t.base_url
                && !(url.starts_with("http://") || url.starts_with("https://"))
            {
                return Err(ConfigError::BadBaseUrl {
                    target: name.clone(),
                    url: url.clone(),
                });
            }
        }
        for (name, r) in &self.routes {
            if self.targets.contains_key(name) {
                return Err(ConfigError::NameClash(name.clone()));
            }
            let named = r.targets.iter().map(|w| &w.target).chain(r.fallback.iter());
            for t in named {
                if !self.targets.contains_key(t) {
                    return Err(ConfigError::UnknownTarget {
                        route: name.clone(),
                        target: t.clone(),
                    });
                }
            }
            if r.targets.iter().all(|w| w.weight == 0) {
                return Err(ConfigError::NoWeight {
                    route: name.clone(),
                });
            }
            if r.ttft_timeout_ms == Some(0) || r.stall_timeout_ms == Some(0) {
                return Err(ConfigError::Invalid {
                    setting: "routes.*.ttft_timeout_ms/stall_timeout_ms",
                    reason: "must be above 0",
                });
            }
        }
        Ok(())
    }
}

/// A resolved key. Its `Debug` never shows the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Reads the key a target names, failing when the variable is unset or empty.
pub(crate) fn resolve_key(
    name: &str,
    t: &TargetConfig,
    env: &HashMap<String, String>,
) -> Result<Option<Secret>, ConfigError> {
    match &t.api_key_env {
        None => Ok(None),
        Some(v) => {
            var(env, v)
                .map(|k| Some(Secret::new(k)))
                .ok_or_else(|| ConfigError::MissingKey {
                    target: name.to_string(),
                    var: v.clone(),
                })
        }
    }
}

/// The endpoint the environment configures for `kind`, for `provider/model` requests:
/// (base URL, key), or None when the environment has nothing for it.
pub(crate) fn env_endpoint(
    kind: ProviderKind,
    env: &HashMap<String, String>,
) -> Option<(String, Option<Secret>)> {
    let (keys, base_var, _) = kind.env_names();
    let key = keys.iter().find_map(|k| var(env, k)).map(Secret::new);
    let base = var(env, base_var).map(String::from);
    if key.is_none() && !(kind == ProviderKind::OpenAi && base.is_some()) {
        return None;
    }
    Some((
        base.unwrap_or_else(|| kind.default_base_url().to_string()),
        key,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[derive(Deserialize)]
    struct File {
        llm: LlmConfig,
    }

    const SAMPLE: &str = r#"
        [llm]
        breaker_failures = 3
        breaker_cooldown_ms = 1000

        [llm.targets.fast]
        provider = "gemini"
        model = "gemini-2.5-flash-lite"
        api_key_env = "GEMINI_API_KEY"
        price = { input = 100000, cached_input = 25000, output = 400000 }

        [llm.targets.b]
        provider = "gemini"
        model = "gemini-2.5-flash"
        api_key_env = "GEMINI_API_KEY"

        [llm.targets.c]
        provider = "anthropic"
        model = "claude-haiku-4-5"
        base_url = "http://127.0.0.1:9/"
        api_key_env = "ANTHROPIC_API_KEY"

        [llm.routes.default]
        targets = [{ target = "fast", weight = 60 }, { target = "b", weight = 25 }, { target = "c", weight = 15 }]
        fallback = ["c"]
        retries = 1
        ttft_timeout_ms = 8000
    "#;

    fn parse(text: &str) -> Result<LlmConfig, String> {
        toml::from_str::<File>(text)
            .map(|f| f.llm)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn the_documented_table_parses_and_validates() {
        let c = parse(SAMPLE).unwrap();
        assert_eq!(c.breaker_failures, 3);
        assert_eq!(c.retries, 2, "unset knobs keep their defaults");
        assert_eq!(c.targets["fast"].provider, ProviderKind::Gemini);
        assert_eq!(c.targets["fast"].price.unwrap().cached_input, 25_000);
        let r = &c.routes["default"];
        assert_eq!(r.targets[0].weight, 60);
        assert_eq!(r.fallback, vec!["c".to_string()]);
        assert_eq!(r.retries, Some(1));
        assert_eq!(r.ttft_timeout_ms, Some(8000));
        c.validate().unwrap();
        // Already has targets: the environment adds nothing.
        let same = c
            .clone()
            .with_env_defaults(&env(&[("OPENAI_API_KEY", "sk")]));
        assert_eq!(same, c);
    }

    #[test]
    fn unknown_fields_and_providers_are_refused_by_name() {
        let e = parse("[llm]\nbreaker_failure = 3\n").unwrap_err();
        assert!(e.contains("breaker_failure"), "{e}");
        let e = parse("[llm.targets.x]\nprovider = \"openia\"\nmodel = \"m\"\n").unwrap_err();
        assert!(e.contains("openia") && e.contains("openai"), "{e}");
        let e = parse("[llm.targets.x]\nprovider = \"openai\"\nmodel = \"m\"\napi_key = \"sk\"\n")
            .unwrap_err();
        assert!(e.contains("api_key"), "{e}");
        let e = parse("[llm.routes.r]\ntargets = [{ target = \"x\", wieght = 1 }]\n").unwrap_err();
        assert!(e.contains("wieght"), "{e}");
    }

    #[test]
    fn validation_names_the_setting() {
        let mut c = parse(SAMPLE).unwrap();
        c.routes.get_mut("default").unwrap().fallback = vec!["nope".into()];
        let e = c.validate().unwrap_err();
        assert_eq!(e.to_string(), "llm.routes.default: unknown target `nope`");

        let mut c = parse(SAMPLE).unwrap();
        for w in &mut c.routes.get_mut("default").unwrap().targets {
            w.weight = 0;
        }
        assert_eq!(
            c.validate().unwrap_err(),
            ConfigError::NoWeight {
                route: "default".into()
            }
        );

        let mut c = parse(SAMPLE).unwrap();
        c.routes.get_mut("default").unwrap().targets.clear();
        assert!(matches!(c.validate(), Err(ConfigError::NoWeight { .. })));

        let mut c = parse(SAMPLE).unwrap();
        c.targets.get_mut("c").unwrap().base_url = Some("127.0.0.1:11434".into());
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("llm.targets.c.base_url")
        );

        let mut c = parse(SAMPLE).unwrap();
        let fast = c.targets["fast"].clone();
        c.targets.insert("default".into(), fast);
        assert_eq!(
            c.validate().unwrap_err(),
            ConfigError::NameClash("default".into())
        );

        let mut c = parse(SAMPLE).unwrap();
        c.breaker_failures = 0;
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("breaker_failures")
        );
    }

    #[test]
    fn a_missing_key_names_its_variable() {
        let c = parse(SAMPLE).unwrap();
        let e = resolve_key("c", &c.targets["c"], &env(&[("ANTHROPIC_API_KEY", " ")])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "llm.targets.c.api_key_env: environment variable ANTHROPIC_API_KEY is not set"
        );
        let k = resolve_key(
            "c",
            &c.targets["c"],
            &env(&[("ANTHROPIC_API_KEY", "sk-ant-secret")]),
        )
        .unwrap()
        .unwrap();
        assert_eq!(k.expose(), "sk-ant-secret");
        assert!(!format!("{k:?}").contains("secret"));
    }

    #[test]
    fn env_defaults_make_targets_and_a_default_route() {
        assert!(LlmConfig::from_env(&env(&[])).targets.is_empty());
        assert!(LlmConfig::from_env(&env(&[])).routes.is_empty());

        let c = LlmConfig::from_env(&env(&[
            ("ANTHROPIC_API_KEY", "a"),
            ("GOOGLE_API_KEY", "g"),
            ("GEMINI_MODEL", "gemini-2.5-flash"),
        ]));
        c.validate().unwrap();
        assert_eq!(c.targets.len(), 2);
        assert_eq!(
            c.targets["gemini"].api_key_env.as_deref(),
            Some("GOOGLE_API_KEY")
        );
        assert_eq!(c.targets["gemini"].model, "gemini-2.5-flash");
        assert_eq!(c.targets["anthropic"].model, "claude-haiku-4-5");
        let r = &c.routes["default"];
        assert_eq!(r.targets[0].target, "anthropic");
        assert_eq!(r.fallback, vec!["gemini".to_string()]);

        let c = LlmConfig::from_env(&env(&[
            ("OPENAI_API_KEY", "sk"),
            ("OPENAI_MODEL", "gpt-4.1"),
            ("GEMINI_API_KEY", "g"),
        ]));
        assert_eq!(c.targets["openai"].model, "gpt-4.1");
        assert_eq!(c.targets["openai"].base_url, None);
        assert_eq!(c.routes["default"].targets[0].target, "openai");
    }

    #[test]
    fn a_bare_openai_base_url_is_a_keyless_local_target() {
        let c = LlmConfig::from_env(&env(&[
            ("OPENAI_BASE_URL", "http://127.0.0.1:11434/v1"),
            ("OPENAI_MODEL", "llama3.2"),
        ]));
        let t = &c.targets["openai"];
        assert_eq!(t.api_key_env, None);
        assert_eq!(t.base_url.as_deref(), Some("http://127.0.0.1:11434/v1"));
        assert_eq!(t.model, "llama3.2");
        assert_eq!(c.routes["default"].targets[0].target, "openai");
        assert_eq!(
            env_endpoint(
                ProviderKind::OpenAi,
                &env(&[("OPENAI_BASE_URL", "http://x/v1")])
            ),
            Some(("http://x/v1".into(), None))
        );
        assert_eq!(
            env_endpoint(
                ProviderKind::Anthropic,
                &env(&[("ANTHROPIC_BASE_URL", "http://x")])
            ),
            None
        );
    }
}
