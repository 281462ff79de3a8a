//! The business day and the close schedule of a tenant.
//!
//! Business date `D` is the span from the day-end time on `D` to the day-end time on
//! `D + 1`, both in the tenant's close time zone: a business day *starts* at the
//! day-end time, the moment the previous one ends. With the default (16:00 UTC, as the
//! original system ran it) an American restaurant's Monday — lunch through the small
//! hours — is one business day, Monday 16:00 UTC to Tuesday 16:00 UTC; a bar whose day
//! ends at 04:00 local keeps Friday night's last rounds on Friday.
//!
//! Both ends are local wall-clock times resolved with jiff's "compatible" rule, so a
//! business day that contains a daylight-saving change is 23 or 25 hours long, and a
//! day-end time that falls in a spring-forward gap moves to the first instant after it.

use croner::Cron;
use croner::parser::CronParser;
use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan, Zoned};
use std::fmt;

/// The day-end time of the default settings, 16:00.
pub const DEFAULT_DAY_END: &str = "16:00";
/// The time zone of the default settings.
pub const DEFAULT_TIME_ZONE: &str = "UTC";
/// The schedule of the default settings: every day at 16:05:00, five minutes after the
/// business day ends (seconds, minutes, hours, day of month, month, day of week).
pub const DEFAULT_CRON: &str = "0 5 16 * * *";
/// Longest cron pattern accepted (a real one is a few dozen characters).
const CRON_MAX: usize = 200;

/// Why close settings or a business date were refused; the message names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DayError {
    #[error("dayEnd: '{0}' is not a time of day like 16:00 (HH:MM or HH:MM:SS, 24-hour)")]
    DayEnd(String),
    #[error("timeZone: '{0}' is not an IANA time zone such as UTC or America/New_York")]
    TimeZone(String),
    #[error("cron: '{pattern}' is not a cron pattern: {problem}")]
    Cron { pattern: String, problem: String },
    #[error("date: '{0}' is not a calendar date like 2026-11-23 (YYYY-MM-DD)")]
    Date(String),
    #[error("date: {0} is outside the supported range")]
    OutOfRange(String),
}

/// A tenant's close settings, validated: when its business day ends, in which time
/// zone, and when the scheduled close runs.
#[derive(Debug, Clone)]
pub struct CloseSettings {
    day_end: Time,
    time_zone: TimeZone,
    time_zone_name: String,
    cron: Cron,
    cron_text: String,
}

impl PartialEq for CloseSettings {
    fn eq(&self, other: &Self) -> bool {
        self.day_end == other.day_end
            && self.time_zone_name == other.time_zone_name
            && self.cron_text == other.cron_text
    }
}

impl Default for CloseSettings {
    /// 16:00 UTC, closed every day at 16:05:00.
    #[expect(
        clippy::expect_used,
        reason = "the default settings are constants, checked by the unit tests"
    )]
    fn default() -> Self {
        CloseSettings::new(DEFAULT_DAY_END, DEFAULT_TIME_ZONE, DEFAULT_CRON)
            .expect("the default close settings are valid")
    }
}

/// Parses `HH:MM` or `HH:MM:SS` (24-hour, two digits each).
fn parse_day_end(s: &str) -> Result<Time, DayError> {
    let bad = || DayError::DayEnd(s.to_string());
    let parts: Vec<&str> = s.split(':').collect();
    if !(2..=3).contains(&parts.len())
        || parts
            .iter()
            .any(|p| p.len() != 2 || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(bad());
    }
    let num = |i: usize| -> Result<i8, DayError> {
        parts.get(i).map_or(Ok(0), |p| p.parse().map_err(|_| bad()))
    };
    Time::new(num(0)?, num(1)?, num(2)?, 0).map_err(|_| bad())
}

/// Parses a calendar date written exactly `YYYY-MM-DD`.
pub fn parse_date(s: &str) -> Result<Date, DayError> {
    let bad = || DayError::Date(s.to_string());
    let b = s.as_bytes();
    let shape = b.len() == 10
        && b.iter().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        });
    if !shape {
        return Err(bad());
    }
    s.parse::<Date>().map_err(|_| bad())
}

