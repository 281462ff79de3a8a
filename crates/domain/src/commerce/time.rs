//! Instants as integer milliseconds since the Unix epoch (UTC), the unit the store
//! already keeps (`at_ms`), with an RFC 3339 rendering for displays.
//!
//! The domain has no clock: callers pass `now` in, so quotes and orders are
//! reproducible in tests.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

/// Milliseconds since 1970-01-01T00:00:00Z.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UnixMs(pub i64);

const MS_PER_DAY: i64 = 86_400_000;

impl UnixMs {
    /// The epoch, the earliest instant a quote may carry.
    pub const MIN: UnixMs = UnixMs(0);
    /// 9999-12-31T23:59:59.999Z, the latest instant with a four-digit RFC 3339 year.
    pub const MAX: UnixMs = UnixMs(253_402_300_799_999);

    /// Whether the instant lies in [`UnixMs::MIN`]`..=`[`UnixMs::MAX`].
    pub fn in_range(self) -> bool {
        (Self::MIN..=Self::MAX).contains(&self)
    }

    /// `self + d`, or `None` when the result leaves the supported range.
    pub fn checked_add(self, d: Duration) -> Option<UnixMs> {
        let ms = i64::try_from(d.as_millis()).ok()?;
        let out = UnixMs(self.0.checked_add(ms)?);
        out.in_range().then_some(out)
    }

    /// RFC 3339 in UTC: `2026-11-20T18:30:00Z`, with `.mmm` only when the
    /// milliseconds are not zero. Instants outside the supported range still render
    /// (with a longer or negative year) rather than fail.
    pub fn to_rfc3339(self) -> String {
        let days = self.0.div_euclid(MS_PER_DAY);
        let ms_of_day = self.0.rem_euclid(MS_PER_DAY);
        let (y, m, d) = civil_from_days(days);
        let secs = ms_of_day / 1000;
        let ms = ms_of_day % 1000;
        let (hh, mm, ss) = (secs / 3600, secs / 60 % 60, secs % 60);
        if ms == 0 {
            format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}Z")
        } else {
            format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}.{ms:03}Z")
        }
    }
}

impl fmt::Display for UnixMs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

/// Days since the epoch to a proleptic Gregorian (year, month, day), after Howard
/// Hinnant's `civil_from_days`. Exact for every `i64` day count the callers produce
/// (|days| < 2^47 since they come from milliseconds).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The inverse, from the same paper, to cross-check `civil_from_days`.
    fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
        let y = if m <= 2 { y - 1 } else { y };
        let era = y.div_euclid(400);
        let yoe = y.rem_euclid(400);
        let mp = if m > 2 { m - 3 } else { m + 9 };
        let doy = (153 * mp + 2) / 5 + d - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }

    #[test]
    fn renders_rfc3339() {
        assert_eq!(UnixMs(0).to_rfc3339(), "1970-01-01T00:00:00Z");
        assert_eq!(
            UnixMs(1_700_000_000_000).to_rfc3339(),
            "2023-11-14T22:13:20Z"
        );
        assert_eq!(UnixMs(951_782_400_000).to_rfc3339(), "2000-02-29T00:00:00Z");
        assert_eq!(
            UnixMs(951_782_400_007).to_rfc3339(),
            "2000-02-29T00:00:00.007Z"
        );
        assert_eq!(UnixMs::MAX.to_rfc3339(), "9999-12-31T23:59:59.999Z");
        assert_eq!(UnixMs(-1).to_rfc3339(), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn checked_add_stays_in_range() {
        let ten_min = Duration::from_secs(600);
        assert_eq!(UnixMs(0).checked_add(ten_min), Some(UnixMs(600_000)));
        assert_eq!(UnixMs::MAX.checked_add(ten_min), None);
        assert_eq!(UnixMs(0).checked_add(Duration::MAX), None);
    }

    proptest! {
        #[test]
        fn never_panics(ms in any::<i64>()) {
            let _ = UnixMs(ms).to_rfc3339();
            let _ = UnixMs(ms).checked_add(Duration::from_millis(ms.unsigned_abs()));
        }

        #[test]
        fn dates_round_trip(days in -1_000_000i64..3_000_000) {
            let (y, m, d) = civil_from_days(days);
            prop_assert!((1..=12).contains(&m) && (1..=31).contains(&d));
            prop_assert_eq!(days_from_civil(y, m, d), days);
        }

        #[test]
        fn in_range_renders_a_four_digit_year(ms in 0i64..=UnixMs::MAX.0) {
            let s = UnixMs(ms).to_rfc3339();
            prop_assert_eq!(s.find('-'), Some(4), "{}", s);
            prop_assert!(s.ends_with('Z'));
        }
    }
}
