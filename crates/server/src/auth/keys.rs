//! Tenant API keys: made here for the CLI (`stonepot tenant key …`) and the admin API
//! alike, so both check labels and roles the same way. A key is random, shown once
//! when created, and stored only as its SHA-256 (see `stonepot_store::hash_api_key`);
//! listings name keys by a prefix of that hash.

use super::Role;
use stonepot_domain::TenantId;
use stonepot_store::{ApiKeyInfo, Store};

/// A fresh key: `sp_` and 160 random bits in hex.
pub fn new_api_key() -> String {
    let mut buf = [0u8; 20];
    rand::fill(&mut buf);
    format!("sp_{}", hex::encode(buf))
}

/// Why a key could not be made.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("label: between 1 and 64 printable characters")]
    BadLabel,
    #[error("role: '{0}' is not staff or operator (admins sign in with a token)")]
    BadRole(String),
    #[error("no tenant '{0}'")]
    NoTenant(TenantId),
    #[error(transparent)]
    Store(#[from] stonepot_store::StoreError),
}

/// A key as just created: the only time the key itself is seen.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedKey {
    /// The key; store it now, it is not shown again.
    pub key: String,
    /// What listings and revocation call it.
    pub id: String,
    pub label: String,
    pub role: String,
}

/// A key in a listing.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct KeyView {
    pub id: String,
    pub label: String,
    pub role: String,
    /// Unix milliseconds.
    pub created_at: i64,
    /// Unix milliseconds; absent while the key is active.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<i64>,
}

impl From<ApiKeyInfo> for KeyView {
    fn from(k: ApiKeyInfo) -> Self {
        KeyView {
            id: k.id,
            label: k.label,
            role: k.role,
            created_at: k.created_at_ms,
            revoked_at: k.revoked_at_ms,
        }
    }
}

/// The role a key may have, from its name.
pub fn key_role(raw: &str) -> Result<Role, KeyError> {
    match Role::parse(raw) {
        Some(r @ (Role::Staff | Role::Operator)) => Ok(r),
        _ => Err(KeyError::BadRole(raw.to_string())),
    }
}

/// Creates a key for `tenant` with `label` and `role`; durable before it is returned.
pub async fn create(
    store: &Store,
    tenant: &TenantId,
    label: &str,
    role: Role,
) -> Result<CreatedKey, KeyError> {
    let label = label.trim();
    if label.is_empty() || label.chars().count() > 64 || label.chars().any(char::is_control) {
        return Err(KeyError::BadLabel);
    }
    if !matches!(role, Role::Staff | Role::Operator) {
        return Err(KeyError::BadRole(role.as_str().into()));
    }
    if store.tenant(tenant).await?.is_none() {
        return Err(KeyError::NoTenant(tenant.clone()));
    }
    let key = new_api_key();
    store
        .add_api_key_as(tenant, &key, label, role.as_str())
        .await?;
    let id = stonepot_store::hash_api_key(&key)
        .chars()
        .take(stonepot_store::KEY_ID_LEN)
        .collect();
    Ok(CreatedKey {
        key,
        id,
        label: label.to_string(),
        role: role.as_str().into(),
    })
}
