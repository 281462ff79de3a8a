//! A JSON body extractor whose rejections use the one error shape and say exactly what
//! is wrong: 415 without a JSON content type, 413 over the body limit, 400 for syntax
//! errors (with line and column), 422 for a well-formed body of the wrong shape (with the
//! path of the offending field).

use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;

/// Like `axum::Json`, with Stonepot's error bodies.
pub struct Json<T>(pub T);

fn is_json(req: &Request) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|mime| {
            let mime = mime.trim().to_ascii_lowercase();
            mime == "application/json"
                || (mime.starts_with("application/") && mime.ends_with("+json"))
        })
        .unwrap_or(false)
}

/// Parses `bytes` as `T`, mapping failures to 400 or 422.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let value: Result<T, _> = serde_path_to_error::deserialize(de);
    match value {
        Ok(v) => Ok(v),
        Err(e) => {
            let path = e.path().to_string();
            let inner = e.into_inner();
            match inner.classify() {
                serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                    Err(ApiError::bad_request(
                        "malformed_json",
                        format!(
                            "malformed JSON at line {} column {}: {}",
                            inner.line(),
                            inner.column(),
                            strip_position(&inner.to_string())
                        ),
                    ))
                }
                serde_json::error::Category::Io => Err(ApiError::bad_request(
                    "malformed_json",
                    format!("could not read the body: {inner}"),
                )),
                serde_json::error::Category::Data => {
                    let msg = strip_position(&inner.to_string());
                    Err(if path == "." || path.is_empty() {
                        ApiError::unprocessable(msg)
                    } else {
                        ApiError::unprocessable(format!("{path}: {msg}"))
                    })
                }
            }
        }
    }
}

fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

impl<S, T> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(&req) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "expected Content-Type: application/json",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rej| {
            let status = rej.status();
            if status == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::for_status(status)
            } else {
                ApiError::bad_request("unreadable_body", rej.body_text())
            }
        })?;
        parse_json(&bytes).map(Json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        items: Vec<Inner>,
    }
    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Inner {
        qty: u32,
    }

    #[test]
    fn syntax_errors_name_the_position() {
        let e = parse_json::<Body>(b"{\"name\": \"x\",\n \"items\": [}").unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert!(e.message.contains("line 2 column"), "{}", e.message);
    }

    #[test]
    fn shape_errors_name_the_field() {
        let e =
            parse_json::<Body>(br#"{"name":"x","items":[{"qty":1},{"qty":"two"}]}"#).unwrap_err();
        assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(e.message.starts_with("items[1].qty:"), "{}", e.message);
        let e = parse_json::<Body>(br#"{"items":[]}"#).unwrap_err();
        assert!(e.message.contains("missing field `name`"), "{}", e.message);
    }
}
