//! The `stonepot` command line.

use crate::config::{Config, DEFAULT_CONFIG, Overrides};
use clap::{Args, Parser, Subcommand};
use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "stonepot",
    version,
    about = "Real-time conversational agents with a live display"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone)]
struct Common {
    /// A stonepot.toml (environment variables and flags override it).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Overrides DATABASE_URL.
    #[arg(long, value_name = "URL")]
    database_url: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve {
        #[command(flatten)]
        common: Common,
        /// Seed the demo tenants (first run) and print their API keys (development).
        #[arg(long)]
        demo: bool,
        /// Port to listen on (overrides PORT); 0 picks a free port.
        #[arg(long)]
        port: Option<u16>,
        /// Address to listen on (overrides HOST).
        #[arg(long)]
        host: Option<String>,
    },
    /// Apply pending database migrations and exit.
    Migrate {
        #[command(flatten)]
        common: Common,
    },
    /// Write a consistent copy of the database to PATH (safe while the server runs).
    Backup {
        #[command(flatten)]
        common: Common,
        #[arg(long, value_name = "PATH")]
        out: PathBuf,
    },
    /// Replace the database's contents with a backup; with NATS_URL, also put the
    /// JetStream stream back from PATH.jetstream.jsonl (refused while the stream holds
    /// messages, unless --force).
    Restore {
        #[command(flatten)]
        common: Common,
        #[arg(long, value_name = "PATH")]
        from: PathBuf,
        /// Purge a non-empty JetStream stream and replace its messages with the backup's.
        #[arg(long)]
        force: bool,
    },
    /// Close a business day now (as the scheduler would) and print the outcome as JSON.
    /// A day already closed with the same figures is returned unchanged; different
    /// figures are stored as an amendment.
    Close {
        #[command(flatten)]
        common: Common,
        /// The tenant id.
        #[arg(long)]
        tenant: String,
        /// The business date, YYYY-MM-DD.
        #[arg(long)]
        date: String,
    },
    /// Check a running instance end to end; exits non-zero on the first failure.
    Smoke {
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        url: String,
        /// An API key to check authenticated calls with (default: STONEPOT_DEMO_KEY).
        #[arg(long, env = "STONEPOT_DEMO_KEY", hide_env_values = true)]
        key: Option<String>,
    },
    /// Exit 0 when GET /health answers 200 (for container health checks).
    Health {
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        url: String,
    },
    /// Print the full commented stonepot.toml.
    PrintDefaultConfig,
    /// Manage tenants' API keys.
    Tenant {
        #[command(subcommand)]
        command: TenantCommand,
    },
    /// Issue a Stonepot access token (HS256 with JWT_SECRET), e.g. for a kitchen
    /// screen's staff sign-in; printed on stdout.
    Token {
        #[command(flatten)]
        common: Common,
        /// staff, operator or admin.
        #[arg(long)]
        role: String,
        /// The tenant (required below admin).
        #[arg(long)]
        tenant: Option<String>,
        /// Who the token is for (its `sub`).
        #[arg(long)]
        subject: String,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 12 * 3600)]
        ttl: i64,
    },
}

#[derive(Subcommand)]
enum TenantCommand {
    /// API keys: shown once when created, stored hashed.
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
}

#[derive(Subcommand)]
enum KeyCommand {
    /// Create a key and print it (the only time it is shown).
    Create {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        tenant: String,
        /// What the key is for.
        #[arg(long)]
        label: String,
        /// staff or operator.
        #[arg(long, default_value = "operator")]
        role: String,
    },
    /// List the tenant's keys (ids, labels, roles; never the keys) as JSON lines.
    List {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        tenant: String,
    },
    /// Revoke a key by the id `list` shows.
    Revoke {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        id: String,
    },
}

