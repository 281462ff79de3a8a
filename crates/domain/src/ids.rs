//! Identifier newtypes that validate on construction.

/// Why a string was refused as an identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("{kind} must not be empty")]
    Empty { kind: &'static str },
    #[error("{kind} is longer than {max} characters")]
    TooLong { kind: &'static str, max: usize },
    #[error("{kind} may only contain {allowed}")]
    BadChar {
        kind: &'static str,
        allowed: &'static str,
    },
}

pub(crate) fn check(
    kind: &'static str,
    s: &str,
    max: usize,
    allowed: &'static str,
    ok: impl Fn(char) -> bool,
) -> Result<(), IdError> {
    if s.is_empty() {
        return Err(IdError::Empty { kind });
    }
    if s.len() > max {
        return Err(IdError::TooLong { kind, max });
    }
    if !s.chars().all(ok) {
        return Err(IdError::BadChar { kind, allowed });
    }
    Ok(())
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $max:literal, $allowed:literal, $pred:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, ::serde::Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Validates and wraps `s`.
            pub fn new(s: impl Into<String>) -> Result<Self, $crate::ids::IdError> {
                let s = s.into();
                $crate::ids::check($kind, &s, $max, $allowed, $pred)?;
                Ok(Self(s))
            }

            /// The identifier as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::ids::IdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::new(s)
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <String as ::serde::Deserialize>::deserialize(d)?;
                Self::new(s).map_err(::serde::de::Error::custom)
            }
        }
    };
}
pub(crate) use id_type;

id_type!(
    /// A tenant (one business): lowercase letters, digits, `-` and `_`, at most 64.
    TenantId,
    "tenant id",
    64,
    "lowercase letters, digits, '-' and '_'",
    |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_'
);

id_type!(
    /// A conversation/display session: letters, digits, `-`, `_`, `.` and `:`, at most 128.
    SessionId,
    "session id",
    128,
    "letters, digits, '-', '_', '.' and ':'",
    |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':')
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_ids_validate() {
        assert!(TenantId::new("demo-restaurant").is_ok());
        assert_eq!(TenantId::new(""), Err(IdError::Empty { kind: "tenant id" }));
        assert!(matches!(
            TenantId::new("Demo"),
            Err(IdError::BadChar { .. })
        ));
        assert!(matches!(
            TenantId::new("a".repeat(65)),
            Err(IdError::TooLong { .. })
        ));
    }

    #[test]
    fn session_ids_validate_and_deserialize() {
        assert!(SessionId::new("conv_01J:abc.def-1").is_ok());
        assert!(SessionId::new("a/b").is_err());
        let bad: Result<SessionId, _> = serde_json::from_str("\"a b\"");
        assert!(bad.is_err());
    }
}
