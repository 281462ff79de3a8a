//! A canonical byte encoding for hashing: a version line, then one record per field
//! in a fixed order.
//!
//! A string record is `tag=LEN:VALUE\n` (LEN is the byte length, so a value may
//! contain any character, newlines and `=` included, without becoming ambiguous); a
//! number record is `tag#DECIMAL\n`. The order of records is fixed by the code that
//! writes them, so two encodings are equal exactly when every field is equal.

use sha2::{Digest, Sha256};

/// Accumulates the canonical encoding of one value.
pub(crate) struct Canon {
    buf: Vec<u8>,
}

impl Canon {
    /// Starts an encoding with its version line (for example `stonepot.quote.v1`).
    pub(crate) fn new(version: &str) -> Self {
        let mut buf = Vec::with_capacity(512);
        buf.extend_from_slice(version.as_bytes());
        buf.push(b'\n');
        Canon { buf }
    }

    pub(crate) fn str(&mut self, tag: &str, value: &str) {
        self.buf.extend_from_slice(tag.as_bytes());
        self.buf.push(b'=');
        self.buf
            .extend_from_slice(value.len().to_string().as_bytes());
        self.buf.push(b':');
        self.buf.extend_from_slice(value.as_bytes());
        self.buf.push(b'\n');
    }

    pub(crate) fn int(&mut self, tag: &str, value: impl Into<i128>) {
        self.buf.extend_from_slice(tag.as_bytes());
        self.buf.push(b'#');
        self.buf
            .extend_from_slice(value.into().to_string().as_bytes());
        self.buf.push(b'\n');
    }

    pub(crate) fn flag(&mut self, tag: &str, value: bool) {
        self.int(tag, i128::from(value));
    }

    /// The encoded bytes.
    pub(crate) fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    /// Lowercase hex SHA-256 of the encoding.
    pub(crate) fn sha256_hex(&self) -> String {
        hex(&Sha256::digest(&self.buf))
    }
}

/// Lowercase hexadecimal.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_length_prefixed() {
        let mut c = Canon::new("t.v1");
        c.str("name", "a\nb=c");
        c.int("qty", 2i64);
        c.flag("incl", true);
        assert_eq!(
            String::from_utf8(c.into_bytes()).unwrap(),
            "t.v1\nname=5:a\nb=c\nqty#2\nincl#1\n"
        );
    }

    #[test]
    fn distinct_splits_hash_differently() {
        let mut a = Canon::new("t");
        a.str("x", "ab");
        a.str("y", "c");
        let mut b = Canon::new("t");
        b.str("x", "a");
        b.str("y", "bc");
        assert_ne!(a.sha256_hex(), b.sha256_hex());
    }

    #[test]
    fn sha256_of_empty_is_the_known_digest() {
        assert_eq!(
            hex(&Sha256::digest(b"")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(hex(&[0x00, 0xff, 0x0a]), "00ff0a");
    }
}