fn load(common: &Common, mut flags: Overrides) -> anyhow::Result<Config> {
    let env: HashMap<String, String> = std::env::vars().collect();
    flags.database_url = common.database_url.clone();
    Ok(Config::load(common.config.as_deref(), &env, &flags)?)
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

fn out(line: &str) {
    let mut o = std::io::stdout().lock();
    let _ = writeln!(o, "{line}");
}

fn tenant_arg(raw: &str) -> anyhow::Result<stonepot_domain::TenantId> {
    stonepot_domain::TenantId::new(raw).map_err(|e| anyhow::anyhow!("--tenant: {e}"))
}

/// Opens and migrates the database a key command works on.
async fn key_store(common: &Common) -> anyhow::Result<stonepot_store::Store> {
    let config = load(common, Overrides::tool())?;
    let store = stonepot_store::Store::connect(&config.database_url).await?;
    store.migrate().await?;
    Ok(store)
}

fn run_key(command: KeyCommand) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        match command {
            KeyCommand::Create {
                common,
                tenant,
                label,
                role,
            } => {
                let tenant = tenant_arg(&tenant)?;
                let role = crate::auth::keys::key_role(&role)?;
                let store = key_store(&common).await?;
                let k = crate::auth::keys::create(&store, &tenant, &label, role).await;
                store.close().await;
                out(&serde_json::to_string(&k?)?);
            }
            KeyCommand::List { common, tenant } => {
                let tenant = tenant_arg(&tenant)?;
                let store = key_store(&common).await?;
                let keys = store.api_keys(&tenant).await;
                store.close().await;
                for k in keys? {
                    out(&serde_json::to_string(&crate::auth::keys::KeyView::from(
                        k,
                    ))?);
                }
            }
            KeyCommand::Revoke { common, tenant, id } => {
                let tenant = tenant_arg(&tenant)?;
                let store = key_store(&common).await?;
                let done = store.revoke_api_key(&tenant, &id).await;
                store.close().await;
                if !done? {
                    anyhow::bail!("tenant '{tenant}' has no active key '{id}'");
                }
                out(&format!("revoked {id}"));
            }
        }
        anyhow::Ok(ExitCode::SUCCESS)
    })
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Tenant {
            command: TenantCommand::Key { command },
        } => run_key(command),
        Command::Token {
            common,
            role,
            tenant,
            subject,
            ttl,
        } => {
            let config = load(&common, Overrides::tool())?;
            if config.generated_secrets.contains(&"JWT_SECRET") {
                anyhow::bail!(
                    "JWT_SECRET is not set: a token signed with a random secret opens nothing"
                );
            }
            let role = crate::auth::Role::parse(&role)
                .filter(|r| *r != crate::auth::Role::Guest)
                .ok_or_else(|| {
                    anyhow::anyhow!("--role: '{role}' is not staff, operator or admin")
                })?;
            let tenant = tenant.as_deref().map(tenant_arg).transpose()?;
            if role != crate::auth::Role::Admin && tenant.is_none() {
                anyhow::bail!("--tenant is required for a {} token", role.as_str());
            }
            if ttl <= 0 {
                anyhow::bail!("--ttl: must be positive");
            }
            let verifier =
                crate::auth::jwt::Verifier::new(config.jwt_secret.expose().as_bytes(), None);
            let identity = crate::auth::Identity {
                subject,
                role,
                tenant,
                issuer: crate::auth::jwt::OWN_ISSUER.into(),
            };
            let token = verifier.issue(&identity, jiff::Timestamp::now().as_second(), ttl)?;
            out(&token);
            Ok(ExitCode::SUCCESS)
        }
        Command::PrintDefaultConfig => {
            let mut o = std::io::stdout().lock();
            o.write_all(DEFAULT_CONFIG.as_bytes())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve {
            common,
            demo,
            port,
            host,
        } => {
            let config = load(
                &common,
                Overrides {
                    port,
                    host,
                    demo,
                    ..Overrides::default()
                },
            )?;
            let telemetry = crate::telemetry::init(
                &config.log_level,
                config
                    .tracing_enabled
                    .then(|| config.tracing_endpoint.as_deref().unwrap_or_default()),
            );
            let served = runtime()?.block_on(crate::serve::serve_forever(config));
            // Flush queued spans whether or not serving ended cleanly.
            telemetry.shutdown();
            served?;
            let _ = std::io::stdout().flush();
            Ok(ExitCode::SUCCESS)
        }
        Command::Migrate { common } => {
            let config = load(&common, Overrides::tool())?;
            runtime()?.block_on(async {
                let store = stonepot_store::Store::connect(&config.database_url).await?;
                store.migrate().await?;
                out(&format!("migrated {}", store.url_redacted()));
                anyhow::Ok(())
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Backup { common, out: path } => {
            let config = load(&common, Overrides::tool())?;
            runtime()?.block_on(async {
                let store = stonepot_store::Store::connect(&config.database_url).await?;
                let rep = store.backup(&path).await?;
                out(&format!(
                    "backed up {} ({}) to {} ({} bytes)",
                    store.url_redacted(),
                    rep.backend,
                    rep.path.display(),
                    rep.bytes
                ));
                // With many instances the conversation logs live in JetStream: snapshot
                // the stream beside the database copy.
                if let Some(url) = &config.nats_url {
                    let mut name = path.as_os_str().to_owned();
                    name.push(".jetstream.jsonl");
                    let snap = crate::display::stream_backup::snapshot_stream(
                        url,
                        config.nats_token.as_ref().map(|t| t.expose()),
                        &config.nats_stream,
                        std::path::Path::new(&name),
                    )
                    .await?;
                    out(&format!(
                        "backed up JetStream stream {} to {} ({} messages, {} bytes)",
                        config.nats_stream,
                        snap.path.display(),
                        snap.messages,
                        snap.bytes
                    ));
                }
                anyhow::Ok(())
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Restore {
            common,
            from,
            force,
        } => {
            let config = load(&common, Overrides::tool())?;
            runtime()?.block_on(async {
                // The stream is checked before the database is touched, so a refusal (a
                // stream that already holds messages) leaves everything as it was.
                let mut snapshot = from.as_os_str().to_owned();
                snapshot.push(".jetstream.jsonl");
                let snapshot = PathBuf::from(snapshot);
                let stream = match &config.nats_url {
                    Some(url) if snapshot.is_file() => Some(
                        crate::display::stream_backup::StreamRestore::prepare(
                            crate::bus::jetstream_settings(&config, url),
                            &snapshot,
                            force,
                        )
                        .await?,
                    ),
                    Some(_) => {
                        out(&format!(
                            "no JetStream snapshot at {}; the stream {} is left as it is",
                            snapshot.display(),
                            config.nats_stream
                        ));
                        None
                    }
                    None => None,
                };
                let store = stonepot_store::Store::connect(&config.database_url).await?;
                store.migrate().await?;
                let rep = store.restore(&from).await?;
                out(&format!(
                    "restored {} from {} ({} bytes{})",
                    store.url_redacted(),
                    rep.path.display(),
                    rep.bytes,
                    if rep.tables.is_empty() {
                        String::new()
                    } else {
                        format!("; tables: {}", rep.tables.join(", "))
                    }
                ));
                if let Some(stream) = stream {
                    let done = stream.apply().await?;
                    out(&format!(
                        "restored JetStream stream {} from {} ({} messages of {} sessions{})",
                        config.nats_stream,
                        snapshot.display(),
                        done.messages,
                        done.sessions,
                        if done.purged > 0 {
                            format!("; {} messages it held were purged first", done.purged)
                        } else {
                            String::new()
                        }
                    ));
                }
                anyhow::Ok(())
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Close {
            common,
            tenant,
            date,
        } => {
            let config = load(&common, Overrides::tool())?;
            let tenant = stonepot_domain::TenantId::new(&tenant)
                .map_err(|e| anyhow::anyhow!("--tenant: {e}"))?;
            // Refuse a malformed date before touching the database.
            stonepot_domain::commerce::close::day::parse_date(&date)
                .map_err(|e| anyhow::anyhow!("--date: {e}"))?;
            let body = runtime()?.block_on(async {
                std::fs::create_dir_all(&config.data_dir)?;
                let store = stonepot_store::Store::connect(&config.database_url).await?;
                store.migrate().await?;
                let objects = crate::objects::Objects::open(
                    config.object_store_url.as_deref(),
                    &config.data_dir,
                    &config.aws_env.0,
                )?;
                let closer = crate::close::Closer::new(
                    store.clone(),
                    objects,
                    config
                        .slack_webhook_url
                        .clone()
                        .map(crate::close::Slack::new),
                );
                let run = closer.run(&tenant, &date, true).await;
                store.close().await;
                anyhow::Ok(run?.body())
            })?;
            out(&body.to_string());
            Ok(ExitCode::SUCCESS)
        }
        Command::Smoke { url, key } => {
            let ok = runtime()?.block_on(crate::smoke::run(&url, key.as_deref()));
            Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Health { url } => {
            let ok = runtime()?.block_on(crate::smoke::healthy(&url));
            Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}

/// Parses arguments and runs; errors print as one line on stderr.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            let chain: Vec<String> = e.chain().map(|c| c.to_string()).collect();
            eprintln!("error: {}", chain.join(": "));
            ExitCode::FAILURE
        }
    }
}
