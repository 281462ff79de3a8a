//! Money as integer minor units with a currency; never a float.
//!
//! Decimal amounts from JSON (`12.99`) are converted from the number's *text*, so
//! `12.99` is exactly 1299 minor units and a value with more precision than the
//! currency allows is refused rather than rounded.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Why an amount or currency was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("'{0}' is not a decimal number")]
    NotANumber(String),
    #[error("'{value}' has more than {exponent} decimal places for {currency}")]
    TooPrecise {
        value: String,
        exponent: u8,
        currency: String,
    },
    #[error("amount '{0}' is out of range")]
    Overflow(String),
    #[error("amount must not be negative")]
    Negative,
    #[error("unknown currency '{0}'")]
    UnknownCurrency(String),
    #[error("currency mismatch: {0} vs {1}")]
    Mismatch(String, String),
}

/// An ISO 4217 currency with its minor-unit exponent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency {
    code: [u8; 3],
    exponent: u8,
}

const KNOWN: &[(&str, u8)] = &[
    ("USD", 2),
    ("EUR", 2),
    ("GBP", 2),
    ("CAD", 2),
    ("AUD", 2),
    ("CHF", 2),
    ("INR", 2),
    ("SGD", 2),
    ("NZD", 2),
    ("MXN", 2),
    ("BRL", 2),
    ("SEK", 2),
    ("NOK", 2),
    ("DKK", 2),
    ("PLN", 2),
    ("ZAR", 2),
    ("CNY", 2),
    ("HKD", 2),
    ("JPY", 0),
    ("KRW", 0),
    ("VND", 0),
    ("CLP", 0),
    ("ISK", 0),
    ("KWD", 3),
    ("BHD", 3),
    ("JOD", 3),
    ("OMR", 3),
    ("TND", 3),
];

impl Currency {
    pub const USD: Currency = Currency {
        code: *b"USD",
        exponent: 2,
    };
    pub const EUR: Currency = Currency {
        code: *b"EUR",
        exponent: 2,
    };

    /// Looks up an ISO code (case-insensitive) among the supported currencies.
    pub fn from_code(code: &str) -> Result<Self, MoneyError> {
        let upper = code.to_ascii_uppercase();
        KNOWN
            .iter()
            .find(|(c, _)| *c == upper)
            .and_then(|(c, e)| {
                let b = c.as_bytes();
                Some(Currency {
                    code: [*b.first()?, *b.get(1)?, *b.get(2)?],
                    exponent: *e,
                })
            })
            .ok_or(MoneyError::UnknownCurrency(code.to_string()))
    }

    /// The three-letter code.
    pub fn code(&self) -> &str {
        std::str::from_utf8(&self.code).unwrap_or("XXX")
    }

    /// Number of decimal places of the minor unit (2 for USD, 0 for JPY).
    pub fn exponent(&self) -> u8 {
        self.exponent
    }

    /// Parses a decimal text (`"12.99"`, `"12"`, `"1.5e1"` is refused) into minor units.
    pub fn parse_minor(&self, text: &str) -> Result<i64, MoneyError> {
        parse_decimal_minor(text, self.exponent, self.code())
    }

    /// Formats minor units as a plain decimal (`1299` → `"12.99"`).
    pub fn format_minor(&self, minor: i64) -> String {
        format_minor(minor, self.exponent)
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl Serialize for Currency {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Currency::from_code(&s).map_err(serde::de::Error::custom)
    }
}

/// Parses the text of a decimal number into an integer count of minor units.
///
/// Accepts an optional leading `-`, digits, and an optional fraction of at most
/// `exponent` digits (trailing zeros beyond it are allowed: `12.990` is fine).
/// Exponent notation is refused because a JSON price never needs it.
pub fn parse_decimal_minor(text: &str, exponent: u8, currency: &str) -> Result<i64, MoneyError> {
    let t = text.trim();
    let (neg, body) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t),
    };
    let (int_part, frac_part) = match body.split_once('.') {
        Some((i, f)) => (i, f),
        None => (body, ""),
    };
    let digits_ok = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if int_part.is_empty() || !digits_ok(int_part) || !digits_ok(frac_part) {
        return Err(MoneyError::NotANumber(text.to_string()));
    }
    if body.contains('.') && frac_part.is_empty() {
        return Err(MoneyError::NotANumber(text.to_string()));
    }
    let exp = usize::from(exponent);
    let significant = frac_part.trim_end_matches('0');
    if significant.len() > exp {
        return Err(MoneyError::TooPrecise {
            value: text.to_string(),
            exponent,
            currency: currency.to_string(),
        });
    }
    let overflow = || MoneyError::Overflow(text.to_string());
    let mut value: i64 = 0;
    for b in int_part.bytes() {
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(i64::from(b - b'0')))
            .ok_or_else(overflow)?;
    }
    for i in 0..exp {
        let d = significant.as_bytes().get(i).map_or(0, |b| b - b'0');
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(i64::from(d)))
            .ok_or_else(overflow)?;
    }
    Ok(if neg { -value } else { value })
}

