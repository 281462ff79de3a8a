//! The close scheduler: once a second, every tenant whose cron pattern fired since the
//! last look (on the wall clock of its close time zone, so daylight-saving changes move
//! the run with the local clock) gets the close of the latest business day that has
//! ended.
//!
//! Settings are read afresh on every look, so a change through the API takes effect
//! within a second. Runs happen on their own tasks and never overlap for one day (the
//! [`Closer`] skips a day that is already running). Runs missed while the server was
//! down are not replayed; run them with `stonepot close` or the API.

use super::{CloseFailure, Closer};
use jiff::Timestamp;
use std::sync::Arc;
use std::time::Duration;
use stonepot_domain::TenantId;
use stonepot_domain::commerce::close::CloseSettings;
use stonepot_store::Store;
use tokio_util::sync::CancellationToken;

/// How often the schedules are looked at.
const TICK: Duration = Duration::from_secs(1);

/// The closes due in `(after, until]`: each tenant whose schedule fired in that span,
/// with the business date to close (the latest one ended at the firing time).
pub fn due(
    schedules: &[(TenantId, CloseSettings)],
    after: Timestamp,
    until: Timestamp,
) -> Vec<(TenantId, String)> {
    let mut out = Vec::new();
    for (tenant, settings) in schedules {
        let Some(fired) = settings.next_run_after(after).filter(|t| *t <= until) else {
            continue;
        };
        match settings.last_ended_date(fired) {
            Ok(date) => out.push((tenant.clone(), date.to_string())),
            Err(e) => tracing::warn!(tenant = %tenant, error = %e, "no business date to close"),
        }
    }
    out
}

/// Starts the scheduler; it stops when `shutdown` fires.
pub fn spawn(closer: Arc<Closer>, store: Store, shutdown: CancellationToken) {
    tokio::spawn(async move {
        let mut last = Timestamp::now();
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.cancelled() => break,
            }
            let now = Timestamp::now();
            if now <= last {
                continue;
            }
            let schedules = match store.close_schedules().await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "could not read the close schedules");
                    continue;
                }
            };
            let valid: Vec<(TenantId, CloseSettings)> = schedules
                .into_iter()
                .filter_map(|(t, s)| match s {
                    Ok(s) => Some((t, s)),
                    Err(e) => {
                        tracing::warn!(tenant = %t, error = %e, "close settings are invalid; not scheduling");
                        None
                    }
                })
                .collect();
            for (tenant, date) in due(&valid, last, now) {
                let closer = closer.clone();
                tokio::spawn(async move {
                    match closer.run(&tenant, &date, false).await {
                        Ok(_) => {}
                        Err(CloseFailure::Busy { .. }) => {
                            tracing::debug!(tenant = %tenant, date, "close already running; skipped")
                        }
                        Err(e) if e.is_internal() => {} // logged and posted by the closer
                        Err(e) => {
                            tracing::info!(tenant = %tenant, date, reason = %e, "scheduled close skipped")
                        }
                    }
                });
            }
            last = now;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn a_new_york_close_follows_the_clock_change() {
        let t = TenantId::new("t").unwrap();
        let ny = CloseSettings::new("16:00", "America/New_York", "0 5 16 * * *").unwrap();
        let s = vec![(t.clone(), ny)];
        // Saturday 2026-03-07, EST: 16:05 local is 21:05Z.
        assert_eq!(
            due(&s, ts("2026-03-07T21:04:59Z"), ts("2026-03-07T21:05:00Z")),
            vec![(t.clone(), "2026-03-06".to_string())]
        );
        // Sunday 2026-03-08, after the change to EDT: 16:05 local is 20:05Z, and
        // nothing fires at the old UTC time.
        assert_eq!(
            due(&s, ts("2026-03-08T20:04:59Z"), ts("2026-03-08T20:05:00Z")),
            vec![(t.clone(), "2026-03-07".to_string())]
        );
        assert!(due(&s, ts("2026-03-08T20:05:00Z"), ts("2026-03-08T21:10:00Z")).is_empty());
        // The business day closed that Sunday spans the change: 23 hours.
        let w = s[0].1.window(jiff::civil::date(2026, 3, 7)).unwrap();
        assert_eq!(w.minutes(), 23 * 60);
    }

    #[test]
    fn nothing_is_due_between_runs() {
        let t = TenantId::new("t").unwrap();
        let s = vec![(t, CloseSettings::default())];
        assert!(due(&s, ts("2026-11-23T16:05:00Z"), ts("2026-11-24T16:04:59Z")).is_empty());
    }
}
