//! Posting close summaries (and failures) to a Slack incoming webhook
//! (`SLACK_WEBHOOK_URL`): `POST {"text": "…"}` as JSON.
//!
//! Slack is a courtesy, never part of the close: a webhook that is down, slow or
//! refusing is logged and the close stands.

use crate::config::Secret;
use std::time::Duration;

/// How long one post may take before it is given up.
const TIMEOUT: Duration = Duration::from_secs(5);

/// A configured webhook.
#[derive(Clone)]
pub struct Slack {
    url: Secret,
    client: reqwest::Client,
}

impl Slack {
    pub fn new(url: Secret) -> Self {
        let client = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .build()
            .unwrap_or_default();
        Slack { url, client }
    }

    /// Posts `text`; failures are logged (without the URL, which is a credential).
    pub async fn post(&self, text: &str) {
        let body = serde_json::json!({ "text": text });
        match self.client.post(self.url.expose()).json(&body).send().await {
            Ok(res) if res.status().is_success() => {}
            Ok(res) => {
                tracing::warn!(
                    status = res.status().as_u16(),
                    "Slack webhook refused the message"
                )
            }
            Err(e) => {
                tracing::warn!(error = %e.without_url(), "Slack webhook could not be reached")
            }
        }
    }
}
