//! A small Prometheus registry owned by the app (no global recorder, so several servers
//! in one test process keep separate figures). Labels are low-cardinality: the matched
//! route template, the method and the status code.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, secs: f64) {
        for (i, upper) in BUCKETS.iter().enumerate() {
            if secs <= *upper
                && let Some(c) = self.counts.get_mut(i)
            {
                *c += 1;
            }
        }
        self.sum += secs;
        self.count += 1;
    }
}

#[derive(PartialEq, Eq, PartialOrd, Ord, Clone)]
struct Key {
    route: String,
    method: String,
    status: u16,
}

/// Figures of the conversation turns answered by one target.
#[derive(Default, Clone)]
struct TurnFigures {
    /// Turns by status (`ok`, `error`, `cancelled`).
    by_status: BTreeMap<String, u64>,
    duration: Histogram,
    first_token: Histogram,
    input_tokens: u64,
    output_tokens: u64,
    cached_tokens: u64,
    cost_micros: u64,
}

/// One finished turn, as the metrics see it.
pub struct TurnSample<'a> {
    pub target: &'a str,
    pub status: &'a str,
    pub took: Duration,
    pub first_token: Option<Duration>,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cached_tokens: u64,
    pub cost_micros: u64,
}

/// Request figures plus gauges later capabilities register.
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<Key, Histogram>>,
    turns: Mutex<BTreeMap<String, TurnFigures>>,
    /// Voice latency by stage (see [`Metrics::observe_voice`]).
    voice: Mutex<BTreeMap<&'static str, Histogram>>,
    pub in_flight: AtomicI64,
    pub rate_limited: AtomicI64,
    /// Kitchen tickets fired (one per order that reached the kitchen).
    pub tickets_fired: AtomicI64,
    /// Receipts written (one per paid order).
    pub receipts_written: AtomicI64,
    /// Orders paid by a payment provider (one per order, however many events).
    pub payments_captured: AtomicI64,
    /// Payment events (webhooks, redirects) seen again and ignored.
    pub payment_duplicates: AtomicI64,
    /// Payments that did not match their order and were flagged instead.
    pub payments_flagged: AtomicI64,
    /// Webhooks refused for their signature.
    pub webhooks_rejected: AtomicI64,
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Resident set size of this process in bytes, from `/proc/self/statm`.
pub fn process_rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

impl Metrics {
    pub fn observe(&self, route: &str, method: &str, status: u16, took: Duration) {
        let key = Key {
            route: route.to_string(),
            method: method.to_string(),
            status,
        };
        if let Ok(mut map) = self.requests.lock() {
            map.entry(key).or_default().observe(took.as_secs_f64());
        }
    }

    /// Records a finished conversation turn under the target that answered it.
    pub fn ticket_fired(&self) {
        self.tickets_fired.fetch_add(1, Ordering::Relaxed);
    }

