//! Object storage for artifacts (daily close reports, receipts): a directory under
//! `<DATA_DIR>/objects` by default, or whatever `OBJECT_STORE_URL` names —
//! `file:///path` or an S3-compatible bucket `s3://bucket/prefix` with endpoint, region
//! and credentials from the standard `AWS_*` variables (`AWS_ENDPOINT_URL`,
//! `AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_ALLOW_HTTP`, …).
//!
//! [`Objects`] wraps the `object_store` crate's `ObjectStore` trait object, so tests and
//! other backends swap in behind the same three calls: `put` (returning the SHA-256 of
//! what was written), `get` and `exists`. Paths are `/`-separated and relative to the
//! configured root; `..`, empty segments and control characters are refused.

use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path as ObjectPath;
use object_store::{Attribute, Attributes, ObjectStore, ObjectStoreExt, PutOptions, PutPayload};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

/// Why an object operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ObjectsError {
    #[error("OBJECT_STORE_URL: {0}")]
    Config(String),
    #[error("object path '{0}' is not a relative path of plain segments")]
    BadPath(String),
    #[error("object store: {0}")]
    Store(#[from] object_store::Error),
    #[error("object store: syncing to disk: {0}")]
    Io(std::io::Error),
}

/// A handle to the configured object store; cheap to clone.
#[derive(Clone)]
pub struct Objects {
    store: Arc<dyn ObjectStore>,
    prefix: ObjectPath,
    /// `file:///…` or `s3://bucket/prefix`, for logs and `/health`.
    location: String,
    /// Whether the backend keeps a content type per object (S3 does; a directory has
    /// only file names, so the extension says it).
    content_types: bool,
    /// The directory of a local store: its writes are synced before `put` returns,
    /// since the store records an object's hash as soon as `put` succeeds (an S3 PUT is
    /// durable when it is answered).
    root: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for Objects {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Objects")
            .field("location", &self.location)
            .finish()
    }
}

impl Objects {
    /// Opens the store `url` names, or `<data_dir>/objects` when it is `None`. `aws`
    /// holds the `AWS_*` environment variables (only read for `s3://`).
    pub fn open(
        url: Option<&str>,
        data_dir: &Path,
        aws: &HashMap<String, String>,
    ) -> Result<Objects, ObjectsError> {
        match url {
            None => Self::directory(&data_dir.join("objects")),
            Some(u) => {
                if let Some(path) = u.strip_prefix("file://") {
                    if !path.starts_with('/') {
                        return Err(ObjectsError::Config(format!(
                            "'{u}' must be an absolute file:///path"
                        )));
                    }
                    Self::directory(Path::new(path))
                } else if u.starts_with("s3://") {
                    Self::s3(u, aws)
                } else {
                    Err(ObjectsError::Config(format!(
                        "'{u}' is neither file:///path nor s3://bucket/prefix"
                    )))
                }
            }
        }
    }

