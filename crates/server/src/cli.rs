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
    /// Replace the database's contents with a backup.
    Restore {
        #[command(flatten)]
        common: Common,
        #[arg(long, value_name = "PATH")]
        from: PathBuf,
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

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
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
            crate::telemetry::init(&config.log_level);
            runtime()?.block_on(crate::serve::serve_forever(config))?;
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
                    let snap = crate::display::jetstream::snapshot_stream(
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
        Command::Restore { common, from } => {
            let config = load(&common, Overrides::tool())?;
            runtime()?.block_on(async {
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
