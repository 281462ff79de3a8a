//! A small client for the parts of the Stripe API Checkout needs: create, retrieve and
//! expire a Checkout Session, and create a refund.
//!
//! Stripe takes form-encoded bodies (`line_items[0][price_data][unit_amount]=…`) with
//! `Authorization: Bearer <secret key>` and answers JSON. Every create carries an
//! `Idempotency-Key` chosen by the caller from what it is creating (an order and its
//! attempt, a refund id), so a create retried after a timeout gets the first answer
//! back instead of making a second session or refund. Answers are read as untyped JSON
//! and only the fields used are checked, so new fields Stripe adds never break us.

use crate::config::Secret;
use crate::error::ApiError;
use axum::http::StatusCode;
use serde_json::Value;
use std::time::Duration;

/// How long a call to Stripe may take in all.
const TIMEOUT: Duration = Duration::from_secs(20);

/// Why a call to Stripe failed.
#[derive(Debug, thiserror::Error)]
pub enum StripeError {
    #[error("Stripe could not be reached: {0}")]
    Unreachable(String),
    /// A 4xx: Stripe refused what we sent (its own message, which names the problem).
    #[error("Stripe refused the request ({status}): {message}")]
    Refused {
        status: u16,
        code: Option<String>,
        message: String,
    },
    /// A 5xx or 429: Stripe could not answer now.
    #[error("Stripe failed ({status}): {message}")]
    Unavailable { status: u16, message: String },
    #[error("Stripe answered with something unexpected: {0}")]
    Malformed(String),
}

impl From<StripeError> for ApiError {
    fn from(e: StripeError) -> Self {
        tracing::warn!(error = %e, "stripe call failed");
        match e {
            StripeError::Refused { message, .. } => ApiError::new(
                StatusCode::BAD_GATEWAY,
                "payment_provider_refused",
                format!("Stripe refused the request: {message}"),
            ),
            StripeError::Unreachable(_)
            | StripeError::Unavailable { .. }
            | StripeError::Malformed(_) => {
                let mut e = ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "payment_provider_unavailable",
                    "Stripe is not answering properly right now; try again shortly",
                );
                e.retry_after = Some(5);
                e
            }
        }
    }
}

/// A Checkout Session, as Stripe returns it (in API answers and in events).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutSession {
    pub id: String,
    /// Absent once the session is complete or expired.
    pub url: Option<String>,
    /// Minor units.
    pub amount_total: i64,
    /// Lower-case ISO code.
    pub currency: String,
    /// `open`, `complete` or `expired`.
    pub status: String,
    /// `paid`, `unpaid` or `no_payment_required`.
    pub payment_status: String,
    pub payment_intent: Option<String>,
    /// Unix seconds.
    pub expires_at: i64,
    pub client_reference_id: Option<String>,
    pub metadata_order_id: Option<String>,
    pub metadata_tenant_id: Option<String>,
}

fn text(v: &Value, field: &str) -> Result<String, String> {
    v.get(field)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| format!("{field}: missing or not a string"))
}

fn opt_text(v: &Value, field: &str) -> Option<String> {
    v.get(field).and_then(Value::as_str).map(str::to_string)
}

/// A whole number that fits in i64 (`1e30`, `12.5` and `"12"` do not).
fn whole(v: &Value, field: &str) -> Result<i64, String> {
    match v.get(field) {
        None | Some(Value::Null) => Err(format!("{field}: missing")),
        Some(n) => n.as_i64().ok_or_else(|| {
            format!("{field}: {n} is not a whole number of minor units within range")
        }),
    }
}

impl CheckoutSession {
    /// Reads a session object, naming the first field that is missing or wrong.
    pub fn from_json(v: &Value) -> Result<CheckoutSession, String> {
        if v.get("object").and_then(Value::as_str) != Some("checkout.session") {
            return Err("object: not a checkout.session".into());
        }
        let id = text(v, "id")?;
        if !valid_id(&id) {
            return Err("id: not a Stripe object id".into());
        }
        // `payment_intent` is an id, or the expanded object.
        let payment_intent = match v.get("payment_intent") {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Object(o)) => o.get("id").and_then(Value::as_str).map(str::to_string),
            _ => None,
        };
        let metadata = v.get("metadata").cloned().unwrap_or(Value::Null);
        Ok(CheckoutSession {
            id,
            url: opt_text(v, "url"),
            amount_total: whole(v, "amount_total")?,
            currency: text(v, "currency")?.to_ascii_lowercase(),
            status: text(v, "status")?,
            payment_status: text(v, "payment_status")?,
            payment_intent,
            expires_at: whole(v, "expires_at")?,
            client_reference_id: opt_text(v, "client_reference_id"),
            metadata_order_id: opt_text(&metadata, "order_id"),
            metadata_tenant_id: opt_text(&metadata, "tenant_id"),
        })
    }

    /// Whether the money is captured (or none was needed).
    pub fn is_paid(&self) -> bool {
        matches!(self.payment_status.as_str(), "paid" | "no_payment_required")
    }
}

