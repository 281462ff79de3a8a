//! A report's bytes: canonical JSON, CSV, and the SHA-256 of the JSON that names it.
//!
//! Both renderings are functions of the report alone — no clock, no map with random
//! iteration order, no locale — so the same report always gives the same bytes. The
//! JSON has the keys in the report's declared order (maps are sorted), two-space
//! indentation, integers for every amount, and a final newline. The CSV has one row per
//! figure: `section,metric,key,count,amount_minor,amount,currency`, with `amount` the
//! minor units written as a decimal in the currency's precision (for spreadsheets).

use super::CloseReport;
use crate::commerce::canon::hex;
use crate::money::Currency;
use sha2::{Digest, Sha256};

/// A rendered report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub json: Vec<u8>,
    pub csv: Vec<u8>,
    /// Lowercase hex SHA-256 of `json`.
    pub sha256: String,
}

/// Renders `report` as JSON and CSV.
pub fn render(report: &CloseReport) -> Result<Rendered, serde_json::Error> {
    let mut json = serde_json::to_vec_pretty(report)?;
    json.push(b'\n');
    let csv = csv(report);
    let sha256 = hex(&Sha256::digest(&json));
    Ok(Rendered { json, csv, sha256 })
}

/// Quotes a CSV field when it holds a comma, quote or line break (RFC 4180).
fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

struct Csv {
    out: String,
    currency: Option<Currency>,
    code: String,
}

impl Csv {
    fn row(
        &mut self,
        section: &str,
        metric: &str,
        key: &str,
        count: Option<u64>,
        minor: Option<i64>,
    ) {
        let count = count.map(|c| c.to_string()).unwrap_or_default();
        let (minor_text, amount, code) = match minor {
            Some(m) => (
                m.to_string(),
                self.currency
                    .map(|c| c.format_minor(m))
                    .unwrap_or_else(|| m.to_string()),
                self.code.clone(),
            ),
            None => (String::new(), String::new(), String::new()),
        };
        let cells = [
            field(section),
            field(metric),
            field(key),
            count,
            minor_text,
            field(&amount),
            field(&code),
        ];
        self.out.push_str(&cells.join(","));
        self.out.push_str("\r\n");
    }

    fn money(&mut self, section: &str, metric: &str, minor: i64) {
        self.row(section, metric, "", None, Some(minor));
    }

    fn count(&mut self, section: &str, metric: &str, n: u64) {
        self.row(section, metric, "", Some(n), None);
    }
}

/// The CSV rendering (CRLF line ends, as RFC 4180 has them).
pub fn csv(r: &CloseReport) -> Vec<u8> {
    let mut c = Csv {
        out: String::with_capacity(2048),
        currency: Currency::from_code(&r.currency).ok(),
        code: r.currency.clone(),
    };
    c.out
        .push_str("section,metric,key,count,amount_minor,amount,currency\r\n");
    c.row("report", "format", &r.format, None, None);
    c.row("report", "tenant", &r.tenant, None, None);
    c.row("report", "business_date", &r.business_date, None, None);
    c.row("report", "window_start", &r.window.start, None, None);
    c.row("report", "window_end", &r.window.end, None, None);
    c.row("report", "time_zone", &r.window.time_zone, None, None);
    c.row("report", "day_end", &r.window.day_end, None, None);
    c.row(
        "report",
        "minutes",
        "",
        u64::try_from(r.window.minutes).ok(),
        None,
    );
    c.row("report", "currency", &r.currency, None, None);
    let s = &r.sales;
    c.count("sales", "orders", s.orders);
    c.count("sales", "guests", s.guests);
    c.money("sales", "gross_sales", s.gross_sales);
    c.money("sales", "discounts", s.discounts);
    c.money("sales", "tax", s.tax);
    c.money("sales", "service_charges", s.service_charges);
    c.money("sales", "tips", s.tips);
    c.money("sales", "total", s.total);
    c.money("sales", "refunds", s.refunds);
    c.money("sales", "net", s.net);
    c.money("sales", "average_ticket", s.average_ticket);
    c.row(
        "cancelled",
        "orders",
        "",
        Some(r.cancelled.orders),
        Some(r.cancelled.total),
    );
    for (method, m) in &r.payment_methods {
        c.row(
            "payment_method",
            "sales",
            method,
            Some(m.orders),
            Some(m.sales),
        );
        c.row("payment_method", "payments", method, None, Some(m.payments));
        c.row("payment_method", "refunds", method, None, Some(m.refunds));
        c.row("payment_method", "net", method, None, Some(m.net));
    }
    c.row(
        "open",
        "orders",
        "",
        Some(r.open.orders),
        Some(r.open.total),
    );
    for id in &r.open.ids {
        c.row("open", "order", id, None, None);
    }
    let rec = &r.reconciliation;
    c.count("reconciliation", "paid_orders", rec.paid_orders);
    c.count("reconciliation", "matched", rec.matched);
    c.row(
        "reconciliation",
        "provider_checked",
        if rec.provider_checked {
            "true"
        } else {
            "false"
        },
        None,
        None,
    );
    for m in &rec.mismatches {
        c.row("mismatch", "total", &m.order_id, None, Some(m.total));
        c.row("mismatch", "payments", &m.order_id, None, Some(m.payments));
        if let Some(p) = m.provider {
            c.row("mismatch", "provider", &m.order_id, None, Some(p));
        }
        c.row(
            "mismatch",
            "problem",
            &format!("{}: {}", m.order_id, m.problem),
            None,
            None,
        );
    }
    c.out.into_bytes()
}
