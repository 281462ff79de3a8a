//! The most recent entries of each session this instance fans out, kept in memory so
//! that subscribers which fell behind their channel catch up from here rather than from
//! the log's backend.
//!
//! Why it exists: on JetStream every read of the log opens a consumer on the NATS server.
//! When many sockets of one session lag at once (a burst of updates to a session with a
//! thousand displays), a read each meant a thousand consumers created in the same second;
//! the NATS API answered them slower than its timeout, the reads failed and the sockets
//! were closed. Each instance already receives every entry once, from its fan-out
//! consumer: remembering the last few is enough to answer those reads, however many
//! sockets ask.
//!
//! Entries are kept only for sessions with subscribers here, as contiguous runs of seq:
//! a run that would have a hole starts over, so an answer from here is always exactly
//! what the log holds for that range.

use super::hub::Frame;
use super::log::{Entry, update_frame};
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// One cached entry: the entry for readers of the log, the ready-made frame for sockets.
struct Cached {
    entry: Entry,
    frame: Frame,
}

/// What this process published to one session's subscribers.
#[derive(Default)]
struct Run {
    /// The latest entries, contiguous in seq (at most the capacity).
    entries: VecDeque<Cached>,
    /// The highest seq published to the session's channel here.
    published: u64,
}

pub struct Recent {
    /// Entries kept per session; 0 keeps none (only what was published).
    capacity: usize,
    sessions: Mutex<HashMap<String, Run>>,
    /// Reads answered from here (for `/metrics`).
    pub hits: AtomicU64,
}

impl Recent {
    pub fn new(capacity: usize) -> Recent {
        Recent {
            capacity,
            sessions: Mutex::new(HashMap::new()),
            hits: AtomicU64::new(0),
        }
    }

    /// Remembers `entry` (committed, about to be published to the session's channel, in
    /// seq order) and returns its frame. An entry already held is ignored; one that does
    /// not follow the last held starts the run over.
    pub fn push(&self, session: &str, entry: Entry) -> Frame {
        let frame = update_frame(entry.seq, &entry.envelope);
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        let run = sessions.entry(session.to_string()).or_default();
        run.published = run.published.max(entry.seq);
        if self.capacity == 0 {
            return frame;
        }
        match run.entries.back().map(|c| c.entry.seq) {
            Some(last) if entry.seq <= last => return frame,
            Some(last) if entry.seq != last + 1 => run.entries.clear(),
            _ => {}
        }
        run.entries.push_back(Cached {
            entry,
            frame: frame.clone(),
        });
        while run.entries.len() > self.capacity {
            run.entries.pop_front();
        }
        frame
    }

    /// The held entries with seq in `after + 1 ..= after + limit`, when `after + 1` is
    /// held and newer entries exist (None otherwise: the caller reads the log).
    fn held(&self, run: &Run, after: u64, limit: u32) -> Option<std::ops::Range<usize>> {
        let first = run.entries.front()?.entry.seq;
        let last = run.entries.back()?.entry.seq;
        if limit == 0 || after + 1 < first || after >= last {
            return None;
        }
        let skip = usize::try_from(after + 1 - first).ok()?;
        Some(skip..run.entries.len().min(skip + limit as usize))
    }

    /// Entries after `after`, when held (see [`Recent::held`]). Never answers with
    /// nothing: whether entries past the newest held exist is for the log to say.
    pub fn entries_after(&self, session: &str, after: u64, limit: u32) -> Option<Vec<Entry>> {
        let sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        let run = sessions.get(session)?;
        let range = self.held(run, after, limit)?;
        self.hits.fetch_add(1, Ordering::Relaxed);
        Some(run.entries.range(range).map(|c| c.entry.clone()).collect())
    }

    /// What a subscriber of this process's channel that has seen up to `after` and then
    /// fell behind may have missed: the frames published after `after` (none at all
    /// when nothing newer was published: it lagged on presence frames only). None when
    /// they are no longer held: the caller reads the log.
    pub fn missed(&self, session: &str, after: u64, limit: u32) -> Option<Vec<Frame>> {
        let sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        let published = sessions.get(session).map(|r| r.published).unwrap_or(0);
        if after >= published {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Some(Vec::new());
        }
        let run = sessions.get(session)?;
        let range = self.held(run, after, limit)?;
        self.hits.fetch_add(1, Ordering::Relaxed);
        Some(run.entries.range(range).map(|c| c.frame.clone()).collect())
    }

    /// Keeps only the sessions `keep` names (those with a channel here).
    pub fn retain(&self, keep: impl Fn(&str) -> bool) {
        if let Ok(mut sessions) = self.sessions.lock() {
            sessions.retain(|s, _| keep(s));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seq: u64) -> Entry {
        Entry {
            seq,
            envelope: format!("{{\"n\":{seq}}}"),
            at_ms: 0,
        }
    }

    fn seqs(frames: Option<Vec<Frame>>) -> Option<Vec<u64>> {
        frames.map(|f| f.iter().filter_map(|f| f.seq).collect())
    }

    #[test]
    fn nothing_published_past_a_subscriber_means_nothing_missed() {
        let r = Recent::new(0);
        // Nothing published yet: a subscriber that lagged (on presence frames) missed
        // no update, and the log need not be read.
        assert_eq!(seqs(r.missed("s", 0, 100)), Some(vec![]));
        r.push("s", entry(1));
        assert_eq!(seqs(r.missed("s", 1, 100)), Some(vec![]));
        // Published but not held: read the log.
        assert_eq!(seqs(r.missed("s", 0, 100)), None);
        assert_eq!(r.entries_after("s", 0, 100).map(|e| e.len()), None);
    }

    #[test]
    fn answers_only_contiguous_ranges_it_holds() {
        let r = Recent::new(4);
        for seq in 3..=8 {
            r.push("s", entry(seq));
        }
        // Holds 5..=8 (capacity 4).
        assert_eq!(seqs(r.missed("s", 4, 100)), Some(vec![5, 6, 7, 8]));
        assert_eq!(seqs(r.missed("s", 6, 1)), Some(vec![7]));
        // Older than held: the log answers. Nothing newer published: nothing missed.
        assert_eq!(seqs(r.missed("s", 3, 100)), None);
        assert_eq!(seqs(r.missed("s", 8, 100)), Some(vec![]));
        // A reader of the log is not told "nothing" past what is held.
        assert!(r.entries_after("s", 8, 100).is_none());
        assert!(r.entries_after("other", 0, 100).is_none());
        // A repeat is ignored; a hole starts the run over.
        r.push("s", entry(7));
        assert_eq!(seqs(r.missed("s", 4, 100)), Some(vec![5, 6, 7, 8]));
        r.push("s", entry(11));
        assert_eq!(seqs(r.missed("s", 8, 100)), None);
        assert_eq!(seqs(r.missed("s", 10, 100)), Some(vec![11]));
        let e = r.entries_after("s", 10, 100).unwrap();
        assert_eq!((e[0].seq, e[0].envelope.as_str()), (11, "{\"n\":11}"));
        assert_eq!(r.hits.load(Ordering::Relaxed), 6);
        r.retain(|s| s != "s");
        assert!(r.entries_after("s", 10, 100).is_none());
    }
}
