//! Shared plumbing: an HTTP response body of SSE, through a provider's decoder, into a
//! stream of [`StreamEvent`]s that ends with an error if the body stops before the
//! provider's end marker.

use crate::sse::{SseEvent, SseParser};
use crate::{LlmError, StreamEvent};
use futures::{Stream, StreamExt};
use std::collections::VecDeque;

/// A provider's event decoder.
pub trait Decoder: Send + 'static {
    fn decode(&mut self, event: &SseEvent) -> Result<Vec<StreamEvent>, LlmError>;
    /// The provider's end marker was seen.
    fn finished(&self) -> bool;
}

/// Maps a 429 or another non-2xx answer to its error, reading the body for context.
pub async fn check(res: reqwest::Response) -> Result<reqwest::Response, LlmError> {
    let status = res.status();
    if status.as_u16() == 429 {
        let retry_after = res
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok());
        return Err(LlmError::RateLimited { retry_after });
    }
    if !status.is_success() {
        let body = res.text().await.unwrap_or_default();
        return Err(LlmError::Status {
            status: status.as_u16(),
            body: body.chars().take(500).collect(),
        });
    }
    Ok(res)
}

struct State<D> {
    bytes: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    parser: SseParser,
    decoder: D,
    pending: VecDeque<Result<StreamEvent, LlmError>>,
    ended: bool,
}

/// The decoded events of a streamed response. Dropping the stream drops the connection,
/// which cancels the upstream request.
pub fn events<D: Decoder>(
    res: reqwest::Response,
    decoder: D,
) -> impl Stream<Item = Result<StreamEvent, LlmError>> + Send + use<D> {
    let st = State {
        bytes: res.bytes_stream().boxed(),
        parser: SseParser::new(),
        decoder,
        pending: VecDeque::new(),
        ended: false,
    };
    futures::stream::unfold(st, |mut st| async move {
        loop {
            if let Some(ev) = st.pending.pop_front() {
                if ev.is_err() {
                    st.ended = true;
                    st.pending.clear();
                }
                return Some((ev, st));
            }
            if st.ended {
                return None;
            }
            match st.bytes.next().await {
                Some(Ok(chunk)) => {
                    for e in st.parser.push(&chunk) {
                        match st.decoder.decode(&e) {
                            Ok(evs) => st.pending.extend(evs.into_iter().map(Ok)),
                            Err(err) => st.pending.push_back(Err(err)),
                        }
                    }
                }
                Some(Err(e)) => st
                    .pending
                    .push_back(Err(LlmError::Transport(e.to_string()))),
                None => {
                    st.ended = true;
                    for e in st.parser.finish() {
                        if let Ok(evs) = st.decoder.decode(&e) {
                            st.pending.extend(evs.into_iter().map(Ok));
                        }
                    }
                    if !st.decoder.finished() {
                        st.pending.push_back(Err(LlmError::Truncated));
                    }
                }
            }
        }
    })
}
