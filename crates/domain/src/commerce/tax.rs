//! A tenant's pricing policy (tax rate, tax-inclusive or not, service charge, tips)
//! and the integer arithmetic behind it.
//!
//! Everything is in minor units of the tenant's currency. Products are taken in
//! `i128`, so `amount × rate` can never overflow, and every result is narrowed back to
//! `i64` with a check; an amount out of range is a [`PricingError`], never a panic or
//! a wrapped number. Nothing here touches a float.
//!
//! **Rounding.** Every computed amount (a line's tax, the service charge, a percentage
//! tip) is rounded to the currency's minor unit *half away from zero*: ½ cent and up
//! rounds to the next cent ("round half up" for the non-negative amounts that occur).
//! This is the rule most tax authorities publish for per-line rounding. Tax is
//! rounded per line and the order's tax is the sum of the rounded line taxes, so the
//! lines on a receipt always add up to its total.
//!
//! **Tax-exclusive** prices (menu prices before tax): a line's tax is
//! `round(line_total × rate)` and is added on top.
//! **Tax-inclusive** prices (menu prices include tax): a line's tax is the tax the
//! price contains, `round(line_total × rate / (1 + rate))`, and its net is
//! `line_total − tax`, so net + tax equals the price exactly.

use serde::{Deserialize, Serialize};

/// Basis points in one whole (10 000 bps = 100 %).
pub const BPS_PER_UNIT: u32 = 10_000;
/// The highest tax or service-charge rate a policy may carry (100 %).
pub const MAX_RATE_BPS: u32 = BPS_PER_UNIT;

/// Why an amount could not be computed, or a policy was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum PricingError {
    #[error("{what} is out of range")]
    Overflow { what: &'static str },
    #[error("{what} must not be negative (got {amount})")]
    Negative { what: &'static str, amount: i64 },
    #[error("{field} must be between 0 and {max} basis points, not {bps}")]
    RateOutOfRange {
        field: &'static str,
        bps: u32,
        max: u32,
    },
}

impl PricingError {
    /// The stable code, as serialized.
    pub fn code(&self) -> &'static str {
        match self {
            PricingError::Overflow { .. } => "overflow",
            PricingError::Negative { .. } => "negative",
            PricingError::RateOutOfRange { .. } => "rate_out_of_range",
        }
    }
}

/// How a tenant prices an order. Stored per tenant; a quote keeps a copy of the
/// policy it was priced under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PricingPolicy {
    /// Sales tax or VAT in basis points (875 = 8.75 %), at most [`MAX_RATE_BPS`].
    pub tax_rate_bps: u32,
    /// Menu prices already include the tax (typical for VAT); otherwise it is added.
    pub tax_inclusive: bool,
    /// A service charge on the subtotal, in basis points, at most [`MAX_RATE_BPS`].
    /// It is not taxed and is shown in the `tip` slot of the display components.
    #[serde(default)]
    pub service_charge_bps: Option<u32>,
    /// Whether the guest may add a tip (on top of any service charge).
    #[serde(default = "yes")]
    pub tips_allowed: bool,
}

fn yes() -> bool {
    true
}

impl Default for PricingPolicy {
    /// No tax, no service charge, tips allowed.
    fn default() -> Self {
        PricingPolicy {
            tax_rate_bps: 0,
            tax_inclusive: false,
            service_charge_bps: None,
            tips_allowed: true,
        }
    }
}

/// One line's price split into net and tax. `net + tax == gross` always holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineTax {
    /// The price without tax.
    pub net: i64,
    /// The tax on (or contained in) the line, rounded to the minor unit.
    pub tax: i64,
    /// What the guest pays for the line, tax included.
    pub gross: i64,
}

impl PricingPolicy {
    /// Refuses rates above 100 %.
    pub fn validate(&self) -> Result<(), PricingError> {
        check_rate("taxRateBps", self.tax_rate_bps)?;
        if let Some(bps) = self.service_charge_bps {
            check_rate("serviceChargeBps", bps)?;
        }
        Ok(())
    }

    /// Splits a line total (unit price × quantity, as on the menu) into net and tax.
    ///
    /// Tax-exclusive: the line total is the net and the tax is added on top.
    /// Tax-inclusive: the line total is the gross and the tax is extracted from it.
    pub fn line_tax(&self, line_total: i64) -> Result<LineTax, PricingError> {
        non_negative("line total", line_total)?;
        check_rate("taxRateBps", self.tax_rate_bps)?;
        let rate = i128::from(self.tax_rate_bps);
        let scale = i128::from(BPS_PER_UNIT);
        let amount = i128::from(line_total);
        if self.tax_inclusive {
            let tax = narrow(
                "line tax",
                round_div(amount * rate, scale + rate).ok_or(overflow("line tax"))?,
            )?;
            Ok(LineTax {
                net: line_total - tax,
                tax,
                gross: line_total,
            })
        } else {
            let tax = narrow(
                "line tax",
                round_div(amount * rate, scale).ok_or(overflow("line tax"))?,
            )?;
            let gross = line_total
                .checked_add(tax)
                .ok_or(overflow("line total with tax"))?;
            Ok(LineTax {
                net: line_total,
                tax,
                gross,
            })
        }
    }

