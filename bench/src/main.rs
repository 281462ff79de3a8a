//! `stonepot-bench`: load generators that print figures for docs/PERFORMANCE.md.
//!
//! `foundation` starts the real `stonepot` binary (release build) on loopback and
//! measures start-to-healthy, idle RSS, and `/health` plus one API read under load from
//! this second process over keep-alive HTTP/1.1 connections.
//!
//! `gateway` measures the latency and memory the OpenAI-compatible gateway adds on top of
//! a zero-delay fake model provider running inside the bench.
//!
//! `voice-relay` runs concurrent realtime-model relay sessions against a fake provider
//! on loopback and prints the latency they add per 20 ms frame, barge-in stop time, CPU
//! and memory per session.
//!
//! `orders` places orders end to end over HTTP (conversation, cart through the offline
//! agent, quote, confirm, pay at the counter) and times the daily close of the day.
//!
//! `voice` runs concurrent voice sessions on the chat socket (cascade mode against a
//! fake speech provider): per-frame latency both ways, barge-in stop, CPU and memory.

mod display;
mod foundation;
mod gateway;
mod orders;
mod server;
mod voice;
mod voice_relay;

use anyhow::Result;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(about = "Stonepot benchmarks")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Start-up, idle memory and HTTP throughput/latency of the foundation routes.
    Foundation {
        /// The stonepot binary to measure.
        #[arg(long, default_value = "target/release/stonepot")]
        bin: PathBuf,
        /// Start-ups to time.
        #[arg(long, default_value_t = 10)]
        starts: usize,
        /// Concurrent keep-alive connections.
        #[arg(long, default_value_t = 16)]
        connections: usize,
        /// Seconds of load per route.
        #[arg(long, default_value_t = 5)]
        seconds: u64,
    },
    /// Display fan-out latency, delivery, CPU per update and memory per socket.
    Display {
        #[arg(long, default_value = "target/release/stonepot")]
        bin: PathBuf,
        /// Sessions.
        #[arg(long, default_value_t = 100)]
        sessions: usize,
        /// Display sockets per session.
        #[arg(long, default_value_t = 10)]
        per_session: usize,
        /// Total updates per second across all sessions.
        #[arg(long, default_value_t = 200)]
        rate: u64,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Server instances (more than one needs --nats-url and --database-url).
        #[arg(long, default_value_t = 1)]
        instances: usize,
        /// NATS with JetStream for the session log (NATS_URL of the servers).
        #[arg(long)]
        nats_url: Option<String>,
        /// PostgreSQL shared by the instances (DATABASE_URL of the servers).
        #[arg(long)]
        database_url: Option<String>,
    },
    /// Orders end to end over HTTP on SQLite: max orders/s, latency at a fixed rate, and
    /// the daily close of the day's orders.
    Orders {
        #[arg(long, default_value = "target/release/stonepot")]
        bin: PathBuf,
        /// Concurrent guests in the throughput phase.
        #[arg(long, default_value_t = 32)]
        clients: usize,
        /// Orders in the throughput phase.
        #[arg(long, default_value_t = 10_000)]
        orders: usize,
        /// Orders per second in the latency phase (open loop).
        #[arg(long, default_value_t = 200)]
        rate: u64,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
    /// Concurrent voice sessions: per-frame latency both ways, barge-in stop time, CPU
    /// and memory per session (cascade mode, fake zero-delay speech provider).
    Voice {
        #[arg(long, default_value = "target/release/stonepot")]
        bin: PathBuf,
        #[arg(long, default_value_t = 50)]
        sessions: usize,
        #[arg(long, default_value_t = 20)]
        seconds: u64,
    },
    /// Latency and memory the OpenAI-compatible gateway adds over a zero-delay fake provider.
    Gateway {
        #[arg(long, default_value = "target/release/stonepot")]
        bin: PathBuf,
        /// Whole-answer requests at concurrency 1 (each, direct and through the gateway).
        #[arg(long, default_value_t = 2000)]
        requests: usize,
        /// Open-loop requests per second.
        #[arg(long, default_value_t = 1000)]
        rate: u64,
        /// Seconds of open-loop load (each, direct and through the gateway).
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Streamed requests at concurrency 1 (each).
        #[arg(long, default_value_t = 1000)]
        stream_requests: usize,
        /// Streams held open through the gateway to measure memory.
        #[arg(long, default_value_t = 500)]
        streams: usize,
        /// Extra environment for the server, KEY=VALUE (repeatable), for experiments such
        /// as TOKIO_WORKER_THREADS=1.
        #[arg(long = "server-env", value_name = "KEY=VALUE")]
        server_env: Vec<String>,
    },
    /// Concurrent realtime-model relay sessions against the fake provider on loopback:
    /// added latency per 20 ms frame both ways, barge-in stop, CPU and RSS per session.
    VoiceRelay {
        #[arg(long, default_value_t = 200)]
        sessions: usize,
        /// Seconds measured (after a 2 s warm-up).
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// `openai` or `gemini`.
        #[arg(long, default_value = "openai")]
        provider: String,
    },
}

#[tokio::main]
async fn main() -> Result<()> {
    match Cli::parse().cmd {
        Cmd::Foundation {
            bin,
            starts,
            connections,
            seconds,
        } => foundation::run(bin, starts, connections, seconds).await,
        Cmd::Display {
            bin,
            sessions,
            per_session,
            rate,
            seconds,
            instances,
            nats_url,
            database_url,
        } => {
            display::run(
                bin,
                display::Params {
                    sessions,
                    per_session,
                    rate,
                    seconds,
                    instances,
                    nats_url,
                    database_url,
                },
            )
            .await
        }
        Cmd::Orders {
            bin,
            clients,
            orders,
            rate,
            seconds,
        } => {
            orders::run(
                bin,
                orders::Params {
                    clients,
                    orders,
                    rate,
                    seconds,
                },
            )
            .await
        }
        Cmd::VoiceRelay {
            sessions,
            seconds,
            provider,
        } => {
            voice_relay::run(voice_relay::Params {
                sessions,
                seconds,
                provider,
            })
            .await
        }
        Cmd::Voice {
            bin,
            sessions,
            seconds,
        } => voice::run(bin, voice::Params { sessions, seconds }).await,
        Cmd::Gateway {
            bin,
            requests,
            rate,
            seconds,
            stream_requests,
            streams,
            server_env,
        } => {
            gateway::run(
                bin,
                gateway::Params {
                    requests,
                    rate,
                    seconds,
                    stream_requests,
                    streams,
                    server_env,
                },
            )
            .await
        }
    }
}
