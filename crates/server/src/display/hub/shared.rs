//! The hub's side of displays shared across instances (NATS): this instance's displays
//! are written to the shared list when they change and on a heartbeat, and join/leave
//! frames wait for that write so their `count` covers every instance.

use super::Hub;
use crate::display::presence::{HEARTBEAT, SharedDisplays};
use std::sync::Arc;
use std::time::Duration;

impl Hub {
    /// Writes this instance's displays of the changed sessions to the shared list and
    /// sends the join/leave frames held for them, counting every instance's displays.
    async fn flush_shared(&self, shared: &SharedDisplays, heartbeat: bool) {
        let mut sessions = shared.take_dirty();
        if heartbeat {
            let chans = self.channels.lock().unwrap_or_else(|p| p.into_inner());
            sessions.extend(chans.keys().cloned());
        }
        sessions.sort();
        sessions.dedup();
        for id in sessions {
            let mine = self.displays(&id);
            let count = match shared.write(&id, &mine).await {
                Ok(all) => all.len(),
                Err(e) => {
                    tracing::warn!(session = %id, error = %e, "could not share displays; retrying");
                    shared.mark(&id, false);
                    mine.len()
                }
            };
            let events = self
                .pending
                .0
                .lock()
                .ok()
                .and_then(|mut p| p.remove(&id))
                .unwrap_or_default();
            for (event, display) in events {
                self.publish_presence(&id, &event, display, count);
            }
        }
    }

    /// Flushes changed sessions at once, every session on the heartbeat, until `stop`.
    pub(super) fn spawn_shared_flusher(
        self: &Arc<Self>,
        shared: Arc<SharedDisplays>,
        stop: tokio_util::sync::CancellationToken,
    ) {
        let hub = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            let mut last_beat = std::time::Instant::now();
            loop {
                tokio::select! {
                    _ = shared.wake.notified() => {}
                    _ = tick.tick() => {}
                    _ = stop.cancelled() => break,
                }
                let beat = last_beat.elapsed() >= HEARTBEAT;
                if beat {
                    last_beat = std::time::Instant::now();
                }
                hub.flush_shared(&shared, beat).await;
            }
        });
    }
}
