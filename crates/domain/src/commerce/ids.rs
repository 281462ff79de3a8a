//! Identifiers of quotes and orders: validated on construction, and short and plain
//! enough to be display-component ids (at most 128 characters).

use crate::ids::IdError;
use serde::{Deserialize, Serialize};
use std::fmt;

const MAX: usize = 128;
const ALLOWED: &str = "letters, digits, '-', '_', '.' and ':'";

fn check(kind: &'static str, s: &str) -> Result<(), IdError> {
    if s.is_empty() {
        return Err(IdError::Empty { kind });
    }
    if s.len() > MAX {
        return Err(IdError::TooLong { kind, max: MAX });
    }
    if !s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
    {
        return Err(IdError::BadChar {
            kind,
            allowed: ALLOWED,
        });
    }
    Ok(())
}

macro_rules! commerce_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Validates and wraps `s`: 1–128 letters, digits, `-`, `_`, `.` or `:`.
            pub fn new(s: impl Into<String>) -> Result<Self, IdError> {
                let s = s.into();
                check($kind, &s)?;
                Ok(Self(s))
            }

            /// The identifier as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::str::FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::new(s)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::new(s).map_err(serde::de::Error::custom)
            }
        }
    };
}

commerce_id!(
    /// A quote. [`Quote::build`](super::Quote::build) derives it from the quote's hash
    /// (`q_` and 24 hex digits), so the same priced content at the same instant gets
    /// the same id.
    QuoteId,
    "quote id"
);

impl QuoteId {
    /// The id of a quote with this hash: `q_` and its first 24 hex digits.
    pub(super) fn for_hash(hash: &str) -> QuoteId {
        QuoteId(format!("q_{}", hash.get(..24).unwrap_or(hash)))
    }
}

commerce_id!(
    /// An order; chosen by the store (a UUID v7 fits).
    OrderId,
    "order id"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_validate() {
        assert!(OrderId::new("ord_01J9Z.x:1").is_ok());
        assert_eq!(OrderId::new(""), Err(IdError::Empty { kind: "order id" }));
        assert!(matches!(QuoteId::new("q 1"), Err(IdError::BadChar { .. })));
        assert!(matches!(
            QuoteId::new("q".repeat(129)),
            Err(IdError::TooLong { .. })
        ));
        assert!(serde_json::from_str::<OrderId>("\"a/b\"").is_err());
        let id: OrderId = serde_json::from_str("\"o-1\"").unwrap();
        assert_eq!(id.as_str(), "o-1");
    }
}
