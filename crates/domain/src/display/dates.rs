//! Calendar dates and RFC 3339 timestamps, checked by hand so the domain needs no
//! time library.

fn two_digits(s: &str, from: usize) -> Option<u32> {
    let part = s.get(from..from + 2)?;
    if part.bytes().all(|b| b.is_ascii_digit()) {
        part.parse().ok()
    } else {
        None
    }
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400) => {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// A calendar date written `YYYY-MM-DD`.
pub(super) fn is_date(s: &str) -> bool {
    if s.len() != 10 || s.get(4..5) != Some("-") || s.get(7..8) != Some("-") {
        return false;
    }
    let year = match s.get(0..4) {
        Some(y) if y.bytes().all(|b| b.is_ascii_digit()) => y.parse::<u32>().ok(),
        _ => None,
    };
    match (year, two_digits(s, 5), two_digits(s, 8)) {
        (Some(y), Some(m), Some(d)) => (1..=12).contains(&m) && d >= 1 && d <= days_in_month(y, m),
        _ => false,
    }
}

/// An RFC 3339 timestamp: `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`.
pub(super) fn is_rfc3339(s: &str) -> bool {
    let Some(date) = s.get(0..10) else {
        return false;
    };
    if !is_date(date) || !matches!(s.get(10..11), Some("T" | "t")) {
        return false;
    }
    if s.get(13..14) != Some(":") || s.get(16..17) != Some(":") {
        return false;
    }
    let time_ok = matches!(
        (two_digits(s, 11), two_digits(s, 14), two_digits(s, 17)),
        (Some(h), Some(m), Some(sec)) if h < 24 && m < 60 && sec <= 60
    );
    if !time_ok {
        return false;
    }
    let Some(mut rest) = s.get(19..) else {
        return false;
    };
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return false;
        }
        rest = frac.get(digits..).unwrap_or("");
    }
    match rest {
        "Z" | "z" => true,
        _ => {
            rest.len() == 6
                && matches!(rest.get(0..1), Some("+" | "-"))
                && rest.get(3..4) == Some(":")
                && matches!(
                    (two_digits(rest, 1), two_digits(rest, 4)),
                    (Some(h), Some(m)) if h < 24 && m < 60
                )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        for good in [
            "2026-11-20T18:30:00Z",
            "2026-11-20t18:30:00.123z",
            "2024-02-29T23:59:60+05:30",
            "2026-01-01T00:00:00-08:00",
        ] {
            assert!(is_rfc3339(good), "{good}");
        }
        for bad in [
            "2026-11-20",
            "2026-11-20T18:30:00",
            "2026-11-20T24:00:00Z",
            "2026-11-20T18:30:00.Z",
            "2026-11-20 18:30:00Z",
            "2026-11-20T18:30:00+0530",
            "2025-02-29T00:00:00Z",
            "",
        ] {
            assert!(!is_rfc3339(bad), "{bad}");
        }
    }
}
