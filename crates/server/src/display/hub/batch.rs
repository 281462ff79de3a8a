//! Batched updates: the updates that queue up behind a session's lock are validated in
//! order and appended together, one commit (and one disk sync) for the lot.
//!
//! Most sessions see one writer at a time, and a batch is then just that one update. A
//! kitchen board is different: every order of the tenant writes to it, twice. Appending
//! those one at a time would serialize the tenant's orders on one sync after another;
//! batching lets throughput grow with the number of guests instead.

use super::envelope::envelope;
use super::{CONFLICT_RETRIES, Hub, HubError, Loaded, Traced};
use crate::display::log::{LogError, SessionLog};
use serde_json::Value;
use std::collections::HashMap;
use std::time::Duration;
use stonepot_store::{ComponentChange, StoreError};
use tracing::Instrument;

/// One update validated against the session, ready to append.
pub(super) struct Prepared {
    envelope: Value,
    body: String,
    change: ComponentChange,
}

/// Validates `cmd` as the update that will get `seq`, given the keys put (`true`) or
/// removed (`false`) by the updates before it in the same batch.
fn prepare(
    loaded: &Loaded,
    seq: u64,
    (cmd, trace): &Traced,
    batch: &HashMap<String, bool>,
) -> Result<Prepared, HubError> {
    let (mut envelope, change) = envelope(loaded, cmd, seq, |key| {
        batch
            .get(key)
            .copied()
            .unwrap_or_else(|| loaded.components.contains_key(key))
    })?;
    // The trace the update was sent under travels with it to every display (and into
    // the log, so a replay names it too).
    if let (Some(trace), Some(o)) = (trace, envelope.as_object_mut()) {
        o.insert("traceId".into(), Value::String(trace.clone()));
    }
    let body = envelope.to_string();
    Ok(Prepared {
        envelope,
        body,
        change,
    })
}

/// The valid updates with their index in the batch, and the refusals by index.
type Split = (Vec<(usize, Prepared)>, Vec<(usize, HubError)>);

/// Validates every command against the session; `(index, update)` of the valid ones in
/// order, and the refusals by index.
fn prepare_all(loaded: &Loaded, cmds: &[Traced]) -> Split {
    let mut ok: Vec<(usize, Prepared)> = Vec::with_capacity(cmds.len());
    let mut refused = Vec::new();
    let mut keys = HashMap::new();
    for (i, cmd) in cmds.iter().enumerate() {
        let seq = loaded.rec.seq + 1 + ok.len() as u64;
        match prepare(loaded, seq, cmd, &keys) {
            Ok(p) => {
                match &p.change {
                    ComponentChange::Put { key, .. } => keys.insert(key.clone(), true),
                    ComponentChange::Remove { key } => keys.insert(key.clone(), false),
                };
                ok.push((i, p));
            }
            Err(e) => refused.push((i, e)),
        }
    }
    (ok, refused)
}

/// Appends the valid commands of `cmds` to the locked session and applies them to its
/// state; each command's seq or refusal, in order. `reload` reads the session afresh
/// after another writer moved it (a conflict); the batch is then validated again on top.
///
/// The local log appends a batch all or none in one commit. A log other processes
/// append to (JetStream) takes one entry per append, so there each command is its own
/// batch: a lost race then never leaves half a batch behind.
pub(super) async fn apply_batch(
    hub: &Hub,
    id: &str,
    loaded: &mut Loaded,
    cmds: Vec<Traced>,
) -> Vec<Result<u64, HubError>> {
    let size = if hub.log.replicated() {
        1
    } else {
        cmds.len().max(1)
    };
    let mut out = Vec::with_capacity(cmds.len());
    for group in cmds.chunks(size) {
        out.extend(apply_group(hub, id, loaded, group).await);
    }
    out
}

