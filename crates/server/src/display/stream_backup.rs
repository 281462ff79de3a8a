//! Backing up and restoring the JetStream session log (`stonepot backup` / `restore` with
//! `NATS_URL`): the stream's messages as JSON lines beside the database copy, and back.
//!
//! A restore publishes the messages again in their original order, each with its
//! session seq and commit time, on the subject of its session under the configured
//! stream, so per-session seqs, `oldest` and resume with `since` work as before. The
//! stream sequences themselves are new (JetStream assigns them); nothing keeps the old
//! ones, because every reader finds positions by session seq.

use super::jetstream::{
    AT_HEADER, EXPECTED_LAST_SUBJECT_SEQ, JetStreamSettings, SEQ_HEADER, connect_client,
    ensure_stream, header_i64, header_u64, session_of,
};
use async_nats::HeaderMap;
use async_nats::jetstream::{self, consumer, context};
use futures::StreamExt;
use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

/// What [`snapshot_stream`] wrote.
#[derive(Debug)]
pub struct StreamSnapshot {
    pub path: std::path::PathBuf,
    pub messages: u64,
    pub bytes: u64,
}

/// Writes every message of the stream to `path` as JSON lines (`subject`, `streamSeq`,
/// `session`, `seq`, `at`, `envelope`), read by an ordered consumer from the first
/// retained message up to the last one present when the snapshot started. Safe while
/// instances keep appending: later messages are simply not included.
pub async fn snapshot_stream(
    url: &str,
    token: Option<&str>,
    stream_name: &str,
    path: &std::path::Path,
) -> anyhow::Result<StreamSnapshot> {
    use std::io::Write;
    let client = connect_client(url, token).await?;
    let js = jetstream::new(client);
    let mut stream = js
        .get_stream(stream_name)
        .await
        .map_err(|e| anyhow::anyhow!("JetStream stream {stream_name}: {e}"))?;
    let last = stream.info().await?.state.last_sequence;
    let tmp = path.with_extension("partial");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
    let mut messages = 0u64;
    if last > 0 {
        let consumer = stream
            .create_consumer(consumer::pull::OrderedConfig {
                deliver_policy: consumer::DeliverPolicy::All,
                ..Default::default()
            })
            .await?;
        let mut all = consumer.messages().await?;
        while let Some(m) = tokio::time::timeout(Duration::from_secs(10), all.next())
            .await
            .map_err(|_| anyhow::anyhow!("JetStream stopped delivering {stream_name}"))?
        {
            let m = m?;
            let info = m.info().map_err(|e| anyhow::anyhow!("{e}"))?;
            let stream_seq = info.stream_sequence;
            let pending = info.pending;
            let token = m.subject.as_str().rsplit('.').next().unwrap_or_default();
            let line = serde_json::json!({
                "subject": m.subject.as_str(),
                "streamSeq": stream_seq,
                "session": session_of(token),
                "seq": header_u64(m.headers.as_ref(), SEQ_HEADER),
                "at": header_i64(m.headers.as_ref(), AT_HEADER),
                "envelope": String::from_utf8_lossy(&m.payload),
            });
            writeln!(file, "{line}")?;
            messages += 1;
            if stream_seq >= last || pending == 0 {
                break;
            }
        }
    }
    file.flush()?;
    file.into_inner()
        .map_err(|e| anyhow::anyhow!("writing {}: {e}", tmp.display()))?
        .sync_all()?;
    std::fs::rename(&tmp, path)?;
    let bytes = std::fs::metadata(path)?.len();
    Ok(StreamSnapshot {
        path: path.to_path_buf(),
        messages,
        bytes,
    })
}

/// One message of a snapshot file.
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Line {
    subject: String,
    stream_seq: u64,
    session: Option<String>,
    seq: Option<u64>,
    at: Option<i64>,
    envelope: String,
}

/// A snapshot's messages, read and checked, ready to publish.
struct Message {
    session: String,
    seq: u64,
    at: Option<i64>,
    envelope: String,
}

/// Reads and checks a whole snapshot before anything is changed: every line must parse,
/// name its session and seq, and come in stream order with each session's seqs rising.
fn read_snapshot(path: &Path) -> anyhow::Result<Vec<Message>> {
    use std::io::BufRead;
    let file = std::fs::File::open(path)
        .map_err(|e| anyhow::anyhow!("opening {}: {e}", path.display()))?;
    let mut out = Vec::new();
    let mut last_stream_seq = 0;
    let mut last_seq: HashMap<String, u64> = HashMap::new();
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let at_line = || format!("{} line {}", path.display(), n + 1);
        let l: Line = serde_json::from_str(&line)
            .map_err(|e| anyhow::anyhow!("{}: not a stream snapshot line: {e}", at_line()))?;
        let session = l
            .session
            .or_else(|| l.subject.rsplit('.').next().and_then(session_of))
            .ok_or_else(|| anyhow::anyhow!("{}: no session", at_line()))?;
        let seq = l
            .seq
            .ok_or_else(|| anyhow::anyhow!("{}: no session seq", at_line()))?;
        if l.stream_seq <= last_stream_seq {
            anyhow::bail!("{}: stream sequence out of order", at_line());
        }
        last_stream_seq = l.stream_seq;
        let prev = last_seq.insert(session.clone(), seq).unwrap_or(0);
        if seq <= prev {
            anyhow::bail!(
                "{}: seq {seq} of session '{session}' does not follow {prev}",
                at_line()
            );
        }
        out.push(Message {
            session,
            seq,
            at: l.at,
            envelope: l.envelope,
        });
    }
    Ok(out)
}