/// Formats minor units with `exponent` decimals.
pub fn format_minor(minor: i64, exponent: u8) -> String {
    if exponent == 0 {
        return minor.to_string();
    }
    let sign = if minor < 0 { "-" } else { "" };
    let abs = minor.unsigned_abs();
    let scale = 10u64.pow(u32::from(exponent));
    format!(
        "{sign}{}.{:0width$}",
        abs / scale,
        abs % scale,
        width = usize::from(exponent)
    )
}

/// An amount of money in integer minor units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    /// Minor units (cents for USD).
    pub minor: i64,
    /// ISO 4217 currency.
    pub currency: Currency,
}

impl Money {
    pub fn new(minor: i64, currency: Currency) -> Self {
        Self { minor, currency }
    }

    /// Adds two amounts of the same currency, refusing overflow and mismatches.
    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        if self.currency != other.currency {
            return Err(MoneyError::Mismatch(
                self.currency.to_string(),
                other.currency.to_string(),
            ));
        }
        self.minor
            .checked_add(other.minor)
            .map(|minor| Money::new(minor, self.currency))
            .ok_or_else(|| MoneyError::Overflow(format!("{} + {}", self.minor, other.minor)))
    }

    /// Multiplies by a whole quantity, refusing overflow.
    pub fn checked_mul(self, qty: i64) -> Result<Money, MoneyError> {
        self.minor
            .checked_mul(qty)
            .map(|minor| Money::new(minor, self.currency))
            .ok_or_else(|| MoneyError::Overflow(format!("{} x {}", self.minor, qty)))
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}",
            self.currency.format_minor(self.minor),
            self.currency
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_exactly() {
        let usd = Currency::USD;
        assert_eq!(usd.parse_minor("12.99"), Ok(1299));
        assert_eq!(usd.parse_minor("0.1"), Ok(10));
        assert_eq!(usd.parse_minor("12"), Ok(1200));
        assert_eq!(usd.parse_minor("12.990"), Ok(1299));
        assert_eq!(usd.parse_minor("-3.05"), Ok(-305));
        assert!(matches!(
            usd.parse_minor("12.999"),
            Err(MoneyError::TooPrecise { .. })
        ));
        assert!(matches!(
            usd.parse_minor("1e3"),
            Err(MoneyError::NotANumber(_))
        ));
        assert!(matches!(
            usd.parse_minor("12."),
            Err(MoneyError::NotANumber(_))
        ));
        assert!(matches!(
            usd.parse_minor("99999999999999999999"),
            Err(MoneyError::Overflow(_))
        ));
        let jpy = Currency::from_code("jpy").map(|c| c.parse_minor("1500"));
        assert_eq!(jpy, Ok(Ok(1500)));
    }

    #[test]
    fn formats() {
        assert_eq!(format_minor(1299, 2), "12.99");
        assert_eq!(format_minor(-5, 2), "-0.05");
        assert_eq!(format_minor(1500, 0), "1500");
        assert_eq!(Money::new(1299, Currency::USD).to_string(), "12.99 USD");
    }

    #[test]
    fn unknown_currency() {
        assert!(Currency::from_code("ABC").is_err());
    }

    proptest! {
        #[test]
        fn format_then_parse_round_trips(minor in -1_000_000_000_000i64..1_000_000_000_000i64, exp in 0u8..4) {
            let text = format_minor(minor, exp);
            prop_assert_eq!(parse_decimal_minor(&text, exp, "T"), Ok(minor));
        }

        #[test]
        fn never_panics(s in "\\PC{0,30}") {
            let _ = Currency::USD.parse_minor(&s);
        }
    }
}
