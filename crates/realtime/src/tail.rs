//! A reply's tail: audio the provider finished sending before the client finished
//! playing it. Real providers generate speech faster than real time, so when a reply
//! completes the kiosk may still hold seconds of it in its player. Speech over that tail
//! must stop it like speech over a reply still being generated — otherwise the guest
//! talks over an agent that will not stop — and the model must learn what was heard.
//!
//! The relay keeps the finished reply as the tail until the client has played it all:
//! by its `playout` reports, or by the clock (the reply's first audio plus its length
//! plus the client's jitter buffer), whichever says so first.

use crate::audio::duration_ms;
use crate::event::RelayEvent;
use crate::session::Relay;
use std::time::Duration;
use tokio::time::Instant;

/// What a client may still be playing of a finished reply.
pub(crate) struct Tail {
    /// The reply's item, which OpenAI truncates to what was heard.
    item: Option<String>,
    /// Where the reply began and ended in the client-rate samples sent this session.
    start: u64,
    end: u64,
    /// When the client will have played it all, by the clock.
    until: Instant,
}

/// Beyond a reply's own length before it counts as played out: the client's jitter
/// buffer (80 ms in the kiosk) and the network, so a reply is not let go while its last
/// words still play. The server's socket waits as long before it stores the turn.
pub const PLAYER_SLACK: Duration = Duration::from_millis(250);

impl Relay {
    /// A reply's audio has begun: a new reply replaces any tail.
    pub(crate) fn reply_audio_began(&mut self) {
        self.audio_began = Some(Instant::now());
        self.tail = None;
    }

    /// The reply whose audio was sent has completed: keep it as the tail while the
    /// client may still be playing it. A held reply (the read-back) plays whole anyway.
    pub(crate) fn keep_tail(&mut self) {
        let Some(began) = self.audio_began.take() else {
            return;
        };
        if self.held {
            return;
        }
        let rate = self.cfg.client_rate;
        let len = duration_ms((self.sent_samples - self.item_start) as usize, rate);
        let until = began + Duration::from_millis(len) + PLAYER_SLACK;
        if Instant::now() < until {
            self.tail = Some(Tail {
                item: self.cur_item.clone(),
                start: self.item_start,
                end: self.sent_samples,
                until,
            });
        }
    }

    /// Of the reply sent between client-rate samples `start` and `end` this session:
    /// how many milliseconds the client reported playing, and its length.
    pub(crate) fn heard(&self, start: u64, end: u64) -> (u64, u64) {
        let rate = self.cfg.client_rate;
        let len = duration_ms((end - start) as usize, rate);
        let played = self
            .played_ms
            .saturating_sub(duration_ms(start as usize, rate))
            .min(len);
        (played, len)
    }

    /// Whether the guest may still be hearing a finished reply (forgetting it once not).
    pub(crate) fn tail_playing(&mut self) -> bool {
        let rate = self.cfg.client_rate;
        let playing = self.tail.as_ref().is_some_and(|t| {
            Instant::now() < t.until && self.played_ms < duration_ms(t.end as usize, rate)
        });
        if !playing {
            self.tail = None;
        }
        playing
    }

    /// Whether guest speech now would interrupt something the guest hears: a reply
    /// under way that may be interrupted, or the tail of a finished one.
    pub(crate) fn interruptible(&mut self) -> bool {
        if self.audio_active {
            !self.held
        } else {
            self.tail_playing()
        }
    }

    /// The guest spoke over the tail: the client stops now, the provider's item and the
    /// model's history are cut to what was heard. Nothing is cancelled (the reply is over).
    pub(crate) async fn barge_in_tail(&mut self) {
        let Some(t) = self.tail.take() else {
            return;
        };
        let (heard, item_ms) = self.heard(t.start, t.end);
        self.emit(RelayEvent::Interrupted { played_ms: heard })
            .await;
        for m in self.proto.interrupt(t.item.as_deref(), heard, false) {
            self.send(m).await;
        }
        self.history.cut_last_reply(heard, item_ms);
    }
}