/// A refund, as Stripe returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refund {
    pub id: String,
    pub amount: i64,
    /// `pending`, `requires_action`, `succeeded`, `failed` or `canceled`.
    pub status: String,
}

/// What a new Checkout Session is for.
#[derive(Debug, Clone)]
pub struct NewCheckout<'a> {
    pub tenant_id: &'a str,
    pub order_id: &'a str,
    /// Minor units; the session's one line is exactly this.
    pub amount: i64,
    /// Lower-case ISO code.
    pub currency: &'a str,
    /// The line's name on Stripe's page.
    pub name: &'a str,
    pub success_url: &'a str,
    pub cancel_url: &'a str,
    /// Unix seconds (Stripe wants 30 minutes to 24 hours from now).
    pub expires_at: i64,
    pub idempotency_key: &'a str,
}

/// Whether `id` looks like a Stripe object id (`cs_test_a1B2…`): it goes into URL
/// paths, so nothing else may.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 255 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The Stripe API client; cheap to clone.
#[derive(Clone)]
pub struct StripeClient {
    http: reqwest::Client,
    base: String,
    key: Secret,
}

impl std::fmt::Debug for StripeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeClient")
            .field("base", &self.base)
            .field("key", &self.key)
            .finish()
    }
}

impl StripeClient {
    /// A client for the API at `base` (`https://api.stripe.com`) with the secret key.
    pub fn new(base: &str, key: Secret) -> anyhow::Result<StripeClient> {
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .connect_timeout(Duration::from_secs(5))
            .build()?;
        Ok(StripeClient {
            http,
            base: base.trim_end_matches('/').to_string(),
            key: key.clone(),
        })
    }

    /// Creates a Checkout Session for one order: one line for the whole total (so
    /// `amount_total` is the total exactly, whatever Stripe's rounding of lines), the
    /// order named in `client_reference_id` and the metadata.
    pub async fn create_checkout_session(
        &self,
        c: &NewCheckout<'_>,
    ) -> Result<CheckoutSession, StripeError> {
        let amount = c.amount.to_string();
        let expires = c.expires_at.to_string();
        let form: Vec<(&str, &str)> = vec![
            ("mode", "payment"),
            ("line_items[0][quantity]", "1"),
            ("line_items[0][price_data][currency]", c.currency),
            ("line_items[0][price_data][unit_amount]", &amount),
            ("line_items[0][price_data][product_data][name]", c.name),
            ("client_reference_id", c.order_id),
            ("metadata[order_id]", c.order_id),
            ("metadata[tenant_id]", c.tenant_id),
            ("payment_intent_data[metadata][order_id]", c.order_id),
            ("payment_intent_data[metadata][tenant_id]", c.tenant_id),
            ("success_url", c.success_url),
            ("cancel_url", c.cancel_url),
            ("expires_at", &expires),
        ];
        let v = self
            .send(
                self.http
                    .post(self.url("/v1/checkout/sessions"))
                    .form(&form),
                Some(c.idempotency_key),
            )
            .await?;
        CheckoutSession::from_json(&v).map_err(StripeError::Malformed)
    }

    /// Retrieves a Checkout Session.
    pub async fn retrieve_checkout_session(
        &self,
        id: &str,
    ) -> Result<CheckoutSession, StripeError> {
        if !valid_id(id) {
            return Err(StripeError::Malformed(format!(
                "'{id}' is not a session id"
            )));
        }
        let v = self
            .send(
                self.http
                    .get(self.url(&format!("/v1/checkout/sessions/{id}"))),
                None,
            )
            .await?;
        CheckoutSession::from_json(&v).map_err(StripeError::Malformed)
    }

