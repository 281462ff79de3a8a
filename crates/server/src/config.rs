//! Configuration: built-in defaults, then `stonepot.toml`, then the environment, then
//! command-line flags (each later source wins). Names follow DESIGN §5.

use serde::Deserialize;
use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A secret value: usable by the code, invisible in `Debug`, `Display` and logs.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    /// The secret itself; call only where it is used, never to log.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Development generates what is missing; production refuses to start without it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    Development,
    Production,
}

impl Environment {
    pub fn as_str(&self) -> &'static str {
        match self {
            Environment::Development => "development",
            Environment::Production => "production",
        }
    }
    fn parse(s: &str) -> Result<Self, ConfigError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "development" | "dev" | "" => Ok(Environment::Development),
            "production" | "prod" => Ok(Environment::Production),
            other => Err(ConfigError::Invalid {
                name: "ENVIRONMENT",
                problem: format!("'{other}' is not development or production"),
            }),
        }
    }
}

/// A trusted proxy: an address or a CIDR block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    pub fn parse(s: &str) -> Option<IpNet> {
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a.trim().parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            Some(p) => p.trim().parse::<u8>().ok().filter(|p| *p <= max)?,
            None => max,
        };
        Some(IpNet { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// Why configuration was refused; the message names the setting.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{name} is required when ENVIRONMENT=production ({why})")]
    MissingInProduction {
        name: &'static str,
        why: &'static str,
    },
    #[error("{name}: {problem}")]
    Invalid { name: &'static str, problem: String },
    #[error("config file {path}: {problem}")]
    File { path: PathBuf, problem: String },
}

/// Everything the server needs to start.
#[derive(Debug, Clone)]
pub struct Config {
    pub environment: Environment,
    pub host: String,
    pub port: u16,
    pub database_url: String,
    pub data_dir: PathBuf,
    pub log_level: String,
    pub allowed_origins: Vec<String>,
    /// Requests per window from one client IP (`RATE_LIMIT_REQUESTS`).
    pub rate_limit_requests: u32,
    /// Authenticated requests per window with one API key (`RATE_LIMIT_KEY_REQUESTS`).
    pub rate_limit_key_requests: u32,
    /// Authenticated requests per window for one tenant, over all its keys and tokens
    /// (`RATE_LIMIT_TENANT_REQUESTS`).
    pub rate_limit_tenant_requests: u32,
    pub rate_limit_window: Duration,
    pub trusted_proxies: Vec<IpNet>,
    pub body_limit: usize,
    pub shutdown_grace: Duration,
    /// Display updates kept resumable per session (`DISPLAY_RETAIN`).
    pub display_retain: u64,
    /// With NATS: the latest updates of each session with displays on this instance kept
    /// in memory, which displays that fall behind catch up from (`DISPLAY_RECENT`; 0
    /// reads the stream instead).
    pub display_recent: usize,
    /// Idle time before a session leaves memory (`SESSION_IDLE`).
    pub session_idle: Duration,
    /// Lifetime of signed display tokens (`DISPLAY_TOKEN_TTL`).
    pub display_token_ttl: Duration,
    pub signing_key: Secret,
    pub jwt_secret: Secret,
    /// The identity provider whose RS256/ES256 tokens staff and operators sign in with
    /// (`JWKS_URL`, `JWT_ISSUER`, `JWT_AUDIENCE`, `JWT_AUTHORIZED_PARTIES`); `None`
    /// accepts only Stonepot's own HS256 tokens.
    pub identity_provider: Option<IdentityProvider>,
    /// Which secrets were generated for this run (development only).
    pub generated_secrets: Vec<&'static str>,
    pub nats_url: Option<String>,
    pub nats_token: Option<Secret>,
    /// The JetStream stream of conversation logs (`NATS_STREAM`, `CONVERSATIONS`).
    pub nats_stream: String,
    /// Oldest entry the stream keeps (`NATS_MAX_AGE`; zero: only `DISPLAY_RETAIN` per
    /// session limits it).
    pub nats_max_age: Duration,
    /// Bytes the stream may hold (`NATS_MAX_BYTES`; -1: no limit).
    pub nats_max_bytes: i64,
    /// Stream replicas in a JetStream cluster (`NATS_REPLICAS`, 1).
    pub nats_replicas: usize,
    /// Where artifacts go (`OBJECT_STORE_URL`): `file:///path` or `s3://bucket/prefix`;
    /// `None` is `<data_dir>/objects`.
    pub object_store_url: Option<String>,
    /// The `AWS_*` variables an `s3://` object store reads (endpoint, region,
    /// credentials, `AWS_ALLOW_HTTP`); `Debug` shows only the names.
    pub aws_env: LlmEnv,
    pub anthropic_api_key: Option<Secret>,
    pub openai_api_key: Option<Secret>,
    pub gemini_api_key: Option<Secret>,
    pub grok_api_key: Option<Secret>,
    /// Stripe Checkout is offered when this is set (`STRIPE_SECRET_KEY`).
    pub stripe_secret_key: Option<Secret>,
    /// Webhook signing secrets (`STRIPE_WEBHOOK_SECRET`, comma-separated while one is
    /// being rolled); any of them may sign an event.
    pub stripe_webhook_secrets: Vec<Secret>,
    /// Where the Stripe API is (`STRIPE_API_BASE`; tests point it at a fake).
    pub stripe_api_base: String,
    pub slack_webhook_url: Option<Secret>,
    pub theme_api_token: Option<Secret>,
    pub cache_purge_token: Option<Secret>,
    pub tracing_enabled: bool,
    pub tracing_endpoint: Option<String>,
    /// Where captured errors go (`SENTRY_DSN`, a Sentry-compatible DSN).
    pub sentry_dsn: Option<Secret>,
    /// Seed the demo tenants and print their keys.
    pub demo: bool,
    /// A fixed demo API key (`STONEPOT_DEMO_KEY`).
    pub demo_key: Option<Secret>,
    /// Model targets and routes (`[llm]`, plus targets from provider keys in the
    /// environment). No targets means the offline agent answers.
    pub llm: stonepot_llm::LlmConfig,
    /// The environment variables the targets read their keys from.
    pub llm_env: LlmEnv,
    /// The route conversations use (`AGENT_ROUTE`, default `default`).
    pub agent_route: String,
    /// Voice modes and speech engines (`VOICE_MODE`, `SPEECH_*`).
    pub voice: crate::voice::VoiceConfig,
}

/// An identity provider's token settings.
#[derive(Debug, Clone)]
pub struct IdentityProvider {
    pub jwks_url: String,
    /// The exact `iss` of its tokens.
    pub issuer: String,
    /// Accepted `aud` values (any of them).
    pub audiences: Vec<String>,
    /// Accepted `azp` values; empty does not check `azp`.
    pub authorized_parties: Vec<String>,
}

/// The provider variables the router reads for `provider/model` requests.
const LLM_ENV_VARS: &[&str] = &[
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "OPENAI_MODEL",
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_BASE_URL",
    "ANTHROPIC_MODEL",
    "GEMINI_API_KEY",
    "GOOGLE_API_KEY",
    "GEMINI_BASE_URL",
    "GEMINI_MODEL",
];

/// Provider keys by variable name; `Debug` shows only the names.
#[derive(Clone, Default)]
pub struct LlmEnv(pub HashMap<String, String>);

impl std::fmt::Debug for LlmEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<&String> = self.0.keys().collect();
        names.sort();
        write!(f, "LlmEnv({names:?} = ***)")
    }
}

