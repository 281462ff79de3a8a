//! `WS /conversation/{id}/display`: snapshot or resume, then updates; receipts, presence,
//! keepalive. A peer that stops reading is closed after a send timeout without slowing
//! anyone else; a silent peer is dropped within 30 s.

use super::feed::{Feed, FeedError};
use super::hub::Hub;
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const SEND_TIMEOUT: Duration = Duration::from_secs(5);
pub const PING_EVERY: Duration = Duration::from_secs(10);
pub const DEAD_AFTER: Duration = Duration::from_secs(30);

pub async fn close(mut socket: WebSocket, code: u16, reason: &str) {
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        })))
        .await;
}

async fn send(socket: &mut WebSocket, text: axum::extract::ws::Utf8Bytes) -> bool {
    matches!(
        tokio::time::timeout(SEND_TIMEOUT, socket.send(Message::Text(text))).await,
        Ok(Ok(()))
    )
}

pub async fn serve(hub: Arc<Hub>, id: String, since: Option<u64>, mut socket: WebSocket) {
    let (mut feed, initial) = match Feed::open(&hub, &id, "websocket", since).await {
        Ok(x) => x,
        Err(FeedError::NotFound(_)) => return close(socket, 4404, "no such session").await,
        Err(FeedError::SinceAhead { .. }) => {
            return close(socket, 4400, "since is ahead of the session").await;
        }
        Err(e) => {
            tracing::warn!(error = %e, session = %id, "display feed failed");
            return close(socket, 1011, "internal error").await;
        }
    };
    for f in initial {
        if !send(&mut socket, f.text).await {
            return;
        }
    }
    let mut last_heard = Instant::now();
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    loop {
        tokio::select! {
            frames = feed.next() => {
                let Ok(frames) = frames else { break };
                for f in frames {
                    if !send(&mut socket, f.text).await {
                        tracing::info!(session = %id, display = feed.display, "closing a display that stopped reading");
                        return;
                    }
                }
            }
            msg = socket.recv() => {
                match msg {
                    Some(Ok(Message::Text(t))) => {
                        last_heard = Instant::now();
                        if !handle_text(&feed, &mut socket, t.as_str()).await {
                            break;
                        }
                    }
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                    Some(Ok(_)) => last_heard = Instant::now(),
                }
            }
            _ = ping.tick() => {
                if last_heard.elapsed() > DEAD_AFTER {
                    tracing::info!(session = %id, display = feed.display, "dropping a silent display");
                    break;
                }
                let sent = tokio::time::timeout(SEND_TIMEOUT, socket.send(Message::Ping(Default::default()))).await;
                if !matches!(sent, Ok(Ok(()))) { break }
            }
        }
    }
}

/// Handles a client frame: receipts and application-level pings. False when the socket
/// should close.
async fn handle_text(feed: &Feed, socket: &mut WebSocket, text: &str) -> bool {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(text) else {
        return true;
    };
    match v["type"].as_str() {
        Some("ack") => {
            if let Some(seq) = v["seq"].as_u64() {
                feed.ack(seq);
            }
            true
        }
        Some("ping") => send(socket, r#"{"type":"pong"}"#.into()).await,
        _ => true,
    }
}
