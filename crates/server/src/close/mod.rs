//! Running a daily close: check the date, read the day's facts, compute and render the
//! report, keep it (original or amendment) in the store, copy it to object storage, and
//! tell Slack.
//!
//! The store is the record: a revision is committed before anything else happens, and
//! the objects `closes/{tenant}/{date}/r{revision}.json` and `.csv` are copies of it. A
//! re-run whose bytes equal the latest revision writes nothing new but puts back any
//! copy that is missing, so a failed upload heals on the next run.
//!
//! The same (tenant, date) never runs twice at once in this process: an API call waits
//! for a running close of its day, the scheduler skips it. Across processes the store's
//! key (tenant, date, revision) keeps two runs from taking the same revision.

pub mod schedule;
pub mod slack;

use crate::objects::{Objects, ObjectsError};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use stonepot_domain::TenantId;
use stonepot_domain::commerce::PaymentMethod;
use stonepot_domain::commerce::close::render::render;
use stonepot_domain::commerce::close::{
    CloseError, CloseInput, CloseReport, CloseSettings, DayError,
};
use stonepot_store::{CloseRecord, CloseSaved, NewClose, Store, StoreError};

pub use slack::Slack;

/// Verified payment-provider events, for reconciling online orders. The Stripe
/// integration implements this over its table of verified webhook events; until then
/// [`NoProvider`] reports that nothing was checked.
#[async_trait::async_trait]
pub trait ProviderPayments: Send + Sync {
    /// For each of `order_ids` (the tenant's Stripe orders of the day), the sum of its
    /// verified payment events; `None` when no provider data exists at all.
    async fn verified(
        &self,
        tenant: &TenantId,
        order_ids: &[String],
    ) -> Result<Option<BTreeMap<String, i64>>, StoreError>;
}

/// No provider integration: Stripe orders are checked against their audit entries only.
pub struct NoProvider;

#[async_trait::async_trait]
impl ProviderPayments for NoProvider {
    async fn verified(
        &self,
        _tenant: &TenantId,
        _order_ids: &[String],
    ) -> Result<Option<BTreeMap<String, i64>>, StoreError> {
        Ok(None)
    }
}