/// The optional `stonepot.toml`; every field may be omitted.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    #[serde(default)]
    pub server: FileServer,
    #[serde(default)]
    pub database: FileDatabase,
    #[serde(default)]
    pub http: FileHttp,
    #[serde(default)]
    pub display: FileDisplay,
    #[serde(default)]
    pub objects: FileObjects,
    #[serde(default)]
    pub secrets: HashMap<String, Secret>,
    #[serde(default)]
    pub llm: stonepot_llm::LlmConfig,
    #[serde(default)]
    pub agent: FileAgent,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileAgent {
    /// The `[llm.routes]` entry conversations use.
    pub route: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileDisplay {
    pub retain: Option<u64>,
    pub recent: Option<usize>,
    pub session_idle: Option<String>,
    pub token_ttl: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileServer {
    pub environment: Option<String>,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub data_dir: Option<PathBuf>,
    pub log_level: Option<String>,
    pub shutdown_grace: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileObjects {
    /// `file:///path` or `s3://bucket/prefix`.
    pub url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileDatabase {
    pub url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileHttp {
    pub allowed_origins: Option<Vec<String>>,
    pub rate_limit_requests: Option<u32>,
    pub rate_limit_key_requests: Option<u32>,
    pub rate_limit_tenant_requests: Option<u32>,
    pub rate_limit_window: Option<String>,
    pub trusted_proxies: Option<Vec<String>>,
    pub body_limit: Option<usize>,
}

/// Flags from the command line (highest precedence).
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub port: Option<u16>,
    pub host: Option<String>,
    pub database_url: Option<String>,
    pub demo: bool,
    /// A maintenance command (migrate, backup, restore): secrets are not needed.
    pub tool: bool,
}

impl Overrides {
    pub fn tool() -> Self {
        Overrides {
            tool: true,
            ..Overrides::default()
        }
    }
}

/// Parses `90`, `90s`, `500ms`, `1m`, `2h` into a duration.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().ok()?;
    match unit.trim() {
        "" | "s" => Some(Duration::from_secs(n)),
        "ms" => Some(Duration::from_millis(n)),
        "m" => n.checked_mul(60).map(Duration::from_secs),
        "h" => n.checked_mul(3600).map(Duration::from_secs),
        _ => None,
    }
}

/// A positive count from the environment (`env`), else the file (`file`), else `default`.
fn positive(
    name: &'static str,
    env: Option<String>,
    file: Option<u32>,
    default: u32,
) -> Result<u32, ConfigError> {
    match env {
        Some(v) => v
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .ok_or(ConfigError::Invalid {
                name,
                problem: format!("'{v}' is not a positive whole number"),
            }),
        None => match file {
            Some(0) => Err(ConfigError::Invalid {
                name,
                problem: "0 is not a positive whole number".into(),
            }),
            Some(n) => Ok(n),
            None => Ok(default),
        },
    }
}

fn split_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(String::from)
        .collect()
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::fill(&mut buf[..]);
    hex::encode(buf)
}

/// Where a relative SQLite database path must not point in production.
fn is_temporary(url: &str) -> bool {
    if url.contains(":memory:") || url.contains("mode=memory") {
        return true;
    }
    match stonepot_store::sqlite_file(url) {
        Some(path) => {
            let abs = if path.is_absolute() {
                path
            } else {
                std::env::current_dir().unwrap_or_default().join(path)
            };
            abs.starts_with(std::env::temp_dir()) || abs.starts_with("/tmp")
        }
        None => false,
    }
}

impl Config {
    /// Reads the file (if any), then `env`, then `flags`. `env` is passed in so tests
    /// need not touch the process environment.
    pub fn load(
        file: Option<&Path>,
        env: &HashMap<String, String>,
        flags: &Overrides,
    ) -> Result<Config, ConfigError> {
        let fc = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File {
                    path: path.to_path_buf(),
                    problem: e.to_string(),
                })?;
                toml::from_str::<FileConfig>(&text).map_err(|e| ConfigError::File {
                    path: path.to_path_buf(),
                    problem: e.message().to_string(),
                })?
            }
            None => FileConfig::default(),
        };
        let get = |name: &str| env.get(name).filter(|v| !v.is_empty()).cloned();
        let llm = fc.llm.with_env_defaults(env);
        llm.validate().map_err(|e| ConfigError::Invalid {
            name: "llm",
            problem: e.to_string(),
        })?;
        let secret = |name: &str| {
            get(name)
                .or_else(|| {
                    fc.secrets
                        .get(&name.to_ascii_lowercase())
                        .map(|s| s.0.clone())
                })
                .map(Secret)
        };

        let environment = Environment::parse(
            &get("ENVIRONMENT")
                .or(fc.server.environment.clone())
                .unwrap_or_default(),
        )?;
        let port = match flags.port {
            Some(p) => p,
            None => match get("PORT").or_else(|| get("SERVER_PORT")) {
                Some(p) => p.parse().map_err(|_| ConfigError::Invalid {
                    name: "PORT",
                    problem: format!("'{p}' is not a port number"),
                })?,
                None => fc.server.port.unwrap_or(8080),
            },
        };
        let host = flags
            .host
            .clone()
            .or_else(|| get("HOST"))
            .or(fc.server.host.clone())
            .unwrap_or_else(|| "127.0.0.1".into());
        let data_dir = get("DATA_DIR")
            .map(PathBuf::from)
            .or(fc.server.data_dir.clone())
            .unwrap_or_else(|| PathBuf::from("./data"));
        let database_url = flags
            .database_url
            .clone()
            .or_else(|| get("DATABASE_URL"))
            .or(fc.database.url.clone())
            .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("stonepot.db").display()));
        let rate_limit_requests = match get("RATE_LIMIT_REQUESTS") {
            Some(v) => v
                .parse()
                .ok()
                .filter(|n| *n > 0)
                .ok_or(ConfigError::Invalid {
                    name: "RATE_LIMIT_REQUESTS",
                    problem: format!("'{v}' is not a positive whole number"),
                })?,
            None => fc.http.rate_limit_requests.unwrap_or(60),
        };
        // One key or tenant usually calls from several addresses (an integration's
        // servers, a kitchen's screens), so their defaults are multiples of the per-IP one.
        let rate_limit_key_requests = positive(
            "RATE_LIMIT_KEY_REQUESTS",
            get("RATE_LIMIT_KEY_REQUESTS"),
            fc.http.rate_limit_key_requests,
            rate_limit_requests.saturating_mul(10),
        )?;
        let rate_limit_tenant_requests = positive(
            "RATE_LIMIT_TENANT_REQUESTS",
            get("RATE_LIMIT_TENANT_REQUESTS"),
            fc.http.rate_limit_tenant_requests,
            rate_limit_requests.saturating_mul(20),
        )?;
        let window_text = get("RATE_LIMIT_WINDOW")
            .or(fc.http.rate_limit_window.clone())
            .unwrap_or_else(|| "1m".into());
        let rate_limit_window = parse_duration(&window_text)
            .filter(|d| !d.is_zero())
            .ok_or(ConfigError::Invalid {
                name: "RATE_LIMIT_WINDOW",
                problem: format!("'{window_text}' is not a duration like 60s, 1m or 1h"),
            })?;
        let proxies = get("TRUSTED_PROXIES")
            .map(|s| split_list(&s))
            .or(fc.http.trusted_proxies.clone())
            .unwrap_or_default();
        let trusted_proxies = proxies
            .iter()
            .map(|p| {
                IpNet::parse(p).ok_or(ConfigError::Invalid {
                    name: "TRUSTED_PROXIES",
                    problem: format!("'{p}' is not an IP address or CIDR block"),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let body_limit = match get("BODY_LIMIT") {
            Some(v) => v.parse().map_err(|_| ConfigError::Invalid {
                name: "BODY_LIMIT",
                problem: format!("'{v}' is not a byte count"),
            })?,
            None => fc.http.body_limit.unwrap_or(1024 * 1024),
        };
        let grace_text = get("SHUTDOWN_GRACE")
            .or(fc.server.shutdown_grace.clone())
            .unwrap_or_else(|| "10s".into());
        let shutdown_grace = parse_duration(&grace_text).ok_or(ConfigError::Invalid {
            name: "SHUTDOWN_GRACE",
            problem: format!("'{grace_text}' is not a duration"),
        })?;

        let duration = |name: &'static str, file: Option<String>, default: &str| {
            let text = get(name).or(file).unwrap_or_else(|| default.to_string());
            parse_duration(&text)
                .filter(|d| !d.is_zero())
                .ok_or(ConfigError::Invalid {
                    name,
                    problem: format!("'{text}' is not a duration like 10s or 5m"),
                })
        };
        let session_idle = duration("SESSION_IDLE", fc.display.session_idle.clone(), "10s")?;
        let display_token_ttl = duration("DISPLAY_TOKEN_TTL", fc.display.token_ttl.clone(), "24h")?;
        let nats_max_age = match get("NATS_MAX_AGE") {
            None => Duration::ZERO,
            Some(v) => parse_duration(&v).ok_or(ConfigError::Invalid {
                name: "NATS_MAX_AGE",
                problem: format!("'{v}' is not a duration like 90m or 24h"),
            })?,
        };
        let nats_max_bytes = match get("NATS_MAX_BYTES") {
            None => -1,
            Some(v) => v.parse::<i64>().ok().filter(|n| *n == -1 || *n > 0).ok_or(
                ConfigError::Invalid {
                    name: "NATS_MAX_BYTES",
                    problem: format!("'{v}' is not a positive byte count (or -1 for no limit)"),
                },
            )?,
        };
        let nats_replicas = match get("NATS_REPLICAS") {
            None => 1,
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=5).contains(n))
                .ok_or(ConfigError::Invalid {
                    name: "NATS_REPLICAS",
                    problem: format!("'{v}' is not a replica count from 1 to 5"),
                })?,
        };
        let nats_stream = get("NATS_STREAM").unwrap_or_else(|| "CONVERSATIONS".into());
        if nats_stream.is_empty()
            || !nats_stream
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(ConfigError::Invalid {
                name: "NATS_STREAM",
                problem: format!("'{nats_stream}' is not a stream name (letters, digits, _ and -)"),
            });
        }
        let display_retain = match get("DISPLAY_RETAIN") {
            Some(v) => v
                .parse()
                .ok()
                .filter(|n| *n >= 1)
                .ok_or(ConfigError::Invalid {
                    name: "DISPLAY_RETAIN",
                    problem: format!("'{v}' is not a positive whole number"),
                })?,
            None => fc.display.retain.unwrap_or(1000),
        };
        let display_recent = match get("DISPLAY_RECENT") {
            Some(v) => v.parse().map_err(|_| ConfigError::Invalid {
                name: "DISPLAY_RECENT",
                problem: format!("'{v}' is not a whole number"),
            })?,
            None => fc.display.recent.unwrap_or(1024),
        };

        let mut generated_secrets = Vec::new();
        let mut required = |name: &'static str, why: &'static str| match secret(name) {
            Some(s) => Ok(s),
            None if environment == Environment::Production && !flags.tool => {
                Err(ConfigError::MissingInProduction { name, why })
            }
            None => {
                generated_secrets.push(name);
                Ok(Secret(random_hex(32)))
            }
        };
        let signing_key = required("SIGNING_KEY", "it signs display links")?;
        let stripe_secret_key = secret("STRIPE_SECRET_KEY");
        let stripe_webhook_secrets: Vec<Secret> = secret("STRIPE_WEBHOOK_SECRET")
            .map(|s| split_list(s.expose()).into_iter().map(Secret).collect())
            .unwrap_or_default();
        if stripe_secret_key.is_some()
            && stripe_webhook_secrets.is_empty()
            && environment == Environment::Production
            && !flags.tool
        {
            return Err(ConfigError::MissingInProduction {
                name: "STRIPE_WEBHOOK_SECRET",
                why: "with STRIPE_SECRET_KEY set, payments are confirmed by signed webhooks",
            });
        }
        let stripe_api_base = get("STRIPE_API_BASE")
            .unwrap_or_else(|| "https://api.stripe.com".into())
            .trim_end_matches('/')
            .to_string();
        if !(stripe_api_base.starts_with("https://") || stripe_api_base.starts_with("http://")) {
            return Err(ConfigError::Invalid {
                name: "STRIPE_API_BASE",
                problem: format!("'{stripe_api_base}' is not an http(s) URL"),
            });
        }
        let jwt_secret = required("JWT_SECRET", "it signs access tokens")?;
        let identity_provider = match get("JWKS_URL") {
            None => None,
            Some(jwks_url) => {
                if !(jwks_url.starts_with("https://") || jwks_url.starts_with("http://")) {
                    return Err(ConfigError::Invalid {
                        name: "JWKS_URL",
                        problem: format!("'{jwks_url}' is not an http(s) URL"),
                    });
                }
                let issuer = get("JWT_ISSUER").ok_or(ConfigError::Invalid {
                    name: "JWT_ISSUER",
                    problem: "required with JWKS_URL (the provider's exact `iss`)".into(),
                })?;
                if issuer == crate::auth::jwt::OWN_ISSUER {
                    return Err(ConfigError::Invalid {
                        name: "JWT_ISSUER",
                        problem: "'stonepot' is the issuer of Stonepot's own tokens".into(),
                    });
                }
                let audiences = get("JWT_AUDIENCE")
                    .map(|s| split_list(&s))
                    .unwrap_or_default();
                if audiences.is_empty() {
                    return Err(ConfigError::Invalid {
                        name: "JWT_AUDIENCE",
                        problem: "required with JWKS_URL (the `aud` its tokens carry)".into(),
                    });
                }
                Some(IdentityProvider {
                    jwks_url,
                    issuer,
                    audiences,
                    authorized_parties: get("JWT_AUTHORIZED_PARTIES")
                        .map(|s| split_list(&s))
                        .unwrap_or_default(),
                })
            }
        };
        let voice = crate::voice::VoiceConfig::from_env(env, secret("SPEECH_API_KEY"))?;
        if environment == Environment::Production && !flags.tool && is_temporary(&database_url) {
            return Err(ConfigError::MissingInProduction {
                name: "DATABASE_URL",
                why: "the database must not be in memory or a temporary directory",
            });
        }

        Ok(Config {
            environment,
            host,
            port,
            database_url,
            data_dir,
            log_level: get("LOG_LEVEL")
                .or(fc.server.log_level.clone())
                .unwrap_or_else(|| "info".into()),
            allowed_origins: get("ALLOWED_ORIGINS")
                .map(|s| split_list(&s))
                .or(fc.http.allowed_origins.clone())
                .unwrap_or_default(),
            rate_limit_requests,
            rate_limit_key_requests,
            rate_limit_tenant_requests,
            rate_limit_window,
            trusted_proxies,
            body_limit,
            shutdown_grace,
            display_retain,
            display_recent,
            session_idle,
            display_token_ttl,
            signing_key,
            jwt_secret,
            identity_provider,
            generated_secrets,
            nats_url: get("NATS_URL"),
            nats_token: secret("NATS_TOKEN"),
            nats_stream,
            nats_max_age,
            nats_max_bytes,
            nats_replicas,
            object_store_url: get("OBJECT_STORE_URL").or(fc.objects.url.clone()),
            aws_env: LlmEnv(
                env.iter()
                    .filter(|(k, v)| k.starts_with("AWS_") && !v.is_empty())
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            ),
            anthropic_api_key: secret("ANTHROPIC_API_KEY"),
            openai_api_key: secret("OPENAI_API_KEY"),
            gemini_api_key: secret("GEMINI_API_KEY").or_else(|| secret("GOOGLE_API_KEY")),
            grok_api_key: secret("GROK_API_KEY"),
            stripe_secret_key,
            stripe_webhook_secrets,
            stripe_api_base,
            slack_webhook_url: secret("SLACK_WEBHOOK_URL"),
            theme_api_token: secret("THEME_API_TOKEN"),
            cache_purge_token: secret("CACHE_PURGE_TOKEN"),
            tracing_enabled: get("TRACING_ENABLED")
                .map(|v| matches!(v.as_str(), "1" | "true" | "yes"))
                .unwrap_or(false),
            tracing_endpoint: get("TRACING_ENDPOINT"),
            sentry_dsn: secret("SENTRY_DSN"),
            demo: flags.demo,
            demo_key: secret("STONEPOT_DEMO_KEY"),
            agent_route: get("AGENT_ROUTE")
                .or(fc.agent.route)
                .unwrap_or_else(|| "default".into()),
            llm_env: LlmEnv(
                llm.targets
                    .values()
                    .filter_map(|t| t.api_key_env.as_deref())
                    .chain(LLM_ENV_VARS.iter().copied())
                    .filter_map(|k| env.get(k).map(|v| (k.to_string(), v.clone())))
                    .collect(),
            ),
            llm,
            voice,
        })
    }
}

