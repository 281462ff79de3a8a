//! What an update appends (its envelope) and the state document built from a session.

use super::{HubError, Loaded, UpdateCommand, singleton};
use serde_json::{Map, Value, json};
use stonepot_store::ComponentChange;

/// The envelope an update appends to `loaded` as entry `seq`, and the component change
/// it makes. `exists` says whether a key is a component at that point (a batch's earlier
/// updates may have put or removed it).
pub(super) fn envelope(
    loaded: &Loaded,
    cmd: &UpdateCommand,
    seq: u64,
    exists: impl Fn(&str) -> bool,
) -> Result<(Value, ComponentChange), HubError> {
    Ok(match cmd {
        UpdateCommand::Put { kind, data, key } => {
            let normalized = stonepot_domain::display::normalize(
                loaded.rec.category,
                kind,
                data,
                loaded.currency,
            )
            .map_err(|e| HubError::Invalid(e.to_string()))?;
            let key = match key {
                Some(k) => k.clone(),
                None if singleton(kind) => kind.clone(),
                None => format!("{kind}-{seq}"),
            };
            let env = json!({"type": kind, "key": key, "data": normalized});
            let body = env.to_string();
            (env, ComponentChange::Put { key, body })
        }
        UpdateCommand::Remove { key } => {
            if !exists(key) {
                return Err(HubError::Invalid(format!("key: no component '{key}'")));
            }
            (
                json!({"op": "remove", "key": key}),
                ComponentChange::Remove { key: key.clone() },
            )
        }
    })
}

/// `{"components": {key: envelope+seq}, "order": [keys by seq]}`.
pub(super) fn state_json(l: &Loaded) -> Value {
    let mut comps = Map::new();
    let mut order: Vec<(u64, &String)> = Vec::new();
    for (k, (seq, env)) in &l.components {
        let mut e = env.clone();
        if let Some(o) = e.as_object_mut() {
            o.insert("seq".into(), json!(seq));
        }
        comps.insert(k.clone(), e);
        order.push((*seq, k));
    }
    order.sort();
    json!({
        "components": comps,
        "order": order.into_iter().map(|(_, k)| k.clone()).collect::<Vec<_>>(),
    })
}