impl CloseSettings {
    /// Validates the three settings; each error names its field.
    pub fn new(day_end: &str, time_zone: &str, cron: &str) -> Result<Self, DayError> {
        let day_end = parse_day_end(day_end.trim())?;
        let name = time_zone.trim();
        let tz = if name.is_empty() || name.len() > 64 {
            None
        } else {
            TimeZone::get(name).ok()
        };
        let time_zone = tz.ok_or_else(|| DayError::TimeZone(time_zone.to_string()))?;
        let text = cron.trim();
        let cron_err = |problem: String| DayError::Cron {
            pattern: cron.to_string(),
            problem,
        };
        if text.is_empty() || text.len() > CRON_MAX {
            return Err(cron_err(format!("1 to {CRON_MAX} characters")));
        }
        let parsed = CronParser::new()
            .parse(text)
            .map_err(|e| cron_err(e.to_string()))?;
        Ok(CloseSettings {
            day_end,
            time_zone,
            time_zone_name: name.to_string(),
            cron: parsed,
            cron_text: text.to_string(),
        })
    }

    /// `HH:MM`, or `HH:MM:SS` when the seconds are not zero.
    pub fn day_end(&self) -> String {
        let t = self.day_end;
        if t.second() == 0 {
            format!("{:02}:{:02}", t.hour(), t.minute())
        } else {
            format!("{:02}:{:02}:{:02}", t.hour(), t.minute(), t.second())
        }
    }

    /// The IANA name as given (for example `America/New_York`).
    pub fn time_zone(&self) -> &str {
        &self.time_zone_name
    }

    /// The cron pattern as given (trimmed).
    pub fn cron(&self) -> &str {
        &self.cron_text
    }

    /// The span of business date `date`.
    pub fn window(&self, date: Date) -> Result<Window, DayError> {
        let range = || DayError::OutOfRange(date.to_string());
        let next = date.checked_add(1.day()).map_err(|_| range())?;
        let start = date
            .to_datetime(self.day_end)
            .to_zoned(self.time_zone.clone())
            .map_err(|_| range())?
            .timestamp();
        let end = next
            .to_datetime(self.day_end)
            .to_zoned(self.time_zone.clone())
            .map_err(|_| range())?
            .timestamp();
        Ok(Window {
            date,
            start,
            end,
            time_zone: self.time_zone_name.clone(),
            day_end: self.day_end(),
        })
    }

    /// The business date whose span contains `at`.
    pub fn business_date_at(&self, at: Timestamp) -> Result<Date, DayError> {
        let local = at.to_zoned(self.time_zone.clone());
        let date = local.date();
        let range = || DayError::OutOfRange(date.to_string());
        if at < self.window(date)?.start {
            return date.checked_sub(1.day()).map_err(|_| range());
        }
        if at >= self.window(date)?.end {
            return date.checked_add(1.day()).map_err(|_| range());
        }
        Ok(date)
    }

    /// The latest business date that has ended by `at` (the one a close run at `at`
    /// reports).
    pub fn last_ended_date(&self, at: Timestamp) -> Result<Date, DayError> {
        let current = self.business_date_at(at)?;
        current
            .checked_sub(1.day())
            .map_err(|_| DayError::OutOfRange(current.to_string()))
    }

    /// The first instant strictly after `after` at which the schedule fires, read on the
    /// wall clock of the close time zone (croner's rules for fixed-time patterns): a
    /// time that a spring-forward change skips fires at the first instant after the gap,
    /// and a time that a fall-back change repeats fires once, at its first occurrence.
    /// `None` when the pattern never fires again.
    pub fn next_run_after(&self, after: Timestamp) -> Option<Timestamp> {
        let from: Zoned = after.to_zoned(self.time_zone.clone());
        self.cron
            .find_next_occurrence(&from, false)
            .ok()
            .map(|z| z.timestamp())
    }
}

/// The span of one business date: `[start, end)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    pub date: Date,
    pub start: Timestamp,
    pub end: Timestamp,
    /// The close time zone's IANA name.
    pub time_zone: String,
    /// `HH:MM` (or `HH:MM:SS`) local.
    pub day_end: String,
}

impl Window {
    /// Start in milliseconds since the epoch, the store's unit.
    pub fn start_ms(&self) -> i64 {
        self.start.as_millisecond()
    }

    /// End (exclusive) in milliseconds since the epoch.
    pub fn end_ms(&self) -> i64 {
        self.end.as_millisecond()
    }

    /// Whole minutes from start to end: 1440 on most days, 1380 or 1500 across a
    /// daylight-saving change.
    pub fn minutes(&self) -> i64 {
        (self.end_ms() - self.start_ms()) / 60_000
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({} to {})", self.date, self.start, self.end)
    }
}