    /// The service charge on `subtotal`, rounded; 0 when the policy has none.
    pub fn service_charge(&self, subtotal: i64) -> Result<i64, PricingError> {
        match self.service_charge_bps {
            None | Some(0) => Ok(0),
            Some(bps) => {
                check_rate("serviceChargeBps", bps)?;
                percent_of("service charge", subtotal, bps)
            }
        }
    }
}

fn check_rate(field: &'static str, bps: u32) -> Result<(), PricingError> {
    if bps > MAX_RATE_BPS {
        return Err(PricingError::RateOutOfRange {
            field,
            bps,
            max: MAX_RATE_BPS,
        });
    }
    Ok(())
}

fn non_negative(what: &'static str, amount: i64) -> Result<(), PricingError> {
    if amount < 0 {
        return Err(PricingError::Negative { what, amount });
    }
    Ok(())
}

fn overflow(what: &'static str) -> PricingError {
    PricingError::Overflow { what }
}

fn narrow(what: &'static str, v: i128) -> Result<i64, PricingError> {
    i64::try_from(v).map_err(|_| overflow(what))
}

/// `num / den` rounded half away from zero; `None` when `den <= 0` or on overflow.
pub fn round_div(num: i128, den: i128) -> Option<i128> {
    if den <= 0 {
        return None;
    }
    let q = num.checked_div(den)?;
    let r = num.checked_rem(den)?;
    // |r| < den, so doubling it cannot overflow for any den below i128::MAX / 2;
    // the checked form keeps the function total anyway.
    let twice = r.unsigned_abs().checked_mul(2)?;
    if twice >= den.unsigned_abs() {
        if num < 0 {
            q.checked_sub(1)
        } else {
            q.checked_add(1)
        }
    } else {
        Some(q)
    }
}

/// `round(amount × bps / 10 000)` for a non-negative amount: a percentage of it.
pub fn percent_of(what: &'static str, amount: i64, bps: u32) -> Result<i64, PricingError> {
    non_negative(what, amount)?;
    let v = round_div(
        i128::from(amount) * i128::from(bps),
        i128::from(BPS_PER_UNIT),
    )
    .ok_or(overflow(what))?;
    narrow(what, v)
}

