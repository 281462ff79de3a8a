//! Identifiers of quotes and orders: validated on construction, and short and plain
//! enough to be display-component ids (at most 128 characters).

/// Quote and order ids follow the session id's rule (they appear beside it in display
/// components): 1–128 letters, digits, `-`, `_`, `.` or `:`.
macro_rules! commerce_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        crate::ids::id_type!(
            $(#[$doc])*
            $name,
            $kind,
            128,
            "letters, digits, '-', '_', '.' and ':'",
            |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':')
        );
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
    use crate::ids::IdError;

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
