//! Start-up (connect, migrate, seed), serving with a bounded graceful shutdown.

use crate::app::App;
use crate::config::{Config, Environment};
use anyhow::Context;
use axum::serve::ListenerExt;
use std::net::SocketAddr;
use stonepot_domain::{TenantId, demo};
use stonepot_store::Store;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Kernel send buffer per accepted connection (Linux doubles it).
const SEND_BUFFER: usize = 128 * 1024;

/// The demo API keys in effect after seeding (tenant id, key).
pub type DemoKeys = Vec<(String, String)>;

/// Seeds the demo tenants on first run and sets their API keys: `STONEPOT_DEMO_KEY` when
/// given, otherwise (development only) a fresh key per start, replacing the last one.
pub async fn seed_demo(store: &Store, config: &Config) -> anyhow::Result<DemoKeys> {
    let restaurant = demo::restaurant_tenant();
    if store.tenant(&restaurant.id).await?.is_none() {
        store.upsert_tenant(&restaurant).await?;
        store
            .replace_menu(&restaurant.id, &demo::restaurant_menu())
            .await?;
        // New York City sales tax, added to menu prices.
        store
            .set_pricing_policy(
                &restaurant.id,
                &stonepot_domain::commerce::PricingPolicy {
                    tax_rate_bps: 888,
                    ..Default::default()
                },
            )
            .await?;
        tracing::info!(tenant = %restaurant.id, "seeded demo tenant");
    }
    let finance = demo::finance_tenant();
    if store.tenant(&finance.id).await?.is_none() {
        store.upsert_tenant(&finance).await?;
        store
            .replace_book(&finance.id, &demo::finance_book())
            .await?;
        tracing::info!(tenant = %finance.id, "seeded demo tenant");
    }
    let mut keys = Vec::new();
    for id in [&restaurant.id, &finance.id] {
        let key = match (&config.demo_key, config.environment) {
            (Some(k), _) => k.expose().to_string(),
            (None, Environment::Development) => crate::auth::keys::new_api_key(),
            (None, Environment::Production) => continue,
        };
        store.add_api_key(id, &key, "demo").await?;
        store.revoke_api_keys(id, "demo", Some(&key)).await?;
        keys.push((id.to_string(), key));
    }
    Ok(keys)
}

/// Connects to the database, applies migrations and seeds the demo when asked.
pub async fn prepare(config: Config) -> anyhow::Result<(App, DemoKeys)> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data directory {}", config.data_dir.display()))?;
    let store = Store::connect(&config.database_url)
        .await
        .context("connecting to the database")?;
    store.migrate().await.context("applying migrations")?;
    for name in &config.generated_secrets {
        tracing::warn!(
            setting = name,
            "generated an ephemeral {name} for development; set it to keep signed links valid across restarts"
        );
    }
    let keys = if config.demo {
        seed_demo(&store, &config).await?
    } else {
        Vec::new()
    };
    tracing::info!(
        database = store.url_redacted(),
        backend = store.backend().as_str(),
        environment = config.environment.as_str(),
        "store ready"
    );
    let bus = crate::bus::Bus::connect(
        &config,
        store.clone(),
        crate::display::HubConfig::default().channel_capacity,
    )
    .await?;
    Ok((App::with_bus(config, store, bus)?, keys))
}

/// A server running on a background task.
pub struct Running {
    pub addr: SocketAddr,
    pub app: App,
    pub shutdown: CancellationToken,
    pub task: JoinHandle<anyhow::Result<()>>,
}

impl Running {
    /// Signals shutdown and waits for the server to stop.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.task.await?
    }
}

/// Binds `host:port` (port 0 picks a free one) and serves until `shutdown` fires.
pub async fn start(app: App) -> anyhow::Result<Running> {
    let listener = TcpListener::bind((app.config.host.as_str(), app.config.port))
        .await
        .with_context(|| format!("binding {}:{}", app.config.host, app.config.port))?;
    let addr = listener.local_addr()?;
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(run(app.clone(), listener, shutdown.clone()));
    tracing::info!(%addr, "listening");
    Ok(Running {
        addr,
        app,
        shutdown,
        task,
    })
}

async fn run(app: App, listener: TcpListener, shutdown: CancellationToken) -> anyhow::Result<()> {
    let limiter = app.limiter.clone();
    let window = app.config.rate_limit_window;
    let prune_stop = shutdown.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(window.max(std::time::Duration::from_secs(1)));
        loop {
            tokio::select! {
                _ = tick.tick() => limiter.prune(),
                _ = prune_stop.cancelled() => break,
            }
        }
    });
    app.hub.spawn_sweeper(shutdown.clone());
    crate::close::schedule::spawn(app.closer.clone(), app.store.clone(), shutdown.clone());
    let (store, stop) = (app.store.clone(), shutdown.clone());
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    if let Err(e) = store.checkpoint().await {
                        tracing::warn!(error = %e, "WAL checkpoint failed");
                    }
                }
                _ = stop.cancelled() => break,
            }
        }
    });
    let grace = app.config.shutdown_grace;
    let service = app
        .router()
        .into_make_service_with_connect_info::<SocketAddr>();
    // A bounded kernel send buffer per connection: a display that stops reading fills it
    // quickly, its send times out and it is closed, instead of the kernel quietly
    // buffering megabytes for it. Also keeps memory per idle socket small.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
        let _ = socket2::SockRef::from(&*tcp).set_send_buffer_size(SEND_BUFFER);
    });
    let serve =
        axum::serve(listener, service).with_graceful_shutdown(shutdown.clone().cancelled_owned());
    tokio::select! {
        r = serve => r.context("serving")?,
        _ = async { shutdown.cancelled().await; tokio::time::sleep(grace).await } => {
            tracing::warn!(grace_ms = grace.as_millis() as u64, "shutdown grace expired; dropping remaining connections");
        }
    }
    if let Some(bus) = &app.bus {
        bus.stop.cancel();
    }
    app.store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Resolves on SIGTERM or SIGINT.
pub async fn termination_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// `stonepot serve`: runs until a termination signal, then drains.
pub async fn serve_forever(config: Config) -> anyhow::Result<()> {
    let (app, keys) = prepare(config).await?;
    let running = start(app).await?;
    for (tenant, key) in &keys {
        // Printed once, to the terminal, never to the structured log.
        eprintln!("demo API key for {tenant}: {key}");
    }
    if !keys.is_empty() {
        eprintln!(
            "demo: http://{}  (try: curl -H 'Authorization: Bearer <key>' http://{}/api/me)",
            running.addr, running.addr
        );
    }
    termination_signal().await;
    tracing::info!("shutdown signal received; finishing in-flight requests");
    running.stop().await
}

/// Whether an id is one of the demo tenants.
pub fn is_demo_tenant(id: &TenantId) -> bool {
    id.as_str() == demo::RESTAURANT_ID || id.as_str() == demo::FINANCE_ID
}