/// Why a close did not run.
#[derive(Debug, thiserror::Error)]
pub enum CloseFailure {
    #[error("{0}")]
    BadInput(#[from] DayError),
    #[error("no tenant '{0}'")]
    UnknownTenant(String),
    #[error("the business day {date} has not started yet (it starts at {starts})")]
    Future { date: String, starts: String },
    #[error("the business day {date} ended at {ended}, before tenant {tenant} existed ({created})")]
    BeforeTenant {
        tenant: String,
        date: String,
        ended: String,
        created: String,
    },
    #[error("a close of {tenant} for {date} is already running")]
    Busy { tenant: String, date: String },
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("the close was stored, but copying it to object storage failed: {0}")]
    Objects(#[from] ObjectsError),
    #[error("{0}")]
    Report(#[from] CloseError),
    #[error("rendering the report: {0}")]
    Render(#[from] serde_json::Error),
}

impl CloseFailure {
    /// A fault of the system rather than of the request (these go to Slack).
    pub fn is_internal(&self) -> bool {
        matches!(
            self,
            CloseFailure::Store(_)
                | CloseFailure::Objects(_)
                | CloseFailure::Report(_)
                | CloseFailure::Render(_)
        )
    }
}

/// What one run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Revision 0: the day's first close.
    Created,
    /// The same bytes as the latest revision: nothing new was stored.
    Unchanged,
    /// A new revision beside the earlier ones.
    Amended,
}

/// A finished run.
#[derive(Debug, Clone)]
pub struct CloseRun {
    pub tenant: TenantId,
    pub outcome: Outcome,
    pub record: CloseRecord,
    pub report: CloseReport,
    /// Whether the business day was over when the close ran (a day closed while still
    /// running will likely be amended).
    pub day_ended: bool,
    /// The object paths of the JSON and the CSV.
    pub objects: [String; 2],
}

impl CloseRun {
    /// The JSON the API and the CLI answer with.
    pub fn body(&self) -> Value {
        json!({
            "tenant": self.tenant.as_str(),
            "businessDate": self.record.business_date,
            "outcome": self.outcome,
            "revision": self.record.revision,
            "sha256": self.record.sha256,
            "dayEnded": self.day_ended,
            "objects": { "json": self.objects[0], "csv": self.objects[1] },
            "summary": self.report.summary(),
            "report": serde_json::to_value(&self.report).unwrap_or(Value::Null),
        })
    }
}

/// The object path of a revision's rendering (`ext` is `json` or `csv`).
pub fn object_path(tenant: &TenantId, date: &str, revision: u32, ext: &str) -> String {
    format!("closes/{tenant}/{date}/r{revision}.{ext}")
}

type DayLocks = HashMap<(String, String), Arc<tokio::sync::Mutex<()>>>;

/// Runs closes; shared by the API, the scheduler and the CLI.
pub struct Closer {
    store: Store,
    objects: Objects,
    slack: Option<Slack>,
    provider: Arc<dyn ProviderPayments>,
    locks: Mutex<DayLocks>,
}

impl Closer {
    pub fn new(store: Store, objects: Objects, slack: Option<Slack>) -> Closer {
        Closer {
            store,
            objects,
            slack,
            provider: Arc::new(NoProvider),
            locks: Mutex::new(HashMap::new()),
        }
    }

    /// Plugs in verified provider events (the Stripe integration).
    pub fn with_provider(mut self, provider: Arc<dyn ProviderPayments>) -> Closer {
        self.provider = provider;
        self
    }

    /// The tenant's settings, or the defaults.
    pub async fn settings(&self, tenant: &TenantId) -> Result<CloseSettings, StoreError> {
        Ok(self.store.close_settings(tenant).await?.unwrap_or_default())
    }

    /// Closes `date` (`YYYY-MM-DD`) for `tenant`. With `wait`, a run of the same day
    /// already going is waited for; without, it is [`CloseFailure::Busy`]. Internal
    /// failures are posted to Slack; every outcome that stores a revision posts the
    /// summary.
    pub async fn run(
        &self,
        tenant: &TenantId,
        date: &str,
        wait: bool,
    ) -> Result<CloseRun, CloseFailure> {
        let result = self.run_inner(tenant, date, wait).await;
        match &result {
            Ok(run) if run.outcome != Outcome::Unchanged => {
                tracing::info!(tenant = %tenant, date, revision = run.record.revision, outcome = ?run.outcome, "daily close stored");
                if let Some(slack) = &self.slack {
                    let prefix = match run.outcome {
                        Outcome::Amended => format!("(amendment r{}) ", run.record.revision),
                        _ => String::new(),
                    };
                    slack
                        .post(&format!("{prefix}{}", run.report.summary()))
                        .await;
                }
            }
            Ok(_) => {}
            Err(e) if e.is_internal() => {
                tracing::error!(tenant = %tenant, date, error = %e, "daily close failed");
                if let Some(slack) = &self.slack {
                    slack
                        .post(&format!("Daily close FAILED for {tenant} {date}: {e}"))
                        .await;
                }
            }
            Err(_) => {}
        }
        result
    }

    fn day_lock(&self, tenant: &TenantId, date: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        // Forget days nobody is running (only this map holds their lock).
        locks.retain(|_, l| Arc::strong_count(l) > 1);
        locks
            .entry((tenant.to_string(), date.to_string()))
            .or_default()
            .clone()
    }

    async fn run_inner(
        &self,
        tenant_id: &TenantId,
        date_text: &str,
        wait: bool,
    ) -> Result<CloseRun, CloseFailure> {
        let date = stonepot_domain::commerce::close::day::parse_date(date_text)?;
        let tenant = self
            .store
            .tenant(tenant_id)
            .await?
            .ok_or_else(|| CloseFailure::UnknownTenant(tenant_id.to_string()))?;
        let settings = self.settings(tenant_id).await?;
        let window = settings.window(date)?;
        let now = jiff::Timestamp::now();
        if window.start > now {
            return Err(CloseFailure::Future {
                date: date.to_string(),
                starts: window.start.to_string(),
            });
        }
        let created = self
            .store
            .tenant_created_at(tenant_id)
            .await?
            .unwrap_or(stonepot_domain::UnixMs(0));
        if window.end_ms() <= created.0 {
            return Err(CloseFailure::BeforeTenant {
                tenant: tenant_id.to_string(),
                date: date.to_string(),
                ended: window.end.to_string(),
                created: created.to_rfc3339(),
            });
        }
        let lock = self.day_lock(tenant_id, &date.to_string());
        let _guard = if wait {
            lock.lock_owned().await
        } else {
            lock.try_lock_owned().map_err(|_| CloseFailure::Busy {
                tenant: tenant_id.to_string(),
                date: date.to_string(),
            })?
        };
        let (orders, events) = self.store.close_facts(tenant_id, &window).await?;
        let stripe: Vec<String> = orders
            .iter()
            .filter(|o| o.payment_method == PaymentMethod::Stripe)
            .map(|o| o.id.clone())
            .collect();
        let provider_payments = if stripe.is_empty() {
            None
        } else {
            self.provider.verified(tenant_id, &stripe).await?
        };
        let input = CloseInput {
            tenant: tenant_id.to_string(),
            currency: tenant.currency,
            window: window.clone(),
            orders,
            events,
            provider_payments,
        };
        let report = CloseReport::compute(&input)?;
        let rendered = render(&report)?;
        let json_text = String::from_utf8_lossy(&rendered.json);
        let csv_text = String::from_utf8_lossy(&rendered.csv);
        let date_text = date.to_string();
        let saved = self
            .store
            .save_close(
                tenant_id,
                &NewClose {
                    business_date: &date_text,
                    report: &json_text,
                    csv: &csv_text,
                    sha256: &rendered.sha256,
                    window_start: window.start_ms(),
                    window_end: window.end_ms(),
                },
            )
            .await?;
        let outcome = match &saved {
            CloseSaved::Unchanged(_) => Outcome::Unchanged,
            CloseSaved::Created(r) if r.revision == 0 => Outcome::Created,
            CloseSaved::Created(_) => Outcome::Amended,
        };
        let record = match saved {
            CloseSaved::Unchanged(r) | CloseSaved::Created(r) => r,
        };
        let objects = self.copy_out(tenant_id, &record, outcome).await?;
        Ok(CloseRun {
            tenant: tenant_id.clone(),
            outcome,
            record,
            report,
            day_ended: window.end <= now,
            objects,
        })
    }

    /// Writes the revision's JSON and CSV objects (a new revision always; an unchanged
    /// one only where a copy is missing).
    async fn copy_out(
        &self,
        tenant: &TenantId,
        record: &CloseRecord,
        outcome: Outcome,
    ) -> Result<[String; 2], ObjectsError> {
        let json_path = object_path(tenant, &record.business_date, record.revision, "json");
        let csv_path = object_path(tenant, &record.business_date, record.revision, "csv");
        for (path, bytes, content_type) in [
            (&json_path, &record.report, "application/json"),
            (&csv_path, &record.csv, "text/csv; charset=utf-8"),
        ] {
            if outcome == Outcome::Unchanged && self.objects.exists(path).await? {
                continue;
            }
            self.objects
                .put(path, bytes.as_bytes().to_vec(), content_type)
                .await?;
        }
        Ok([json_path, csv_path])
    }
}
