//! Static web assets embedded in the binary. Each file is served twice: under its plain
//! name (`/assets/app.css`, cached for an hour) and under a content-hashed name
//! (`/assets/app.3f9a1c2b7d.css`, cached for a year as immutable). Pages link the
//! hashed names, so a new build never meets a stale cache.

use rust_embed::RustEmbed;
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use std::collections::HashMap;

#[derive(RustEmbed)]
#[folder = "assets/"]
struct Embedded;

/// One embedded file.
pub struct Asset {
    pub bytes: Cow<'static, [u8]>,
    pub content_type: &'static str,
    /// The first 10 hex digits of the content's SHA-256.
    pub hash: String,
    pub immutable: bool,
}

/// The manifest from logical names to hashed names, and the files themselves.
pub struct Assets {
    hashed_name: HashMap<String, String>,
    by_hashed: HashMap<String, String>,
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit('.').next().unwrap_or_default() {
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "webp" => "image/webp",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "json" => "application/json",
        "html" => "text/html; charset=utf-8",
        _ => "application/octet-stream",
    }
}

fn with_hash(name: &str, hash: &str) -> String {
    match name.rsplit_once('.') {
        Some((stem, ext)) => format!("{stem}.{hash}.{ext}"),
        None => format!("{name}.{hash}"),
    }
}

impl Assets {
    pub fn load() -> Assets {
        let mut hashed_name = HashMap::new();
        let mut by_hashed = HashMap::new();
        for name in Embedded::iter() {
            if let Some(file) = Embedded::get(&name) {
                let hash = hex::encode(Sha256::digest(&file.data));
                let hashed = with_hash(&name, hash.get(..10).unwrap_or(&hash));
                hashed_name.insert(name.to_string(), hashed.clone());
                by_hashed.insert(hashed, name.to_string());
            }
        }
        Assets {
            hashed_name,
            by_hashed,
        }
    }

    /// The URL to link for a logical asset name (hashed when the file exists).
    pub fn url(&self, name: &str) -> String {
        match self.hashed_name.get(name) {
            Some(h) => format!("/assets/{h}"),
            None => format!("/assets/{name}"),
        }
    }

    /// Looks a request path up as a hashed name first, then as a plain name.
    pub fn get(&self, path: &str) -> Option<Asset> {
        let (name, immutable) = match self.by_hashed.get(path) {
            Some(n) => (n.as_str(), true),
            None => (path, false),
        };
        let file = Embedded::get(name)?;
        let hash = hex::encode(file.metadata.sha256_hash());
        Some(Asset {
            bytes: file.data,
            content_type: content_type(name),
            hash: hash.get(..10).unwrap_or(&hash).to_string(),
            immutable,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_has_a_hashed_twin() {
        let a = Assets::load();
        let url = a.url("app.css");
        assert!(
            url.starts_with("/assets/app.") && url.ends_with(".css"),
            "{url}"
        );
        let hashed = a.get(url.trim_start_matches("/assets/")).unwrap();
        assert!(hashed.immutable);
        let plain = a.get("app.css").unwrap();
        assert!(!plain.immutable);
        assert_eq!(hashed.bytes, plain.bytes);
        assert!(a.get("nope.css").is_none());
    }
}