    fn directory(dir: &Path) -> Result<Objects, ObjectsError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| ObjectsError::Config(format!("creating {}: {e}", dir.display())))?;
        let fs = LocalFileSystem::new_with_prefix(dir)
            .map_err(|e| ObjectsError::Config(format!("{}: {e}", dir.display())))?;
        Ok(Objects {
            store: Arc::new(fs),
            prefix: ObjectPath::default(),
            location: format!("file://{}", dir.display()),
            content_types: false,
            root: Some(dir.to_path_buf()),
        })
    }

    fn s3(url: &str, aws: &HashMap<String, String>) -> Result<Objects, ObjectsError> {
        let rest = url.trim_start_matches("s3://");
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(ObjectsError::Config(format!("'{url}' names no bucket")));
        }
        // reqwest is built without a bundled TLS provider so that ring stays the one
        // crypto library of the binary; install it (a no-op when already installed).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = object_store::aws::AmazonS3Builder::new();
        let mut keys: Vec<(&String, &String)> =
            aws.iter().filter(|(k, _)| k.starts_with("AWS_")).collect();
        keys.sort();
        for (k, v) in keys {
            if let Ok(key) = k.to_ascii_lowercase().parse() {
                builder = builder.with_config(key, v.clone());
            }
        }
        let s3 = builder
            .with_bucket_name(bucket)
            .build()
            .map_err(|e| ObjectsError::Config(format!("'{url}': {e}")))?;
        let prefix = ObjectPath::parse(prefix.trim_matches('/'))
            .map_err(|e| ObjectsError::Config(format!("'{url}': {e}")))?;
        Ok(Objects {
            store: Arc::new(s3),
            prefix,
            location: url.trim_end_matches('/').to_string(),
            content_types: true,
            root: None,
        })
    }

    /// An in-memory store (tests and benchmarks that do not care about the files).
    pub fn in_memory() -> Objects {
        Objects {
            store: Arc::new(InMemory::new()),
            prefix: ObjectPath::default(),
            location: "memory://".into(),
            content_types: true,
            root: None,
        }
    }

    /// Where objects go, for logs.
    pub fn location(&self) -> &str {
        &self.location
    }

    fn path(&self, path: &str) -> Result<ObjectPath, ObjectsError> {
        let bad = || ObjectsError::BadPath(path.to_string());
        if path.is_empty() || path.len() > 1024 {
            return Err(bad());
        }
        let mut parts = Vec::new();
        for seg in path.split('/') {
            if seg.is_empty() || seg == "." || seg == ".." || seg.chars().any(char::is_control) {
                return Err(bad());
            }
            parts.push(seg);
        }
        let mut full: Vec<object_store::path::PathPart<'_>> = self.prefix.parts().collect();
        for seg in parts {
            full.push(object_store::path::PathPart::parse(seg).map_err(|_| bad())?);
        }
        Ok(ObjectPath::from_iter(full))
    }

    /// Writes `bytes` at `path` (replacing what was there) and returns their SHA-256 in
    /// lowercase hex. The write is atomic: readers see the old object or the new one.
    pub async fn put(
        &self,
        path: &str,
        bytes: Vec<u8>,
        content_type: &str,
    ) -> Result<String, ObjectsError> {
        let location = self.path(path)?;
        let sha = hex::encode(Sha256::digest(&bytes));
        let mut opts = PutOptions::default();
        if self.content_types {
            let mut attributes = Attributes::new();
            attributes.insert(Attribute::ContentType, content_type.to_string().into());
            opts.attributes = attributes;
        }
        self.store
            .put_opts(&location, PutPayload::from(bytes), opts)
            .await?;
        if let Some(root) = &self.root {
            let file = root.join(location.as_ref());
            tokio::task::spawn_blocking(move || sync_new_file(&file))
                .await
                .map_err(|e| ObjectsError::Io(std::io::Error::other(e.to_string())))?
                .map_err(ObjectsError::Io)?;
        }
        Ok(sha)
    }

    /// The object at `path`, or `None` when there is none.
    pub async fn get(&self, path: &str) -> Result<Option<Vec<u8>>, ObjectsError> {
        let location = self.path(path)?;
        match self.store.get(&location).await {
            Ok(got) => Ok(Some(got.bytes().await?.to_vec())),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Whether an object exists at `path`.
    pub async fn exists(&self, path: &str) -> Result<bool, ObjectsError> {
        let location = self.path(path)?;
        match self.store.head(&location).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
}

/// Makes a file written by rename durable: its data, then the directory entry.
fn sync_new_file(file: &Path) -> std::io::Result<()> {
    std::fs::File::open(file)?.sync_data()?;
    match file.parent() {
        Some(dir) => std::fs::File::open(dir)?.sync_all(),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_directory_store_round_trips_and_refuses_escapes() {
        let dir = tempfile::tempdir().unwrap();
        let o = Objects::open(None, dir.path(), &HashMap::new()).unwrap();
        assert!(!o.exists("closes/t/2026-11-23/r0.json").await.unwrap());
        let sha = o
            .put(
                "closes/t/2026-11-23/r0.json",
                b"{}\n".to_vec(),
                "application/json",
            )
            .await
            .unwrap();
        assert_eq!(sha, hex::encode(Sha256::digest(b"{}\n")));
        assert!(o.exists("closes/t/2026-11-23/r0.json").await.unwrap());
        assert_eq!(
            o.get("closes/t/2026-11-23/r0.json")
                .await
                .unwrap()
                .as_deref(),
            Some(&b"{}\n"[..])
        );
        let file = dir.path().join("objects/closes/t/2026-11-23/r0.json");
        assert_eq!(std::fs::read(file).unwrap(), b"{}\n");
        assert_eq!(o.get("nothing/here").await.unwrap(), None);
        for bad in ["", "../x", "a//b", "/abs", "a/./b", "a\nb"] {
            assert!(
                matches!(o.exists(bad).await, Err(ObjectsError::BadPath(_))),
                "{bad:?}"
            );
        }
    }

    #[tokio::test]
    async fn urls_pick_the_backend() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("file://{}", dir.path().join("elsewhere").display());
        let o = Objects::open(Some(&url), dir.path(), &HashMap::new()).unwrap();
        o.put("a.txt", b"x".to_vec(), "text/plain").await.unwrap();
        assert!(dir.path().join("elsewhere/a.txt").exists());
        let aws: HashMap<String, String> = [
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:9"),
            ("AWS_ALLOW_HTTP", "true"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "k"),
            ("AWS_SECRET_ACCESS_KEY", "s"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let s3 = Objects::open(Some("s3://bucket/some/prefix/"), dir.path(), &aws).unwrap();
        assert_eq!(s3.location(), "s3://bucket/some/prefix");
        assert_eq!(
            s3.path("a/b.json").unwrap().as_ref(),
            "some/prefix/a/b.json"
        );
        for bad in ["ftp://x", "file://relative", "s3://"] {
            assert!(Objects::open(Some(bad), dir.path(), &aws).is_err(), "{bad}");
        }
        let mem = Objects::in_memory();
        mem.put("k", b"v".to_vec(), "text/plain").await.unwrap();
        assert!(mem.exists("k").await.unwrap());
    }
}