/// The exact sum of `amounts`, or [`PricingError::Overflow`] naming `what`.
pub fn checked_sum(
    what: &'static str,
    amounts: impl IntoIterator<Item = i64>,
) -> Result<i64, PricingError> {
    amounts
        .into_iter()
        .try_fold(0i64, |acc, a| acc.checked_add(a))
        .ok_or(overflow(what))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn policy(bps: u32, inclusive: bool) -> PricingPolicy {
        PricingPolicy {
            tax_rate_bps: bps,
            tax_inclusive: inclusive,
            ..PricingPolicy::default()
        }
    }

    #[test]
    fn rounds_half_away_from_zero() {
        assert_eq!(round_div(5, 10), Some(1));
        assert_eq!(round_div(4, 10), Some(0));
        assert_eq!(round_div(15, 10), Some(2));
        assert_eq!(round_div(25, 10), Some(3), "not banker's rounding");
        assert_eq!(round_div(-5, 10), Some(-1));
        assert_eq!(round_div(-4, 10), Some(0));
        assert_eq!(round_div(7, 0), None);
        assert_eq!(round_div(7, -3), None);
        assert_eq!(round_div(i128::MIN, 1), Some(i128::MIN));
        assert_eq!(round_div(i128::MAX, i128::MAX), Some(1));
    }

    #[test]
    fn exclusive_tax_is_added_per_line() {
        // 8.75 % of 25.98 is 2.27325 → 2.27.
        let t = policy(875, false).line_tax(2598).unwrap();
        assert_eq!(
            t,
            LineTax {
                net: 2598,
                tax: 227,
                gross: 2825
            }
        );
        // 10 % of 0.05 is 0.005 → rounds half up to 0.01.
        assert_eq!(policy(1000, false).line_tax(5).unwrap().tax, 1);
        assert_eq!(policy(1000, false).line_tax(4).unwrap().tax, 0);
    }

    #[test]
    fn inclusive_tax_is_extracted_per_line() {
        // 20 % VAT contained in 12.00 is 2.00; in 12.99 it is 2.165 → 2.17.
        assert_eq!(
            policy(2000, true).line_tax(1200).unwrap(),
            LineTax {
                net: 1000,
                tax: 200,
                gross: 1200
            }
        );
        let t = policy(2000, true).line_tax(1299).unwrap();
        assert_eq!((t.net, t.tax, t.gross), (1082, 217, 1299));
    }

    #[test]
    fn zero_rate_and_zero_amounts() {
        assert_eq!(policy(0, false).line_tax(1299).unwrap().tax, 0);
        assert_eq!(policy(0, true).line_tax(1299).unwrap().net, 1299);
        assert_eq!(policy(875, true).line_tax(0).unwrap().tax, 0);
    }

    #[test]
    fn refusals_are_typed() {
        assert_eq!(
            policy(875, false).line_tax(-1),
            Err(PricingError::Negative {
                what: "line total",
                amount: -1
            })
        );
        assert_eq!(
            policy(10_001, false).validate().unwrap_err().code(),
            "rate_out_of_range"
        );
        let sc = PricingPolicy {
            service_charge_bps: Some(20_000),
            ..PricingPolicy::default()
        };
        assert_eq!(sc.validate().unwrap_err().code(), "rate_out_of_range");
        assert_eq!(
            policy(10_000, false).line_tax(i64::MAX).unwrap_err(),
            PricingError::Overflow {
                what: "line total with tax"
            }
        );
        assert_eq!(
            checked_sum("subtotal", [i64::MAX, 1]),
            Err(PricingError::Overflow { what: "subtotal" })
        );
        let json = serde_json::to_value(PricingError::Overflow { what: "tip" }).unwrap();
        assert_eq!(json["code"], "overflow");
    }

    #[test]
    fn service_charge_is_a_rounded_share_of_the_subtotal() {
        let p = PricingPolicy {
            service_charge_bps: Some(1250),
            ..PricingPolicy::default()
        };
        // 12.5 % of 34.93 is 4.36625 → 4.37.
        assert_eq!(p.service_charge(3493), Ok(437));
        assert_eq!(PricingPolicy::default().service_charge(3493), Ok(0));
    }

    #[test]
    fn policy_json_is_camel_case_with_defaults() {
        let p: PricingPolicy =
            serde_json::from_str(r#"{"taxRateBps": 875, "taxInclusive": false}"#).unwrap();
        assert_eq!(p, policy(875, false));
        assert!(p.tips_allowed);
        assert!(serde_json::from_str::<PricingPolicy>(r#"{"taxRate": 1}"#).is_err());
    }

    proptest! {
        #[test]
        fn sums_are_exact_or_refused(xs in prop::collection::vec(any::<i64>(), 0..20)) {
            let exact: i128 = xs.iter().map(|x| i128::from(*x)).sum();
            let prefix_fits = xs
                .iter()
                .scan(0i128, |acc, x| { *acc += i128::from(*x); Some(*acc) })
                .all(|p| i64::try_from(p).is_ok());
            match checked_sum("t", xs.iter().copied()) {
                Ok(s) => prop_assert_eq!(i128::from(s), exact),
                Err(e) => {
                    prop_assert!(!prefix_fits);
                    prop_assert_eq!(e, PricingError::Overflow { what: "t" });
                }
            }
        }

        #[test]
        fn round_div_is_within_half_a_unit(num in any::<i64>(), den in 1i64..1_000_000) {
            let (n, d) = (i128::from(num), i128::from(den));
            let q = round_div(n, d).unwrap();
            // |n/d − q| ≤ ½  ⇔  |n − q·d| · 2 ≤ d
            prop_assert!((n - q * d).abs() * 2 <= d);
        }

        #[test]
        fn inclusive_net_plus_tax_is_gross(
            amount in 0i64..=i64::MAX,
            bps in 0u32..=MAX_RATE_BPS,
        ) {
            let t = policy(bps, true).line_tax(amount).unwrap();
            prop_assert_eq!(t.gross, amount);
            prop_assert_eq!(t.net + t.tax, t.gross);
            prop_assert!(t.tax >= 0 && t.tax <= amount);
            // The extracted tax is the rounded exact share: |tax − a·r/(1+r)| ≤ ½.
            let (a, r, s) = (i128::from(amount), i128::from(bps), i128::from(BPS_PER_UNIT));
            prop_assert!((i128::from(t.tax) * (s + r) - a * r).abs() * 2 <= s + r);
        }

        #[test]
        fn exclusive_tax_is_the_rounded_share_or_refused(
            amount in 0i64..=i64::MAX,
            bps in 0u32..=MAX_RATE_BPS,
        ) {
            match policy(bps, false).line_tax(amount) {
                Ok(t) => {
                    prop_assert_eq!(t.net, amount);
                    prop_assert_eq!(t.net + t.tax, t.gross);
                    let (a, r, s) = (i128::from(amount), i128::from(bps), i128::from(BPS_PER_UNIT));
                    prop_assert!((i128::from(t.tax) * s - a * r).abs() * 2 <= s);
                }
                Err(e) => prop_assert_eq!(e.code(), "overflow"),
            }
        }

        #[test]
        fn any_policy_and_amount_never_panics(
            amount in any::<i64>(),
            bps in any::<u32>(),
            sc in proptest::option::of(any::<u32>()),
            inclusive in any::<bool>(),
        ) {
            let p = PricingPolicy {
                tax_rate_bps: bps,
                tax_inclusive: inclusive,
                service_charge_bps: sc,
                tips_allowed: true,
            };
            let _ = p.validate();
            let _ = p.line_tax(amount);
            let _ = p.service_charge(amount);
            let _ = percent_of("x", amount, bps);
        }
    }
}
