//! Opening provider connections: the WebSocket handshake with the provider's headers,
//! and reconnecting with backoff after a lost connection or a rollover.

use crate::event::{RelayError, RelayInput};
use crate::session::Relay;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub(crate) type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long one connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// WebSocket settings for a provider connection. tungstenite zero-fills its read buffer
/// up to this size before each socket read, and its 128 KiB default made that fill the
/// largest cost per 20 ms frame (and 128 KiB of memory per session); a provider message
/// is a few KiB (an audio delta, a transcript), and a larger one just takes more reads.
pub(crate) fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default().read_buffer_size(READ_BUFFER)
}

/// See [`ws_config`].
const READ_BUFFER: usize = 16 * 1024;

/// Opens the WebSocket (no Nagle: 20 ms frames must not wait for each other).
pub(crate) async fn connect(url: String, headers: Vec<(String, String)>) -> Result<Ws, RelayError> {
    let mut req = url
        .as_str()
        .into_client_request()
        .map_err(|e| RelayError::Connect(format!("bad URL: {e}")))?;
    for (k, v) in headers {
        let name = HeaderName::from_bytes(k.as_bytes())
            .map_err(|e| RelayError::Connect(format!("bad header {k}: {e}")))?;
        let value = HeaderValue::from_str(&v)
            .map_err(|e| RelayError::Connect(format!("bad header {k}: {e}")))?;
        req.headers_mut().insert(name, value);
    }
    match tokio::time::timeout(
        CONNECT_TIMEOUT,
        tokio_tungstenite::connect_async_with_config(req, Some(ws_config()), true),
    )
    .await
    {
        Ok(Ok((ws, _))) => Ok(ws),
        Ok(Err(e)) => Err(RelayError::Connect(e.to_string())),
        Err(_) => Err(RelayError::Connect("timed out".into())),
    }
}

impl Relay {
    /// Connects again with backoff while still taking inputs (audio is queued for the new
    /// connection). `Ok(None)`: the server closed the session meanwhile.
    pub(crate) async fn reconnect(
        &mut self,
        inputs: &mut mpsc::Receiver<RelayInput>,
        failures: u32,
    ) -> Result<Option<Ws>, RelayError> {
        let mut last = RelayError::Connect(format!(
            "{failures} connections in a row closed before the session was set up"
        ));
        for attempt in failures..self.cfg.reconnect_attempts.max(1) {
            let backoff = Duration::from_millis(match attempt {
                0 => 0,
                1 => 250,
                _ => 1000,
            });
            let (url, headers) = self.proto.endpoint();
            let attempt_fut = async move {
                tokio::time::sleep(backoff).await;
                connect(url, headers).await
            };
            tokio::pin!(attempt_fut);
            loop {
                tokio::select! {
                    r = &mut attempt_fut => match r {
                        Ok(ws) => return Ok(Some(ws)),
                        Err(e) => { last = e; break; }
                    },
                    input = inputs.recv() => match input {
                        None | Some(RelayInput::Close) => return Ok(None),
                        Some(i) => self.on_input(i).await,
                    },
                }
            }
        }
        Err(last)
    }
}
