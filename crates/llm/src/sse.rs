//! An incremental Server-Sent Events parser (the WHATWG event-stream rules) that accepts
//! bytes in arbitrary chunks: a line split across network reads, `\r\n`, `\r` or `\n`
//! endings, comments, multi-line `data`, and a stream that ends without a blank line.

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseEvent {
    /// The `event:` field (None means the default, `message`).
    pub event: Option<String>,
    /// The `data:` lines joined with `\n`.
    pub data: String,
    /// The last `id:` seen, if any.
    pub id: Option<String>,
}

/// Feed bytes in, take events out.
#[derive(Debug, Default)]
pub struct SseParser {
    buf: Vec<u8>,
    /// A `\r` ended the previous chunk: a `\n` starting the next one belongs to it.
    pending_cr: bool,
    event: Option<String>,
    data: Vec<String>,
    has_data: bool,
    last_id: Option<String>,
}

impl SseParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a chunk and returns every event it completes.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        let mut out = Vec::new();
        let mut bytes = chunk;
        // An empty read must not consume the pending `\r`: the `\n` may still come.
        if self.pending_cr && !bytes.is_empty() {
            self.pending_cr = false;
            if let Some((b'\n', rest)) = bytes.split_first() {
                bytes = rest;
            }
        }
        let mut start = 0;
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes.get(i).copied().unwrap_or_default();
            if b == b'\n' || b == b'\r' {
                self.buf
                    .extend_from_slice(bytes.get(start..i).unwrap_or_default());
                let line = std::mem::take(&mut self.buf);
                self.line(&line, &mut out);
                if b == b'\r' {
                    match bytes.get(i + 1) {
                        Some(b'\n') => i += 1,
                        None => self.pending_cr = true,
                        _ => {}
                    }
                }
                start = i + 1;
            }
            i += 1;
        }
        self.buf
            .extend_from_slice(bytes.get(start..).unwrap_or_default());
        out
    }

    /// Ends the stream: an unterminated last line counts, an undispatched event is
    /// dropped (as the spec says).
    pub fn finish(&mut self) -> Vec<SseEvent> {
        let mut out = Vec::new();
        if !self.buf.is_empty() {
            let line = std::mem::take(&mut self.buf);
            self.line(&line, &mut out);
        }
        out
    }

    fn line(&mut self, line: &[u8], out: &mut Vec<SseEvent>) {
        if line.is_empty() {
            if self.has_data {
                out.push(SseEvent {
                    event: self.event.take(),
                    data: std::mem::take(&mut self.data).join("\n"),
                    id: self.last_id.clone(),
                });
            }
            self.event = None;
            self.data.clear();
            self.has_data = false;
            return;
        }
        if line.first() == Some(&b':') {
            return; // comment / keep-alive
        }
        let text = String::from_utf8_lossy(line);
        let (field, value) = match text.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (text.as_ref(), ""),
        };
        match field {
            "data" => {
                self.data.push(value.to_string());
                self.has_data = true;
            }
            "event" => self.event = Some(value.to_string()),
            "id" if !value.contains('\0') => self.last_id = Some(value.to_string()),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const STREAM: &str = ": keep-alive\r\nevent: message_start\r\ndata: {\"a\":1}\r\n\r\ndata: line one\ndata: line two\n\nid: 7\rdata: x\r\rdata: [DONE]\n\n";

    fn all_at_once() -> Vec<SseEvent> {
        let mut p = SseParser::new();
        let mut v = p.push(STREAM.as_bytes());
        v.extend(p.finish());
        v
    }

    #[test]
    fn parses_fields_endings_and_comments() {
        let v = all_at_once();
        assert_eq!(v.len(), 4);
        assert_eq!(v[0].event.as_deref(), Some("message_start"));
        assert_eq!(v[0].data, "{\"a\":1}");
        assert_eq!(v[1].data, "line one\nline two");
        assert_eq!(v[1].event, None);
        assert_eq!((v[2].id.as_deref(), v[2].data.as_str()), (Some("7"), "x"));
        assert_eq!(v[3].data, "[DONE]");
    }

    #[test]
    fn an_unfinished_event_is_dropped_at_the_end() {
        let mut p = SseParser::new();
        assert!(p.push(b"data: partial").is_empty());
        assert!(p.finish().is_empty());
    }

    #[test]
    fn an_empty_read_between_cr_and_lf_keeps_the_event() {
        let mut p = SseParser::new();
        let mut v = p.push(b"event: e\r");
        v.extend(p.push(b""));
        v.extend(p.push(b"\ndata: x\n\n"));
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].event.as_deref(), Some("e"));
    }

    proptest! {
        /// However the network splits the bytes, the same events come out.
        #[test]
        fn chunking_does_not_matter(cuts in proptest::collection::vec(0usize..STREAM.len(), 0..24)) {
            let bytes = STREAM.as_bytes();
            let mut cuts = cuts;
            cuts.sort();
            let mut p = SseParser::new();
            let mut got = Vec::new();
            let mut last = 0;
            for c in cuts {
                got.extend(p.push(&bytes[last..c]));
                last = c;
            }
            got.extend(p.push(&bytes[last..]));
            got.extend(p.finish());
            prop_assert_eq!(got, all_at_once());
        }
    }
}