    pub fn receipt_written(&self) {
        self.receipts_written.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds one to a counter (`metrics.count(&metrics.payments_flagged)`).
    pub fn count(&self, counter: &AtomicI64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn observe_turn(&self, t: &TurnSample<'_>) {
        if let Ok(mut map) = self.turns.lock() {
            let f = map.entry(t.target.to_string()).or_default();
            *f.by_status.entry(t.status.to_string()).or_default() += 1;
            f.duration.observe(t.took.as_secs_f64());
            if let Some(ft) = t.first_token {
                f.first_token.observe(ft.as_secs_f64());
            }
            f.input_tokens += t.input_tokens;
            f.output_tokens += t.output_tokens;
            f.cached_tokens += t.cached_tokens;
            f.cost_micros += t.cost_micros;
        }
    }

    fn render_turns(&self, out: &mut String) {
        let turns: Vec<(String, TurnFigures)> = self
            .turns
            .lock()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        if turns.is_empty() {
            return;
        }
        let _ = writeln!(
            out,
            "# HELP stonepot_agent_turns_total Conversation turns by answering target and outcome.\n# TYPE stonepot_agent_turns_total counter"
        );
        for (target, f) in &turns {
            for (status, n) in &f.by_status {
                let _ = writeln!(
                    out,
                    "stonepot_agent_turns_total{{target=\"{}\",status=\"{}\"}} {n}",
                    escape(target),
                    escape(status)
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP stonepot_llm_tokens_total Model tokens by target and kind (cached is part of input).\n# TYPE stonepot_llm_tokens_total counter"
        );
        for (target, f) in &turns {
            for (kind, n) in [
                ("input", f.input_tokens),
                ("output", f.output_tokens),
                ("cached", f.cached_tokens),
            ] {
                let _ = writeln!(
                    out,
                    "stonepot_llm_tokens_total{{target=\"{}\",kind=\"{kind}\"}} {n}",
                    escape(target)
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP stonepot_llm_cost_microdollars_total Model cost from the configured price table.\n# TYPE stonepot_llm_cost_microdollars_total counter"
        );
        for (target, f) in &turns {
            let _ = writeln!(
                out,
                "stonepot_llm_cost_microdollars_total{{target=\"{}\"}} {}",
                escape(target),
                f.cost_micros
            );
        }
        for (name, help, pick) in [
            (
                "stonepot_agent_turn_duration_seconds",
                "Time from the guest's message to the end of the turn.",
                (|f: &TurnFigures| f.duration.clone()) as fn(&TurnFigures) -> Histogram,
            ),
            (
                "stonepot_agent_first_output_seconds",
                "Time from the guest's message to the first reply text or tool call.",
                |f: &TurnFigures| f.first_token.clone(),
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
            for (target, f) in &turns {
                write_histogram(
                    out,
                    name,
                    &format!("target=\"{}\"", escape(target)),
                    &pick(f),
                );
            }
        }
    }

    /// Total requests seen for a route (all methods and statuses).
    pub fn count_for(&self, route: &str) -> u64 {
        self.requests
            .lock()
            .map(|m| {
                m.iter()
                    .filter(|(k, _)| k.route == route)
                    .map(|(_, h)| h.count)
                    .sum()
            })
            .unwrap_or(0)
    }

    /// One voice latency figure. Stages: `transcript` (end of speech to final
    /// transcript), `first_token`, `first_audio` (first audio byte sent) and
    /// `first_played` (the client's playout report), all from the end of speech; and
    /// `barge_in_stop` (guest speech detected to outbound audio stopped).
    pub fn observe_voice(&self, stage: &'static str, took: Duration) {
        if let Ok(mut m) = self.voice.lock() {
            m.entry(stage).or_default().observe(took.as_secs_f64());
        }
    }

    fn render_voice(&self, out: &mut String) {
        let snapshot: Vec<(&'static str, Histogram)> = self
            .voice
            .lock()
            .map(|m| m.iter().map(|(k, h)| (*k, h.clone())).collect())
            .unwrap_or_default();
        if snapshot.is_empty() {
            return;
        }
        let name = "stonepot_voice_latency_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Voice turn latency by stage, from the end of the guest's speech (barge_in_stop: from speech detected to audio stopped).\n# TYPE {name} histogram"
        );
        for (stage, h) in &snapshot {
            write_histogram(out, name, &format!("stage=\"{stage}\""), h);
        }
    }

    /// The exposition text, with `extra` gauges appended (name, help, value).
    pub fn render(&self, extra: &[(&str, &str, f64)]) -> String {
        let snapshot: Vec<(Key, Histogram)> = self
            .requests
            .lock()
            .map(|m| m.iter().map(|(k, h)| (k.clone(), h.clone())).collect())
            .unwrap_or_default();
        let mut out = String::with_capacity(4096);
        let _ = writeln!(
            out,
            "# HELP stonepot_http_requests_total HTTP requests by matched route, method and status.\n# TYPE stonepot_http_requests_total counter"
        );
        for (k, h) in &snapshot {
            let _ = writeln!(
                out,
                "stonepot_http_requests_total{{route=\"{}\",method=\"{}\",status=\"{}\"}} {}",
                escape(&k.route),
                k.method,
                k.status,
                h.count
            );
        }
        let _ = writeln!(
            out,
            "# HELP stonepot_http_request_duration_seconds Time from request to response head.\n# TYPE stonepot_http_request_duration_seconds histogram"
        );
        for (k, h) in &snapshot {
            let labels = format!(
                "route=\"{}\",method=\"{}\",status=\"{}\"",
                escape(&k.route),
                k.method,
                k.status
            );
            write_histogram(
                &mut out,
                "stonepot_http_request_duration_seconds",
                &labels,
                h,
            );
        }
        self.render_turns(&mut out);
        self.render_voice(&mut out);
        let mut gauges: Vec<(&str, &str, f64)> = vec![
            (
                "stonepot_http_requests_in_flight",
                "Requests being served now.",
                self.in_flight.load(Ordering::Relaxed) as f64,
            ),
            (
                "stonepot_http_rate_limited_total",
                "Requests refused with 429.",
                self.rate_limited.load(Ordering::Relaxed) as f64,
            ),
            (
                "stonepot_kitchen_tickets_fired_total",
                "Kitchen tickets fired, one per order that reached the kitchen.",
                self.tickets_fired.load(Ordering::Relaxed) as f64,
            ),
            (
                "stonepot_receipts_written_total",
                "Receipts written to object storage, one per paid order.",
                self.receipts_written.load(Ordering::Relaxed) as f64,
            ),
            (
                "stonepot_payments_captured_total",
                "Orders paid through a payment provider.",
                self.payments_captured.load(Ordering::Relaxed) as f64,
            ),
            (
                "stonepot_payment_events_duplicate_total",
                "Payment events and redirects seen before, acknowledged and ignored.",
                self.payment_duplicates.load(Ordering::Relaxed) as f64,
            ),
            (
                "stonepot_payments_flagged_total",
                "Payments whose amount or currency did not match the order (flagged, not paid).",
                self.payments_flagged.load(Ordering::Relaxed) as f64,
            ),
            (
                "stonepot_webhooks_rejected_total",
                "Webhooks refused for a missing, malformed, wrong or expired signature.",
                self.webhooks_rejected.load(Ordering::Relaxed) as f64,
            ),
        ];
        if let Some(rss) = process_rss_bytes() {
            gauges.push((
                "process_resident_memory_bytes",
                "Resident memory of the stonepot process.",
                rss as f64,
            ));
        }
        gauges.extend_from_slice(extra);
        for (name, help, value) in gauges {
            // Prometheus names counters `…_total`; the rest of the figures are gauges.
            let kind = if name.ends_with("_total") {
                "counter"
            } else {
                "gauge"
            };
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        }
        out
    }
}

fn write_histogram(out: &mut String, name: &str, labels: &str, h: &Histogram) {
    for (upper, c) in BUCKETS.iter().zip(h.counts.iter()) {
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{upper}\"}} {c}");
    }
    let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", h.count);
    let _ = writeln!(out, "{name}_sum{{{labels}}} {}", h.sum);
    let _ = writeln!(out, "{name}_count{{{labels}}} {}", h.count);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counts_and_cumulative_buckets() {
        let m = Metrics::default();
        m.observe("/health", "GET", 200, Duration::from_micros(300));
        m.observe("/health", "GET", 200, Duration::from_millis(30));
        let text = m.render(&[("stonepot_sessions_resident", "Sessions in memory.", 0.0)]);
        assert!(text.contains(
            "stonepot_http_requests_total{route=\"/health\",method=\"GET\",status=\"200\"} 2"
        ));
        assert!(text.contains("le=\"0.0005\"} 1"));
        assert!(text.contains("le=\"0.05\"} 2"));
        assert!(text.contains("le=\"+Inf\"} 2"));
        assert!(text.contains("stonepot_sessions_resident 0"));
        assert_eq!(m.count_for("/health"), 2);
    }
}