/// What [`StreamRestore::apply`] did.
#[derive(Debug)]
pub struct StreamRestored {
    pub messages: u64,
    pub sessions: usize,
    /// Messages purged from the stream first (only with `force`).
    pub purged: u64,
}

/// A stream restore checked and ready: the snapshot is read, the stream exists, and it is
/// empty (or `force` was given). Prepared before the database is restored, so that a
/// refusal changes nothing at all.
pub struct StreamRestore {
    stream: jetstream::stream::Stream,
    js: jetstream::Context,
    settings: JetStreamSettings,
    messages: Vec<Message>,
    force: bool,
}

/// Messages published before their acknowledgements are awaited.
const IN_FLIGHT: usize = 256;

impl StreamRestore {
    /// Reads `path` and checks the target stream (creating it when missing). Refuses a
    /// stream that holds messages unless `force`: restoring into a live log would put old
    /// entries after new ones.
    pub async fn prepare(
        settings: JetStreamSettings,
        path: &Path,
        force: bool,
    ) -> anyhow::Result<StreamRestore> {
        let messages = read_snapshot(path)?;
        let client = connect_client(&settings.url, settings.token.as_deref()).await?;
        let js = jetstream::ContextBuilder::new()
            .timeout(settings.timeout.max(Duration::from_secs(10)))
            .build(client);
        let mut stream = ensure_stream(&js, &settings).await?;
        let held = stream.info().await?.state.messages;
        if held > 0 && !force {
            anyhow::bail!(
                "JetStream stream {} already holds {held} messages; refusing to restore over a live log (stop every instance, then run restore again with --force to replace them)",
                settings.stream
            );
        }
        Ok(StreamRestore {
            stream,
            js,
            settings,
            messages,
            force,
        })
    }

    pub fn len(&self) -> usize {
        self.messages.len()
    }

    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// Empties the stream when forced, then publishes every message in order. Each
    /// publish expects its subject's previous message to be the one this restore wrote
    /// before it (none for the first), so a writer that slips in meanwhile makes the
    /// restore fail loudly instead of interleaving with it.
    pub async fn apply(mut self) -> anyhow::Result<StreamRestored> {
        let mut purged = 0;
        let held = self.stream.info().await?.state.messages;
        if held > 0 {
            if !self.force {
                anyhow::bail!(
                    "JetStream stream {} received {held} messages while the restore was prepared; nothing was published",
                    self.settings.stream,
                );
            }
            purged = self
                .stream
                .purge()
                .await
                .map_err(|e| anyhow::anyhow!("purging stream {}: {e}", self.settings.stream))?
                .purged;
        }
        // Nobody else writes (checked by every publish), so the sequences JetStream will
        // assign are known in advance, and publishes can be pipelined.
        let mut next_stream_seq = self.stream.info().await?.state.last_sequence + 1;
        let mut last_of: HashMap<&str, u64> = HashMap::new();
        let mut pending = Vec::with_capacity(IN_FLIGHT);
        for m in &self.messages {
            let expected = last_of.get(m.session.as_str()).copied().unwrap_or(0);
            let mut headers = HeaderMap::new();
            headers.insert(EXPECTED_LAST_SUBJECT_SEQ, expected.to_string().as_str());
            headers.insert(SEQ_HEADER, m.seq.to_string().as_str());
            if let Some(at) = m.at {
                headers.insert(AT_HEADER, at.to_string().as_str());
            }
            let ack = self
                .js
                .publish_with_headers(
                    self.settings.subject(&m.session),
                    headers,
                    m.envelope.clone().into_bytes().into(),
                )
                .await
                .map_err(|e| anyhow::anyhow!("publishing to {}: {e}", self.settings.stream))?;
            pending.push((m.session.as_str(), m.seq, ack));
            last_of.insert(m.session.as_str(), next_stream_seq);
            next_stream_seq += 1;
            if pending.len() >= IN_FLIGHT {
                confirm(&self.settings.stream, &mut pending).await?;
            }
        }
        confirm(&self.settings.stream, &mut pending).await?;
        Ok(StreamRestored {
            messages: self.messages.len() as u64,
            sessions: last_of.len(),
            purged,
        })
    }
}

/// Awaits the acknowledgements of published messages, in order.
async fn confirm(
    stream: &str,
    pending: &mut Vec<(&str, u64, context::PublishAckFuture)>,
) -> anyhow::Result<()> {
    for (session, seq, ack) in pending.drain(..) {
        ack.await.map_err(|e| {
            let why = if e.kind() == context::PublishErrorKind::WrongLastSequence {
                "another writer appended to the stream during the restore; stop every instance and run restore again with --force".to_string()
            } else {
                e.to_string()
            };
            anyhow::anyhow!(
                "restoring seq {seq} of session '{session}' into {stream}: {why}"
            )
        })?;
    }
    Ok(())
}
