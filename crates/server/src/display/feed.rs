//! One subscriber's ordered view of a session: a snapshot (or exactly the missed updates,
//! or a reset and a snapshot), then every later update once, in `seq` order. A subscriber
//! that falls behind the in-memory channel catches up from the log (which may answer from
//! the recent entries it holds in memory, see [`super::recent`]) instead of losing frames.

use super::hub::{Channel, Frame, Hub, HubError, Utf8Bytes};
use super::log::update_frame;
use serde_json::{Value, json};
use std::sync::Arc;
use tokio::sync::broadcast::{Receiver, error::RecvError};

pub struct Feed {
    hub: Arc<Hub>,
    id: String,
    rx: Receiver<Frame>,
    channel: Arc<Channel>,
    pub display: u64,
    /// The last seq delivered.
    pub last: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    #[error("no session '{0}'")]
    NotFound(String),
    #[error("since={since} is ahead of the session's seq {seq}")]
    SinceAhead { since: u64, seq: u64 },
    #[error("the session's channel closed")]
    Closed,
    #[error(transparent)]
    Hub(#[from] HubError),
}

impl From<stonepot_store::StoreError> for FeedError {
    fn from(e: stonepot_store::StoreError) -> Self {
        FeedError::Hub(HubError::Store(e))
    }
}

impl From<super::log::LogError> for FeedError {
    fn from(e: super::log::LogError) -> Self {
        match e {
            super::log::LogError::Store(s) => FeedError::Hub(HubError::Store(s)),
            super::log::LogError::Unavailable(m) => FeedError::Hub(HubError::Unavailable(m)),
            super::log::LogError::Conflict => FeedError::Closed,
        }
    }
}

impl Feed {
    /// Subscribes first, then reads, so nothing committed in between is missed.
    pub async fn open(
        hub: &Arc<Hub>,
        id: &str,
        kind: &'static str,
        since: Option<u64>,
    ) -> Result<(Feed, Vec<Frame>), FeedError> {
        let (display, rx, channel) = hub.subscribe(id, kind);
        let mut feed = Feed {
            hub: hub.clone(),
            id: id.to_string(),
            rx,
            channel,
            display,
            last: 0,
        };
        let (seq, state) = hub
            .snapshot_for(id, &feed.channel)
            .await?
            .ok_or_else(|| FeedError::NotFound(id.to_string()))?;
        let snapshot = |state: Value| Frame {
            seq: Some(seq),
            event: "snapshot",
            text: Utf8Bytes::from(
                json!({"type": "snapshot", "seq": seq, "state": state}).to_string(),
            ),
        };
        let mut frames = Vec::new();
        match since {
            None => frames.push(snapshot(state)),
            Some(s) if s > seq => return Err(FeedError::SinceAhead { since: s, seq }),
            Some(s) if s == seq => {}
            Some(s) => {
                let oldest = hub.log().oldest(id).await?;
                if oldest.is_none_or(|o| o > s + 1) {
                    frames.push(Frame {
                        seq: None,
                        event: "reset",
                        text: Utf8Bytes::from(
                            json!({"type": "reset", "reason": "since is older than the retained log",
                                   "since": s, "oldest": oldest})
                            .to_string(),
                        ),
                    });
                    frames.push(snapshot(state));
                } else {
                    let mut after = s;
                    while after < seq {
                        let batch = hub.log().read_after(id, after, 500).await?;
                        let Some(last) = batch.last() else { break };
                        after = last.seq;
                        frames.extend(
                            batch
                                .iter()
                                .filter(|u| u.seq <= seq)
                                .map(|u| update_frame(u.seq, &u.envelope)),
                        );
                    }
                }
            }
        }
        feed.last = seq;
        Ok((feed, frames))
    }

    /// Waits for the next frames to deliver (never an update twice, never out of order).
    pub async fn next(&mut self) -> Result<Vec<Frame>, FeedError> {
        loop {
            match self.rx.recv().await {
                Ok(f) => match f.seq {
                    None => return Ok(vec![f]),
                    Some(s) if s <= self.last => continue,
                    Some(s) if s == self.last + 1 => {
                        self.last = s;
                        return Ok(vec![f]);
                    }
                    Some(_) => return self.catch_up().await,
                },
                Err(RecvError::Lagged(_)) => return self.catch_up().await,
                Err(RecvError::Closed) => return Err(FeedError::Closed),
            }
        }
    }

    async fn catch_up(&mut self) -> Result<Vec<Frame>, FeedError> {
        self.hub
            .catch_ups
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let batch = self.hub.log().missed(&self.id, self.last, 500).await?;
        if batch.first().is_some_and(|f| f.seq != Some(self.last + 1)) {
            // Trimmed past us: start over from a snapshot.
            let (seq, state) = self
                .hub
                .snapshot(&self.id)
                .await?
                .ok_or_else(|| FeedError::NotFound(self.id.clone()))?;
            self.last = seq;
            return Ok(vec![
                Frame {
                    seq: None,
                    event: "reset",
                    text: Utf8Bytes::from(
                        json!({"type": "reset", "reason": "fell behind the retained log"})
                            .to_string(),
                    ),
                },
                Frame {
                    seq: Some(seq),
                    event: "snapshot",
                    text: Utf8Bytes::from(
                        json!({"type": "snapshot", "seq": seq, "state": state}).to_string(),
                    ),
                },
            ]);
        }
        if let Some(l) = batch.last().and_then(|f| f.seq) {
            self.last = l;
        }
        Ok(batch)
    }

    pub fn ack(&self, seq: u64) {
        self.hub.ack(&self.id, self.display, seq);
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        self.hub.unsubscribe(&self.id, self.display);
    }
}
