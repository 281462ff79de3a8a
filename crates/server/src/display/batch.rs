//! Batched updates: the updates that queue up behind a session's lock are validated in
//! order and appended together, one commit (and one disk sync) for the lot.
//!
//! Most sessions see one writer at a time, and a batch is then just that one update. A
//! kitchen board is different: every order of the tenant writes to it, twice. Appending
//! those one at a time would serialize the tenant's orders on one sync after another;
//! batching lets throughput grow with the number of guests instead.

use super::HubError;
use super::hub::{Loaded, Traced, UpdateCommand, singleton};
use super::log::{LogError, SessionLog};
use serde_json::{Value, json};
use std::collections::HashMap;
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
    (cmd, trace): Traced,
    batch: &HashMap<String, bool>,
) -> Result<Prepared, HubError> {
    let (envelope, change) = match cmd {
        UpdateCommand::Put { kind, data, key } => {
            let normalized = stonepot_domain::display::normalize(
                loaded.rec.category,
                &kind,
                &data,
                loaded.currency,
            )
            .map_err(|e| HubError::Invalid(e.to_string()))?;
            let key = match key {
                Some(k) => k,
                None if singleton(&kind) => kind.clone(),
                None => format!("{kind}-{seq}"),
            };
            let env = json!({"type": kind, "key": key, "data": normalized});
            let body = env.to_string();
            (env, ComponentChange::Put { key, body })
        }
        UpdateCommand::Remove { key } => {
            let exists = batch
                .get(&key)
                .copied()
                .unwrap_or_else(|| loaded.components.contains_key(&key));
            if !exists {
                return Err(HubError::Invalid(format!("key: no component '{key}'")));
            }
            (
                json!({"op": "remove", "key": key}),
                ComponentChange::Remove { key },
            )
        }
    };
    // The trace the update was sent under travels with it to every display (and into
    // the log, so a replay names it too).
    let mut envelope = envelope;
    if let (Some(trace), Some(o)) = (trace, envelope.as_object_mut()) {
        o.insert("traceId".into(), Value::String(trace));
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
        match prepare(loaded, seq, cmd.clone(), &keys) {
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

/// Appends the valid commands of `cmds` to the locked session in one batch and applies
/// them to its state; each command's seq or refusal, in order. `reload` reads the
/// session afresh after another process moved it (a conflict), for one retry.
pub(super) async fn apply_batch(
    log: &dyn SessionLog,
    id: &str,
    loaded: &mut Loaded,
    cmds: Vec<Traced>,
    reload: impl AsyncFnOnce() -> Result<Loaded, HubError>,
) -> Vec<Result<u64, HubError>> {
    let n = cmds.len();
    let (mut ok, mut refused) = prepare_all(loaded, &cmds);
    let mut appended = append(log, id, loaded, &ok).await;
    if let Err(LogError::Conflict) = appended {
        match reload().await {
            Ok(fresh) => {
                *loaded = fresh;
                (ok, refused) = prepare_all(loaded, &cmds);
                appended = append(log, id, loaded, &ok).await;
            }
            Err(e) => return (0..n).map(|_| Err(copy(&e))).collect(),
        }
    }
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
            let e: HubError = match e {
                LogError::Conflict => {
                    HubError::Invalid("seq: the session is being written elsewhere; retry".into())
                }
                LogError::Store(s) => s.into(),
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
        HubError::Invalid(s) => HubError::Invalid(s.clone()),
        HubError::Store(s) => HubError::Store(match s {
            StoreError::Conflict(m) => StoreError::Conflict(m.clone()),
            StoreError::NotFound(m) => StoreError::NotFound(m.clone()),
            StoreError::Corrupt(m) => StoreError::Corrupt(m.clone()),
            other => StoreError::Io(std::io::Error::other(other.to_string())),
        }),
    }
}