    /// Expires an open Checkout Session so it can no longer be paid.
    pub async fn expire_checkout_session(&self, id: &str) -> Result<CheckoutSession, StripeError> {
        if !valid_id(id) {
            return Err(StripeError::Malformed(format!(
                "'{id}' is not a session id"
            )));
        }
        let v = self
            .send(
                self.http
                    .post(self.url(&format!("/v1/checkout/sessions/{id}/expire"))),
                None,
            )
            .await?;
        CheckoutSession::from_json(&v).map_err(StripeError::Malformed)
    }

    /// Refunds `amount` of a payment intent.
    pub async fn create_refund(
        &self,
        payment_intent: &str,
        amount: i64,
        idempotency_key: &str,
        order_id: &str,
    ) -> Result<Refund, StripeError> {
        let amount_text = amount.to_string();
        let form = [
            ("payment_intent", payment_intent),
            ("amount", amount_text.as_str()),
            ("metadata[order_id]", order_id),
        ];
        let v = self
            .send(
                self.http.post(self.url("/v1/refunds")).form(&form),
                Some(idempotency_key),
            )
            .await?;
        if v.get("object").and_then(Value::as_str) != Some("refund") {
            return Err(StripeError::Malformed("object: not a refund".into()));
        }
        Ok(Refund {
            id: text(&v, "id").map_err(StripeError::Malformed)?,
            amount: whole(&v, "amount").map_err(StripeError::Malformed)?,
            status: text(&v, "status").map_err(StripeError::Malformed)?,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn send(
        &self,
        req: reqwest::RequestBuilder,
        idempotency_key: Option<&str>,
    ) -> Result<Value, StripeError> {
        let mut req = req.bearer_auth(self.key.expose());
        if let Some(k) = idempotency_key {
            req = req.header("Idempotency-Key", k);
        }
        let res = req
            .send()
            .await
            .map_err(|e| StripeError::Unreachable(e.without_url().to_string()))?;
        let status = res.status().as_u16();
        let body = res
            .bytes()
            .await
            .map_err(|e| StripeError::Unreachable(e.without_url().to_string()))?;
        let v: Value = serde_json::from_slice(&body)
            .map_err(|e| StripeError::Malformed(format!("HTTP {status}, not JSON: {e}")))?;
        if (200..300).contains(&status) {
            return Ok(v);
        }
        let err = v.get("error").cloned().unwrap_or(Value::Null);
        let message = opt_text(&err, "message").unwrap_or_else(|| format!("HTTP {status}"));
        if status == 429 || status >= 500 {
            return Err(StripeError::Unavailable { status, message });
        }
        Err(StripeError::Refused {
            status,
            code: opt_text(&err, "code"),
            message,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn session() -> Value {
        json!({
            "id": "cs_test_1", "object": "checkout.session", "url": "https://pay.example/cs_test_1",
            "amount_total": 1299, "currency": "USD", "status": "complete", "payment_status": "paid",
            "payment_intent": {"id": "pi_1", "object": "payment_intent"}, "expires_at": 1_790_000_000,
            "client_reference_id": "ord-1", "metadata": {"order_id": "ord-1", "tenant_id": "t"}
        })
    }

    #[test]
    fn reads_a_session_and_names_what_is_wrong() {
        let s = CheckoutSession::from_json(&session()).unwrap();
        assert_eq!(s.currency, "usd");
        assert_eq!(s.payment_intent.as_deref(), Some("pi_1"));
        assert_eq!(s.metadata_order_id.as_deref(), Some("ord-1"));
        assert!(s.is_paid());
        for (field, value, named) in [
            ("amount_total", json!(1e30), "amount_total"),
            ("amount_total", json!(12.5), "amount_total"),
            ("amount_total", json!("1299"), "amount_total"),
            ("amount_total", Value::Null, "amount_total"),
            ("currency", json!(7), "currency"),
            ("object", json!("refund"), "object"),
            ("id", json!("cs/../x"), "id"),
        ] {
            let mut v = session();
            v[field] = value;
            let e = CheckoutSession::from_json(&v).unwrap_err();
            assert!(e.starts_with(named), "{field}: {e}");
        }
        // A number past i64, kept exact by arbitrary precision, is refused too.
        let v: Value = serde_json::from_str(
            &session()
                .to_string()
                .replace("1299", "99999999999999999999999"),
        )
        .unwrap();
        assert!(
            CheckoutSession::from_json(&v)
                .unwrap_err()
                .contains("within range")
        );
    }

    #[test]
    fn the_key_never_shows() {
        let c = StripeClient::new("http://127.0.0.1:1", Secret::new("sk_test_hidden")).unwrap();
        assert!(!format!("{c:?}").contains("sk_test_hidden"));
    }
}