/// The full commented `stonepot.toml` printed by `stonepot print-default-config`.
pub const DEFAULT_CONFIG: &str = include_str!("../stonepot.default.toml");

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_are_development_on_sqlite() {
        let c = Config::load(None, &env(&[]), &Overrides::default()).unwrap();
        assert_eq!(c.environment, Environment::Development);
        assert_eq!(c.port, 8080);
        assert_eq!(c.database_url, "sqlite://./data/stonepot.db");
        assert_eq!(c.rate_limit_requests, 60);
        assert_eq!(c.rate_limit_window, Duration::from_secs(60));
        assert_eq!(
            (c.rate_limit_key_requests, c.rate_limit_tenant_requests),
            (600, 1200)
        );
        assert_eq!(c.generated_secrets, vec!["SIGNING_KEY", "JWT_SECRET"]);
    }

    #[test]
    fn key_and_tenant_limits_follow_the_ip_limit_unless_set() {
        let c = Config::load(
            None,
            &env(&[("RATE_LIMIT_REQUESTS", "7")]),
            &Overrides::default(),
        )
        .unwrap();
        assert_eq!(
            (c.rate_limit_key_requests, c.rate_limit_tenant_requests),
            (70, 140)
        );
        let c = Config::load(
            None,
            &env(&[
                ("RATE_LIMIT_KEY_REQUESTS", "3"),
                ("RATE_LIMIT_TENANT_REQUESTS", "5"),
            ]),
            &Overrides::default(),
        )
        .unwrap();
        assert_eq!(
            (c.rate_limit_key_requests, c.rate_limit_tenant_requests),
            (3, 5)
        );
        let e = Config::load(
            None,
            &env(&[("RATE_LIMIT_TENANT_REQUESTS", "0")]),
            &Overrides::default(),
        )
        .unwrap_err();
        assert!(
            e.to_string().starts_with("RATE_LIMIT_TENANT_REQUESTS:"),
            "{e}"
        );
    }

    #[test]
    fn production_names_the_missing_secret() {
        let e = Config::load(
            None,
            &env(&[("ENVIRONMENT", "production")]),
            &Overrides::default(),
        )
        .unwrap_err();
        assert!(e.to_string().starts_with("SIGNING_KEY is required"), "{e}");
        let e = Config::load(
            None,
            &env(&[("ENVIRONMENT", "production"), ("SIGNING_KEY", "x")]),
            &Overrides::default(),
        )
        .unwrap_err();
        assert!(e.to_string().starts_with("JWT_SECRET is required"), "{e}");
        let e = Config::load(
            None,
            &env(&[
                ("ENVIRONMENT", "production"),
                ("SIGNING_KEY", "x"),
                ("JWT_SECRET", "y"),
                ("DATABASE_URL", "sqlite:///tmp/x.db"),
            ]),
            &Overrides::default(),
        )
        .unwrap_err();
        assert!(e.to_string().starts_with("DATABASE_URL is required"), "{e}");
        let ok = Config::load(
            None,
            &env(&[
                ("ENVIRONMENT", "production"),
                ("SIGNING_KEY", "x"),
                ("JWT_SECRET", "y"),
                ("DATABASE_URL", "sqlite:///var/lib/stonepot/s.db"),
            ]),
            &Overrides::default(),
        )
        .unwrap();
        assert!(ok.generated_secrets.is_empty());
    }

    #[test]
    fn flags_beat_env_beat_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stonepot.toml");
        std::fs::write(
            &path,
            "[server]\nport = 7000\nlog_level = \"debug\"\n[http]\nrate_limit_requests = 5\n",
        )
        .unwrap();
        let c = Config::load(Some(&path), &env(&[]), &Overrides::default()).unwrap();
        assert_eq!((c.port, c.rate_limit_requests), (7000, 5));
        assert_eq!(c.log_level, "debug");
        let c = Config::load(
            Some(&path),
            &env(&[("PORT", "7001")]),
            &Overrides::default(),
        )
        .unwrap();
        assert_eq!(c.port, 7001);
        let flags = Overrides {
            port: Some(7002),
            ..Overrides::default()
        };
        let c = Config::load(Some(&path), &env(&[("PORT", "7001")]), &flags).unwrap();
        assert_eq!(c.port, 7002);
    }

    #[test]
    fn the_default_config_file_parses_and_unknown_keys_are_refused() {
        let parsed: FileConfig = toml::from_str(DEFAULT_CONFIG).unwrap();
        assert_eq!(parsed.server.port, Some(8080));
        assert!(toml::from_str::<FileConfig>("[server]\nprot = 1\n").is_err());
    }

    #[test]
    fn secrets_never_show_in_debug() {
        let c = Config::load(
            None,
            &env(&[
                ("SIGNING_KEY", "super-secret-signing"),
                ("OPENAI_API_KEY", "sk-live-x"),
                ("STRIPE_SECRET_KEY", "sk_live_stripe_x"),
                ("STRIPE_WEBHOOK_SECRET", "whsec_one, whsec_two"),
            ]),
            &Overrides::default(),
        )
        .unwrap();
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("super-secret-signing"));
        assert!(!dbg.contains("sk-live-x"));
        assert!(!dbg.contains("sk_live_stripe_x"));
        assert!(!dbg.contains("whsec_"));
        let secrets: Vec<&str> = c
            .stripe_webhook_secrets
            .iter()
            .map(Secret::expose)
            .collect();
        assert_eq!(secrets, ["whsec_one", "whsec_two"]);
        assert_eq!(c.stripe_api_base, "https://api.stripe.com");
        assert!(dbg.contains("Secret(***)"));
    }

    #[test]
    fn object_storage_comes_from_the_env_or_the_file_and_hides_aws_secrets() {
        let c = Config::load(
            None,
            &env(&[
                ("OBJECT_STORE_URL", "s3://bucket/prefix"),
                ("AWS_SECRET_ACCESS_KEY", "aws-very-secret"),
                ("AWS_ENDPOINT_URL", "http://minio:9000"),
            ]),
            &Overrides::default(),
        )
        .unwrap();
        assert_eq!(c.object_store_url.as_deref(), Some("s3://bucket/prefix"));
        assert_eq!(c.aws_env.0.len(), 2);
        assert!(!format!("{c:?}").contains("aws-very-secret"));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stonepot.toml");
        std::fs::write(&path, "[objects]\nurl = \"file:///srv/objects\"\n").unwrap();
        let c = Config::load(Some(&path), &env(&[]), &Overrides::default()).unwrap();
        assert_eq!(c.object_store_url.as_deref(), Some("file:///srv/objects"));
        let c = Config::load(None, &env(&[]), &Overrides::default()).unwrap();
        assert_eq!(c.object_store_url, None);
    }

    #[test]
    fn bad_values_name_their_setting() {
        for (k, v) in [
            ("PORT", "eighty"),
            ("RATE_LIMIT_WINDOW", "soon"),
            ("RATE_LIMIT_REQUESTS", "0"),
            ("TRUSTED_PROXIES", "10.0.0.0/99"),
            ("ENVIRONMENT", "staging"),
            ("STRIPE_API_BASE", "ftp://stripe"),
        ] {
            let e = Config::load(None, &env(&[(k, v)]), &Overrides::default()).unwrap_err();
            assert!(e.to_string().starts_with(k), "{k}: {e}");
        }
    }

    #[test]
    fn cidr_matching() {
        let n = IpNet::parse("10.0.0.0/8").unwrap();
        assert!(n.contains("10.1.2.3".parse().unwrap()));
        assert!(!n.contains("11.0.0.1".parse().unwrap()));
        assert!(n.contains("::ffff:10.0.0.9".parse().unwrap()));
        let one = IpNet::parse("127.0.0.1").unwrap();
        assert!(one.contains("127.0.0.1".parse().unwrap()));
        assert!(!one.contains("127.0.0.2".parse().unwrap()));
        assert!(
            IpNet::parse("fd00::/8")
                .unwrap()
                .contains("fd12::1".parse().unwrap())
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1m"), Some(Duration::from_secs(60)));
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("2h"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_duration("15"), Some(Duration::from_secs(15)));
        assert_eq!(parse_duration("1d"), None);
        assert_eq!(parse_duration(""), None);
    }

    #[test]
    fn nats_settings_default_and_name_a_bad_value() {
        let c = Config::load(None, &env(&[]), &Overrides::default()).unwrap();
        assert_eq!(c.nats_stream, "CONVERSATIONS");
        assert_eq!(
            (c.nats_max_age, c.nats_max_bytes, c.nats_replicas),
            (Duration::ZERO, -1, 1)
        );
        let c = Config::load(
            None,
            &env(&[
                ("NATS_STREAM", "CONV_2"),
                ("NATS_MAX_AGE", "72h"),
                ("NATS_MAX_BYTES", "1000000"),
                ("NATS_REPLICAS", "3"),
            ]),
            &Overrides::default(),
        )
        .unwrap();
        assert_eq!(c.nats_stream, "CONV_2");
        assert_eq!(c.nats_max_age, Duration::from_secs(72 * 3600));
        assert_eq!((c.nats_max_bytes, c.nats_replicas), (1_000_000, 3));
        for (name, value) in [
            ("NATS_STREAM", "a.b"),
            ("NATS_MAX_AGE", "soon"),
            ("NATS_MAX_BYTES", "0"),
            ("NATS_REPLICAS", "6"),
        ] {
            let e = Config::load(None, &env(&[(name, value)]), &Overrides::default()).unwrap_err();
            assert!(e.to_string().contains(name), "{name}={value}: {e}");
        }
    }
}