async fn apply_group(
    hub: &Hub,
    id: &str,
    loaded: &mut Loaded,
    cmds: &[Traced],
) -> Vec<Result<u64, HubError>> {
    let log = hub.log.as_ref();
    let n = cmds.len();
    let mut attempt = 0;
    let (ok, refused, appended) = loop {
        let (ok, refused) = prepare_all(loaded, cmds);
        match append(log, id, loaded, &ok).await {
            Err(LogError::Conflict) if attempt < CONFLICT_RETRIES => {
                // Another writer (another process) moved the session: reload and
                // validate again on top of its entries, after a short jittered pause so
                // two racing instances do not collide again in lockstep.
                attempt += 1;
                let pause = rand::random_range(0..(2u64 << attempt.min(5)));
                tokio::time::sleep(Duration::from_millis(pause)).await;
                match hub.load(id).await {
                    Ok(Some(fresh)) => *loaded = fresh,
                    Ok(None) => {
                        let e = HubError::NotFound(id.into());
                        return (0..n).map(|_| Err(copy(&e))).collect();
                    }
                    Err(e) => return (0..n).map(|_| Err(copy(&e))).collect(),
                }
            }
            r => break (ok, refused, r),
        }
    };
    let mut out: Vec<Option<Result<u64, HubError>>> = (0..n).map(|_| None).collect();
    for (i, e) in refused {
        out[i] = Some(Err(e));
    }
    match appended {
        Ok(()) => {
            let first = loaded.rec.seq + 1;
            for (k, (i, p)) in ok.into_iter().enumerate() {
                let seq = first + k as u64;
                match p.change {
                    ComponentChange::Put { key, .. } => {
                        loaded.components.insert(key, (seq, p.envelope));
                    }
                    ComponentChange::Remove { key } => {
                        loaded.components.remove(&key);
                    }
                }
                out[i] = Some(Ok(seq));
            }
            loaded.rec.seq += ok_len(&out);
        }
        Err(e) => {
            let e = match e {
                LogError::Conflict => HubError::Busy(id.into()),
                other => other.into(),
            };
            for (i, _) in ok {
                out[i] = Some(Err(copy(&e)));
            }
        }
    }
    out.into_iter()
        .map(|r| r.unwrap_or_else(|| Err(HubError::Invalid("update not processed".into()))))
        .collect()
}

fn ok_len(out: &[Option<Result<u64, HubError>>]) -> u64 {
    out.iter().filter(|r| matches!(r, Some(Ok(_)))).count() as u64
}

async fn append(
    log: &dyn SessionLog,
    id: &str,
    loaded: &Loaded,
    ok: &[(usize, Prepared)],
) -> Result<(), LogError> {
    if ok.is_empty() {
        return Ok(());
    }
    let bodies: Vec<String> = ok.iter().map(|(_, p)| p.body.clone()).collect();
    let span = tracing::info_span!(
        "log_append",
        session = %id,
        updates = bodies.len(),
        seq = tracing::field::Empty
    );
    let last = log
        .append_all(id, &loaded.rec.tenant_id, loaded.rec.seq, &bodies)
        .instrument(span.clone())
        .await?;
    span.record("seq", last);
    Ok(())
}

/// The same error for each waiter of a batch that failed as a whole.
pub(super) fn copy(e: &HubError) -> HubError {
    match e {
        HubError::NotFound(s) => HubError::NotFound(s.clone()),
        HubError::NotInitialized(s) => HubError::NotInitialized(s.clone()),
        HubError::OtherTenant { id, tenant } => HubError::OtherTenant {
            id: id.clone(),
            tenant: tenant.clone(),
        },
        HubError::UnknownTenant(s) => HubError::UnknownTenant(s.clone()),
        HubError::Busy(s) => HubError::Busy(s.clone()),
        HubError::Unavailable(s) => HubError::Unavailable(s.clone()),
        HubError::Invalid(s) => HubError::Invalid(s.clone()),
        HubError::Store(s) => HubError::Store(match s {
            StoreError::Conflict(m) => StoreError::Conflict(m.clone()),
            StoreError::NotFound(m) => StoreError::NotFound(m.clone()),
            StoreError::Corrupt(m) => StoreError::Corrupt(m.clone()),
            other => StoreError::Io(std::io::Error::other(other.to_string())),
        }),
    }
}
