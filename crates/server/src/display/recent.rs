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

pub struct Recent {
    /// Entries kept per session; 0 keeps none.
    capacity: usize,
    sessions: Mutex<HashMap<String, VecDeque<Cached>>>,
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

    /// Remembers `entry` (committed, delivered in seq order) and returns its frame. An
    /// entry already held is ignored; one that does not follow the last held starts the
    /// run over.
    pub fn push(&self, session: &str, entry: Entry) -> Frame {
        let frame = update_frame(entry.seq, &entry.envelope);
        if self.capacity == 0 {
            return frame;
        }
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        let run = sessions.entry(session.to_string()).or_default();
        match run.back().map(|c| c.entry.seq) {
            Some(last) if entry.seq <= last => return frame,
            Some(last) if entry.seq != last + 1 => run.clear(),
            _ => {}
        }
        run.push_back(Cached {
            entry,
            frame: frame.clone(),
        });
        while run.len() > self.capacity {
            run.pop_front();
        }
        frame
    }

    /// Runs `take` over the held entries with seq in `after + 1 ..= after + limit`, when
    /// `after + 1` is held (None otherwise: the caller reads the log). Never answers with
    /// nothing: whether entries past the newest held exist is for the log to say.
    fn read<T>(
        &self,
        session: &str,
        after: u64,
        limit: u32,
        take: impl Fn(&Cached) -> T,
    ) -> Option<Vec<T>> {
        if limit == 0 {
            return None;
        }
        let sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        let run = sessions.get(session)?;
        let first = run.front()?.entry.seq;
        let last = run.back()?.entry.seq;
        if after + 1 < first || after >= last {
            return None;
        }
        let skip = usize::try_from(after + 1 - first).ok()?;
        let out: Vec<T> = run
            .iter()
            .skip(skip)
            .take(limit as usize)
            .map(take)
            .collect();
        self.hits.fetch_add(1, Ordering::Relaxed);
        Some(out)
    }

    /// Frames of the entries after `after`; see [`Recent::read`].
    pub fn frames_after(&self, session: &str, after: u64, limit: u32) -> Option<Vec<Frame>> {
        self.read(session, after, limit, |c| c.frame.clone())
    }

    /// Entries after `after`; see [`Recent::read`].
    pub fn entries_after(&self, session: &str, after: u64, limit: u32) -> Option<Vec<Entry>> {
        self.read(session, after, limit, |c| c.entry.clone())
    }

    /// Keeps only the sessions `keep` names (those with subscribers here).
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
    fn answers_only_contiguous_ranges_it_holds() {
        let r = Recent::new(4);
        for seq in 3..=8 {
            r.push("s", entry(seq));
        }
        // Holds 5..=8 (capacity 4).
        assert_eq!(seqs(r.frames_after("s", 4, 100)), Some(vec![5, 6, 7, 8]));
        assert_eq!(seqs(r.frames_after("s", 6, 1)), Some(vec![7]));
        // Older than held, or nothing newer held: the log answers.
        assert_eq!(seqs(r.frames_after("s", 3, 100)), None);
        assert_eq!(seqs(r.frames_after("s", 8, 100)), None);
        assert_eq!(seqs(r.frames_after("other", 0, 100)), None);
        // A repeat is ignored; a hole starts the run over.
        r.push("s", entry(7));
        assert_eq!(seqs(r.frames_after("s", 4, 100)), Some(vec![5, 6, 7, 8]));
        r.push("s", entry(11));
        assert_eq!(seqs(r.frames_after("s", 8, 100)), None);
        assert_eq!(seqs(r.frames_after("s", 10, 100)), Some(vec![11]));
        let e = r.entries_after("s", 10, 100).unwrap();
        assert_eq!((e[0].seq, e[0].envelope.as_str()), (11, "{\"n\":11}"));
        assert_eq!(r.hits.load(Ordering::Relaxed), 5);
        r.retain(|s| s != "s");
        assert_eq!(seqs(r.frames_after("s", 10, 100)), None);
    }
}
