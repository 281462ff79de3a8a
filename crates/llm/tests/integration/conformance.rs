//! One conformance suite for every wire format. A fake provider on 127.0.0.1 (raw HTTP/1.1
//! over TCP, so the test controls every byte and sees the client hang up) renders the
//! same scripted answers as OpenAI chat SSE, Anthropic Messages SSE or Gemini
//! `streamGenerateContent?alt=sse`, or fails in a scripted way (429 with Retry-After,
//! 500, cut mid-stream, stall before the first byte, stall mid-stream, malformed frame).
//! Each case runs once per format (`openai::…`, `anthropic::…`, `gemini::…`), against
//! the adapter and through the Router, and checks the provider-neutral events, the
//! error, the requests the fake saw, and the circuit breaker.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use futures::StreamExt;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use stonepot_llm::anthropic::AnthropicMessages;
use stonepot_llm::config::{ProviderKind, RouteConfig, TargetConfig, WeightedTarget};
use stonepot_llm::gemini::Gemini;
use stonepot_llm::openai::OpenAiChat;
use stonepot_llm::provider::{Price, Provider};
use stonepot_llm::router::BreakerState;
use stonepot_llm::{
    ChatRequest, LlmConfig, LlmError, Message, RoutedStream, Router, StopReason, StreamEvent,
    ToolSpec, Usage,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

const TTFT_MS: u64 = 250;
const STALL_MS: u64 = 300;
const KEY: &str = "sk-fake-0123456789";

// ---------------------------------------------------------------------------------------
// Scripted answers, rendered per wire format.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    OpenAi,
    Anthropic,
    Gemini,
}

#[derive(Debug, Clone)]
struct Call {
    id: &'static str,
    name: &'static str,
    /// The argument JSON, in the fragments a streaming provider would send.
    fragments: Vec<&'static str>,
}

#[derive(Debug, Clone)]
struct Answer {
    text: Vec<&'static str>,
    calls: Vec<Call>,
    /// OpenAI only: send the calls' fragments round-robin, as parallel calls do.
    interleave: bool,
    usage: Usage,
}

impl Answer {
    fn stop(&self) -> StopReason {
        if self.calls.is_empty() {
            StopReason::EndTurn
        } else {
            StopReason::ToolUse
        }
    }
}

fn hello() -> Answer {
    Answer {
        text: vec!["Hello", ", world"],
        calls: vec![],
        interleave: false,
        usage: Usage {
            input_tokens: 12,
            output_tokens: 3,
            cached_input_tokens: 0,
        },
    }
}

fn one_call() -> Answer {
    Answer {
        text: vec!["Adding it."],
        calls: vec![Call {
            id: "call_1",
            name: "add_to_cart",
            fragments: vec![r#"{"item":"#, r#""margherita","#, r#""qty":2}"#],
        }],
        interleave: false,
        usage: Usage {
            input_tokens: 80,
            output_tokens: 20,
            cached_input_tokens: 0,
        },
    }
}

fn two_calls() -> Answer {
    Answer {
        text: vec![],
        calls: vec![
            Call {
                id: "call_a",
                name: "add_to_cart",
                fragments: vec![r#"{"item":"marg"#, r#"herita","qty":1}"#],
            },
            Call {
                id: "call_b",
                name: "show_cart",
                fragments: vec![r#"{"#, r#""verbose":true}"#],
            },
        ],
        interleave: true,
        usage: Usage {
            input_tokens: 90,
            output_tokens: 30,
            cached_input_tokens: 0,
        },
    }
}

fn cached() -> Answer {
    Answer {
        usage: Usage {
            input_tokens: 1_200,
            output_tokens: 42,
            cached_input_tokens: 1_024,
        },
        ..hello()
    }
}

fn sse(event: Option<&str>, data: &Value) -> String {
    match event {
        Some(e) => format!("event: {e}\ndata: {data}\n\n"),
        None => format!("data: {data}\n\n"),
    }
}

impl Format {
    fn kind(self) -> ProviderKind {
        match self {
            Format::OpenAi => ProviderKind::OpenAi,
            Format::Anthropic => ProviderKind::Anthropic,
            Format::Gemini => ProviderKind::Gemini,
        }
    }

    /// Whether tool-call arguments arrive in fragments (Gemini sends each call whole).
    fn streams_arguments(self) -> bool {
        self != Format::Gemini
    }

    fn base_url(self, addr: SocketAddr) -> String {
        match self {
            Format::OpenAi => format!("http://{addr}/v1"),
            Format::Anthropic | Format::Gemini => format!("http://{addr}"),
        }
    }

    fn adapter(self, base: String) -> Provider {
        let client = reqwest::Client::new();
        let key = Some(KEY.to_string());
        match self {
            Format::OpenAi => Provider::OpenAi(OpenAiChat::new(base, key, client)),
            Format::Anthropic => Provider::Anthropic(AnthropicMessages::new(base, key, client)),
            Format::Gemini => Provider::Gemini(Gemini::new(base, key, client)),
        }
    }

    /// The model a request asked for, and whether it carried the key where the
    /// provider expects it.
    fn model_and_key(self, r: &Seen) -> (String, bool) {
        match self {
            Format::OpenAi => {
                assert_eq!(r.path, "/v1/chat/completions");
                let auth = r.headers.get("authorization").map(String::as_str);
                (
                    r.body["model"].as_str().unwrap().to_string(),
                    auth == Some(&format!("Bearer {KEY}")),
                )
            }
            Format::Anthropic => {
                assert_eq!(r.path, "/v1/messages");
                assert_eq!(r.headers["anthropic-version"], "2023-06-01");
                (
                    r.body["model"].as_str().unwrap().to_string(),
                    r.headers.get("x-api-key").map(String::as_str) == Some(KEY),
                )
            }
            Format::Gemini => {
                let model = r
                    .path
                    .strip_prefix("/v1beta/models/")
                    .and_then(|p| p.strip_suffix(":streamGenerateContent?alt=sse"))
                    .unwrap_or_else(|| panic!("unexpected path {}", r.path));
                (
                    model.to_string(),
                    r.headers.get("x-goog-api-key").map(String::as_str) == Some(KEY),
                )
            }
        }
    }

    fn malformed(self) -> String {
        match self {
            Format::OpenAi => {
                "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"oo\n\n".into()
            }
            Format::Anthropic => {
                "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\n\n".into()
            }
            Format::Gemini => "data: {\"candidates\":[\n\n".into(),
        }
    }

    /// The answer as this format's SSE frames, one event each.
    fn render(self, a: &Answer) -> Vec<String> {
        match self {
            Format::OpenAi => render_openai(a),
            Format::Anthropic => render_anthropic(a),
            Format::Gemini => render_gemini(a),
        }
    }
}

fn render_openai(a: &Answer) -> Vec<String> {
    let chunk = |delta: Value, finish: Value| {
        sse(
            None,
            &json!({"id":"c1","object":"chat.completion.chunk","choices":[
                {"index":0,"delta":delta,"finish_reason":finish}]}),
        )
    };
    let mut out = vec![chunk(json!({"role":"assistant","content":""}), Value::Null)];
    for t in &a.text {
        out.push(chunk(json!({ "content": t }), Value::Null));
    }
    let start = |i: usize, c: &Call| {
        chunk(
            json!({"tool_calls":[{"index":i,"id":c.id,"type":"function",
                "function":{"name":c.name,"arguments":""}}]}),
            Value::Null,
        )
    };
    let frag = |i: usize, f: &str| {
        chunk(
            json!({"tool_calls":[{"index":i,"function":{"arguments":f}}]}),
            Value::Null,
        )
    };
    if a.interleave {
        for (i, c) in a.calls.iter().enumerate() {
            out.push(start(i, c));
        }
        let rounds = a.calls.iter().map(|c| c.fragments.len()).max().unwrap_or(0);
        for r in 0..rounds {
            for (i, c) in a.calls.iter().enumerate() {
                if let Some(f) = c.fragments.get(r) {
                    out.push(frag(i, f));
                }
            }
        }
    } else {
        for (i, c) in a.calls.iter().enumerate() {
            out.push(start(i, c));
            for f in &c.fragments {
                out.push(frag(i, f));
            }
        }
    }
    let finish = if a.calls.is_empty() {
        "stop"
    } else {
        "tool_calls"
    };
    out.push(chunk(json!({}), json!(finish)));
    out.push(sse(
        None,
        &json!({"id":"c1","object":"chat.completion.chunk","choices":[],"usage":{
            "prompt_tokens": a.usage.input_tokens,
            "completion_tokens": a.usage.output_tokens,
            "total_tokens": a.usage.input_tokens + a.usage.output_tokens,
            "prompt_tokens_details": {"cached_tokens": a.usage.cached_input_tokens}}}),
    ));
    out.push("data: [DONE]\n\n".into());
    out
}

fn render_anthropic(a: &Answer) -> Vec<String> {
    let u = &a.usage;
    let mut out = vec![
        sse(
            Some("message_start"),
            &json!({"type":"message_start","message":{"id":"msg_1","type":"message",
                "role":"assistant","model":"m","content":[],"stop_reason":null,"usage":{
                "input_tokens": u.input_tokens - u.cached_input_tokens,
                "cache_read_input_tokens": u.cached_input_tokens,
                "cache_creation_input_tokens": 0, "output_tokens": 1}}}),
        ),
        sse(Some("ping"), &json!({"type":"ping"})),
    ];
    let mut index = 0;
    if !a.text.is_empty() {
        out.push(sse(
            Some("content_block_start"),
            &json!({"type":"content_block_start","index":0,
                "content_block":{"type":"text","text":""}}),
        ));
        for t in &a.text {
            out.push(sse(
                Some("content_block_delta"),
                &json!({"type":"content_block_delta","index":0,
                    "delta":{"type":"text_delta","text":t}}),
            ));
        }
        out.push(sse(
            Some("content_block_stop"),
            &json!({"type":"content_block_stop","index":0}),
        ));
        index = 1;
    }
    for c in &a.calls {
        out.push(sse(
            Some("content_block_start"),
            &json!({"type":"content_block_start","index":index,
                "content_block":{"type":"tool_use","id":c.id,"name":c.name,"input":{}}}),
        ));
        for f in &c.fragments {
            out.push(sse(
                Some("content_block_delta"),
                &json!({"type":"content_block_delta","index":index,
                    "delta":{"type":"input_json_delta","partial_json":f}}),
            ));
        }
        out.push(sse(
            Some("content_block_stop"),
            &json!({"type":"content_block_stop","index":index}),
        ));
        index += 1;
    }
    let stop = if a.calls.is_empty() {
        "end_turn"
    } else {
        "tool_use"
    };
    out.push(sse(
        Some("message_delta"),
        &json!({"type":"message_delta","delta":{"stop_reason":stop,"stop_sequence":null},
            "usage":{"output_tokens": u.output_tokens}}),
    ));
    out.push(sse(Some("message_stop"), &json!({"type":"message_stop"})));
    out
}

fn render_gemini(a: &Answer) -> Vec<String> {
    let mut out: Vec<String> = a
        .text
        .iter()
        .map(|t| {
            sse(
                None,
                &json!({"candidates":[{"content":{"role":"model","parts":[{"text":t}]}}]}),
            )
        })
        .collect();
    if !a.calls.is_empty() {
        let parts: Vec<Value> = a
            .calls
            .iter()
            .map(|c| {
                let args: Value = serde_json::from_str(&c.fragments.concat()).unwrap();
                json!({"functionCall": {"id": c.id, "name": c.name, "args": args}})
            })
            .collect();
        out.push(sse(
            None,
            &json!({"candidates":[{"content":{"role":"model","parts":parts}}]}),
        ));
    }
    out.push(sse(
        None,
        &json!({"candidates":[{"content":{"role":"model","parts":[]},"finishReason":"STOP"}],
            "usageMetadata":{"promptTokenCount": a.usage.input_tokens,
                "candidatesTokenCount": a.usage.output_tokens,
                "cachedContentTokenCount": a.usage.cached_input_tokens}}),
    ));
    out
}

// ---------------------------------------------------------------------------------------
// The fake provider.

/// What the fake does with one request.
#[derive(Debug, Clone)]
enum Reply {
    Answer(Answer),
    /// Sends the frames up to and including the first containing the needle, then
    /// closes the connection.
    CutAfter(Answer, &'static str),
    /// Sends the frames up to the needle, then holds the connection open (stall
    /// mid-stream) until the client hangs up.
    HoldAfter(Answer, &'static str),
    /// Sends a malformed frame after the first frame containing the needle (or at the
    /// very start for `""`), then the rest.
    MalformedAfter(Answer, &'static str),
    /// Accepts the request and sends nothing, not even headers.
    Stall,
    /// A JSON error with this status and optional `Retry-After` seconds.
    Status(u16, Option<u64>),
}

#[derive(Debug, Clone)]
struct Seen {
    path: String,
    headers: HashMap<String, String>,
    body: Value,
}

#[derive(Clone)]
struct Fake {
    format: Format,
    addr: SocketAddr,
    script: Arc<Mutex<VecDeque<Reply>>>,
    /// What to do once the script is used up.
    otherwise: Arc<Mutex<Reply>>,
    seen: Arc<Mutex<Vec<Seen>>>,
    /// Held connections the client closed.
    hangups: Arc<AtomicUsize>,
}

impl Fake {
    async fn start(format: Format, script: Vec<Reply>) -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let fake = Fake {
            format,
            addr: listener.local_addr().unwrap(),
            script: Arc::new(Mutex::new(script.into())),
            otherwise: Arc::new(Mutex::new(Reply::Answer(hello()))),
            seen: Arc::default(),
            hangups: Arc::default(),
        };
        let f = fake.clone();
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                tokio::spawn(f.clone().serve(sock));
            }
        });
        fake
    }

    fn base_url(&self) -> String {
        self.format.base_url(self.addr)
    }

    fn otherwise(&self, r: Reply) {
        *self.otherwise.lock().unwrap() = r;
    }

    fn requests(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// Waits (bounded) until `n` held connections have been closed by the client.
    async fn hung_up(&self, n: usize) -> bool {
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if self.hangups.load(Ordering::SeqCst) >= n {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        false
    }

    async fn serve(self, mut sock: TcpStream) {
        let Some(seen) = read_request(&mut sock).await else {
            return;
        };
        self.seen.lock().unwrap().push(seen);
        let reply = self
            .script
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or_else(|| self.otherwise.lock().unwrap().clone());
        let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\
                    cache-control: no-cache\r\nconnection: close\r\n\r\n";
        let upto = |a: &Answer, needle: &str| {
            let frames = self.format.render(a);
            let n = frames
                .iter()
                .position(|f| !needle.is_empty() && f.contains(needle))
                .map_or(0, |i| i + 1);
            (frames, n)
        };
        match reply {
            Reply::Status(code, retry_after) => {
                let body =
                    json!({"error": {"code": code, "message": "scripted failure"}}).to_string();
                let ra = retry_after
                    .map(|s| format!("retry-after: {s}\r\n"))
                    .unwrap_or_default();
                let text = format!(
                    "HTTP/1.1 {code} Scripted\r\ncontent-type: application/json\r\n{ra}\
                     content-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(text.as_bytes()).await;
                let _ = sock.shutdown().await;
            }
            Reply::Answer(a) => {
                let _ = sock.write_all(head.as_bytes()).await;
                write_frames(&mut sock, &self.format.render(&a)).await;
                let _ = sock.shutdown().await;
            }
            Reply::CutAfter(a, needle) => {
                let (frames, n) = upto(&a, needle);
                let _ = sock.write_all(head.as_bytes()).await;
                write_frames(&mut sock, &frames[..n]).await;
                let _ = sock.shutdown().await;
            }
            Reply::MalformedAfter(a, needle) => {
                let (mut frames, n) = upto(&a, needle);
                frames.insert(n, self.format.malformed());
                let _ = sock.write_all(head.as_bytes()).await;
                write_frames(&mut sock, &frames).await;
                let _ = sock.shutdown().await;
            }
            Reply::HoldAfter(a, needle) => {
                let (frames, n) = upto(&a, needle);
                let _ = sock.write_all(head.as_bytes()).await;
                write_frames(&mut sock, &frames[..n]).await;
                self.hold(sock).await;
            }
            Reply::Stall => self.hold(sock).await,
        }
    }

    /// Keeps the connection open until the client closes it (bounded, so nothing leaks).
    async fn hold(&self, mut sock: TcpStream) {
        let mut buf = [0u8; 64];
        let closed = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                match sock.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        })
        .await;
        if closed.is_ok() {
            self.hangups.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// Each frame in two writes, split mid-line, so the client's parser sees partial lines.
async fn write_frames(sock: &mut TcpStream, frames: &[String]) {
    for f in frames {
        let (a, b) = f.as_bytes().split_at(f.len() / 2);
        if sock.write_all(a).await.is_err() || sock.flush().await.is_err() {
            return;
        }
        if sock.write_all(b).await.is_err() || sock.flush().await.is_err() {
            return;
        }
    }
}

async fn read_request(sock: &mut TcpStream) -> Option<Seen> {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 4096];
    let head_end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
        let n = sock.read(&mut tmp).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&tmp[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let path = lines.next()?.split(' ').nth(1)?.to_string();
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let len: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < len {
        let n = sock.read(&mut tmp).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&tmp[..n]);
    }
    Some(Seen {
        path,
        headers,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    })
}

// ---------------------------------------------------------------------------------------
// Provider-neutral view of a stream.

/// A stream's events with each tool call folded into one entry at its end; building it
/// asserts the stream was well formed (a call's fragments only while it is open, every
/// call closed, Usage then Done last).
#[derive(Debug, Clone, PartialEq)]
enum N {
    Text(String),
    Call {
        id: String,
        name: String,
        args: Value,
    },
    Usage(Usage),
    Done(StopReason),
}

fn neutral(evs: &[StreamEvent]) -> Vec<N> {
    let mut open: BTreeMap<u32, (String, String, String)> = BTreeMap::new();
    let mut out = Vec::new();
    for ev in evs {
        match ev {
            StreamEvent::TextDelta(t) => out.push(N::Text(t.clone())),
            StreamEvent::ToolCallStart { index, id, name } => {
                let fresh = open
                    .insert(*index, (id.clone(), name.clone(), String::new()))
                    .is_none();
                assert!(fresh, "call {index} started twice: {evs:?}");
            }
            StreamEvent::ToolCallDelta { index, arguments } => open
                .get_mut(index)
                .unwrap_or_else(|| panic!("fragment for closed call {index}: {evs:?}"))
                .2
                .push_str(arguments),
            StreamEvent::ToolCallEnd { index } => {
                let (id, name, args) = open
                    .remove(index)
                    .unwrap_or_else(|| panic!("end of unopened call {index}: {evs:?}"));
                let args = serde_json::from_str(&args).expect("arguments are JSON");
                out.push(N::Call { id, name, args });
            }
            StreamEvent::Usage(u) => out.push(N::Usage(*u)),
            StreamEvent::Done(r) => out.push(N::Done(r.clone())),
        }
    }
    assert!(open.is_empty(), "calls left open: {evs:?}");
    out
}

/// What every format must produce for `a`.
fn expected(a: &Answer) -> Vec<N> {
    let mut out: Vec<N> = a.text.iter().map(|t| N::Text(t.to_string())).collect();
    for c in &a.calls {
        out.push(N::Call {
            id: c.id.into(),
            name: c.name.into(),
            args: serde_json::from_str(&c.fragments.concat()).unwrap(),
        });
    }
    out.push(N::Usage(a.usage));
    out.push(N::Done(a.stop()));
    out
}

async fn collect(
    s: impl futures::Stream<Item = Result<StreamEvent, LlmError>>,
) -> (Vec<StreamEvent>, Option<LlmError>) {
    let mut s = std::pin::pin!(s);
    let mut evs = Vec::new();
    while let Some(e) = s.next().await {
        match e {
            Ok(ev) => evs.push(ev),
            Err(err) => {
                assert!(s.next().await.is_none(), "nothing after an error");
                return (evs, Some(err));
            }
        }
    }
    (evs, None)
}

fn request() -> ChatRequest {
    ChatRequest {
        model: "ignored".into(),
        messages: vec![
            Message::system("You take orders."),
            Message::user("two margheritas"),
        ],
        tools: vec![ToolSpec {
            name: "add_to_cart".into(),
            description: "Add an item".into(),
            parameters: json!({"type":"object","properties":{"item":{"type":"string"}}}),
        }],
        max_tokens: Some(128),
        temperature: None,
    }
}

/// The adapter alone: `Err` from `stream()` itself, or the events and the stream's error.
async fn via_adapter(fake: &Fake) -> Result<(Vec<StreamEvent>, Option<LlmError>), LlmError> {
    let p = fake.format.adapter(fake.base_url());
    let mut r = request();
    r.model = "adapter-model".into();
    let s = p.stream(&r).await?;
    Ok(collect(s).await)
}

// ---------------------------------------------------------------------------------------
// Router set-up.

fn env() -> HashMap<String, String> {
    HashMap::from([("FAKE_KEY".to_string(), KEY.to_string())])
}

/// Small time-outs and backoffs so every case is fast; a breaker that stays out of the
/// way unless a case turns it down.
fn quick() -> LlmConfig {
    LlmConfig {
        retries: 2,
        ttft_timeout_ms: TTFT_MS,
        stall_timeout_ms: STALL_MS,
        backoff_base_ms: 5,
        backoff_max_ms: 50,
        breaker_failures: 100,
        breaker_cooldown_ms: 60_000,
        ..LlmConfig::default()
    }
}

fn add_target(cfg: &mut LlmConfig, name: &str, fake: &Fake) {
    cfg.targets.insert(
        name.into(),
        TargetConfig {
            provider: fake.format.kind(),
            model: format!("{name}-model"),
            base_url: Some(fake.base_url()),
            api_key_env: Some("FAKE_KEY".into()),
            price: None,
        },
    );
}

fn route(weighted: &[(&str, u32)], fallback: &[&str]) -> RouteConfig {
    RouteConfig {
        targets: weighted
            .iter()
            .map(|(t, w)| WeightedTarget {
                target: t.to_string(),
                weight: *w,
            })
            .collect(),
        fallback: fallback.iter().map(|f| f.to_string()).collect(),
        ..RouteConfig::default()
    }
}

/// Route `default`: target `a` (on `primary`), then `b` (on `fallback`) if given.
fn router(primary: &Fake, fallback: Option<&Fake>, tweak: impl FnOnce(&mut LlmConfig)) -> Router {
    let mut cfg = quick();
    add_target(&mut cfg, "a", primary);
    let mut fb = vec![];
    if let Some(f) = fallback {
        add_target(&mut cfg, "b", f);
        fb.push("b");
    }
    cfg.routes.insert("default".into(), route(&[("a", 1)], &fb));
    tweak(&mut cfg);
    Router::new(&cfg, &env()).unwrap()
}

async fn routed(r: &Router, name: &str) -> Result<RoutedStream, LlmError> {
    r.stream(name, None, request(), CancellationToken::new())
        .await
}

fn health_of(r: &Router, target: &str) -> BreakerState {
    r.health()
        .into_iter()
        .find(|h| h.target == target)
        .unwrap()
        .breaker
}

// ---------------------------------------------------------------------------------------
// The cases, each run for every format.

macro_rules! for_each_format {
    ($($case:ident),* $(,)?) => {
        mod openai {
            $( #[tokio::test] async fn $case() { super::$case(super::Format::OpenAi).await } )*
        }
        mod anthropic {
            $( #[tokio::test] async fn $case() { super::$case(super::Format::Anthropic).await } )*
        }
        mod gemini {
            $( #[tokio::test] async fn $case() { super::$case(super::Format::Gemini).await } )*
        }
    };
}

for_each_format!(
    text,
    streamed_tool_arguments,
    parallel_tool_calls,
    usage_with_cached_tokens,
    rate_limited_with_retry_after,
    server_error,
    cut_mid_stream,
    stall_before_first_byte,
    stall_mid_stream,
    malformed_frame,
    breaker_opens_and_recovers,
    drop_and_cancel_close_upstream,
);

/// Plain text: the exact same events from every format, directly and routed, with the
/// model and key sent the provider's way.
async fn text(f: Format) {
    let fake = Fake::start(f, vec![Reply::Answer(hello()), Reply::Answer(hello())]).await;
    let (evs, err) = via_adapter(&fake).await.unwrap();
    assert!(err.is_none(), "{f:?}: {err:?}");
    assert_eq!(
        evs,
        vec![
            StreamEvent::TextDelta("Hello".into()),
            StreamEvent::TextDelta(", world".into()),
            StreamEvent::Usage(hello().usage),
            StreamEvent::Done(StopReason::EndTurn),
        ],
        "{f:?}"
    );

    let r = router(&fake, None, |_| {});
    let s = routed(&r, "default").await.unwrap();
    assert_eq!(
        (s.target.as_str(), s.provider, s.model.as_str(), s.attempts),
        ("a", f.kind().name(), "a-model", 1)
    );
    let (routed_evs, err) = collect(s).await;
    assert!(err.is_none(), "{f:?}: {err:?}");
    assert_eq!(routed_evs, evs, "{f:?}: routing does not change the events");

    let seen = fake.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(f.model_and_key(&seen[0]), ("adapter-model".into(), true));
    assert_eq!(f.model_and_key(&seen[1]), ("a-model".into(), true));
}

/// One call whose arguments arrive in fragments: joined into the same call everywhere.
async fn streamed_tool_arguments(f: Format) {
    let a = one_call();
    let fake = Fake::start(f, vec![Reply::Answer(a.clone()), Reply::Answer(a.clone())]).await;
    let (evs, err) = via_adapter(&fake).await.unwrap();
    assert!(err.is_none(), "{f:?}: {err:?}");
    assert_eq!(neutral(&evs), expected(&a), "{f:?}");
    let fragments = evs
        .iter()
        .filter(|e| matches!(e, StreamEvent::ToolCallDelta { .. }))
        .count();
    let want = if f.streams_arguments() { 3 } else { 1 };
    assert_eq!(fragments, want, "{f:?}: {evs:?}");

    let r = router(&fake, None, |_| {});
    let (evs, err) = collect(routed(&r, "default").await.unwrap()).await;
    assert!(err.is_none(), "{f:?}: {err:?}");
    assert_eq!(neutral(&evs), expected(&a), "{f:?}");
}

/// Two calls in one answer: both come out whole and in order; OpenAI's interleaved
/// fragments keep both calls open at once.
async fn parallel_tool_calls(f: Format) {
    let a = two_calls();
    let fake = Fake::start(f, vec![Reply::Answer(a.clone()), Reply::Answer(a.clone())]).await;
    let (evs, err) = via_adapter(&fake).await.unwrap();
    assert!(err.is_none(), "{f:?}: {err:?}");
    assert_eq!(neutral(&evs), expected(&a), "{f:?}");
    if f == Format::OpenAi {
        let pos = |p: &dyn Fn(&StreamEvent) -> bool| evs.iter().position(p).unwrap();
        let second_start =
            pos(&|e| matches!(e, StreamEvent::ToolCallStart { id, .. } if id == "call_b"));
        let first_end = pos(&|e| matches!(e, StreamEvent::ToolCallEnd { index: 0 }));
        assert!(second_start < first_end, "calls overlap: {evs:?}");
    }
    let r = router(&fake, None, |_| {});
    let (evs, _) = collect(routed(&r, "default").await.unwrap()).await;
    assert_eq!(neutral(&evs), expected(&a), "{f:?}");
}

/// Cached input tokens are reported the same way whatever the provider's own counting
/// (Anthropic reports them apart from `input_tokens`), and priced through the router.
async fn usage_with_cached_tokens(f: Format) {
    let a = cached();
    let fake = Fake::start(f, vec![Reply::Answer(a.clone()), Reply::Answer(a.clone())]).await;
    let (evs, _) = via_adapter(&fake).await.unwrap();
    let usage = |evs: &[StreamEvent]| {
        evs.iter()
            .find_map(|e| match e {
                StreamEvent::Usage(u) => Some(*u),
                _ => None,
            })
            .unwrap()
    };
    assert_eq!(usage(&evs), a.usage, "{f:?}");

    let price = Price {
        input: 2_500_000,
        cached_input: 1_250_000,
        output: 10_000_000,
    };
    let r = router(&fake, None, |c| {
        c.targets.get_mut("a").unwrap().price = Some(price);
    });
    assert_eq!(r.price("a"), Some(price));
    let s = routed(&r, "default").await.unwrap();
    let p = s.price.unwrap();
    let (evs, _) = collect(s).await;
    // 176 × 2.5 + 1024 × 1.25 + 42 × 10 = 440 + 1280 + 420 µ$
    assert_eq!(p.cost_micros(&usage(&evs)), 2_140, "{f:?}");
}

/// A 429's Retry-After is parsed, waited for when under the cap, and skipped to the next
/// target (without waiting) when over it.
async fn rate_limited_with_retry_after(f: Format) {
    let fake = Fake::start(f, vec![Reply::Status(429, Some(1))]).await;
    match via_adapter(&fake).await {
        Err(LlmError::RateLimited { retry_after }) => assert_eq!(retry_after, Some(1)),
        other => panic!("{f:?}: expected a rate limit, got {:?}", other.map(|_| ())),
    }

    let fake = Fake::start(f, vec![Reply::Status(429, Some(1)), Reply::Answer(hello())]).await;
    let r = router(&fake, None, |c| c.backoff_max_ms = 2_000);
    let t = Instant::now();
    let s = routed(&r, "default").await.unwrap();
    assert!(
        t.elapsed() >= Duration::from_millis(950),
        "{f:?}: {:?}",
        t.elapsed()
    );
    assert_eq!((s.target.as_str(), s.attempts), ("a", 2));
    assert_eq!(fake.requests(), 2);

    let primary = Fake::start(f, vec![Reply::Status(429, Some(30))]).await;
    let fallback = Fake::start(f, vec![]).await;
    let r = router(&primary, Some(&fallback), |_| {});
    let t = Instant::now();
    let s = routed(&r, "default").await.unwrap();
    assert!(
        t.elapsed() < Duration::from_millis(900),
        "{f:?}: {:?}",
        t.elapsed()
    );
    assert_eq!((s.target.as_str(), s.attempts), ("b", 2));
    assert_eq!((primary.requests(), fallback.requests()), (1, 1));
}

/// A 500 is typed with its body; the router retries it `retries` times, then falls back,
/// and with nowhere left to go returns the provider's error.
async fn server_error(f: Format) {
    let fake = Fake::start(f, vec![Reply::Status(500, None)]).await;
    match via_adapter(&fake).await {
        Err(LlmError::Status { status: 500, body }) => assert!(body.contains("scripted")),
        other => panic!("{f:?}: expected a 500, got {:?}", other.map(|_| ())),
    }

    let primary = Fake::start(f, vec![]).await;
    primary.otherwise(Reply::Status(500, None));
    let fallback = Fake::start(f, vec![]).await;
    let r = router(&primary, Some(&fallback), |_| {});
    let s = routed(&r, "default").await.unwrap();
    assert_eq!((s.target.as_str(), s.attempts), ("b", 4));
    assert_eq!((primary.requests(), fallback.requests()), (3, 1));

    let alone = router(&primary, None, |c| c.retries = 1);
    match routed(&alone, "default").await {
        Err(LlmError::Status { status: 500, .. }) => {}
        other => panic!("{f:?}: expected the 500 back, got {:?}", other.map(|_| ())),
    }
    assert_eq!(primary.requests(), 3 + 2);
}

/// A connection closed mid-answer ends the stream with Truncated after what arrived; the
/// router does not retry or fall back once the first event is out.
async fn cut_mid_stream(f: Format) {
    let fake = Fake::start(f, vec![Reply::CutAfter(hello(), "Hello")]).await;
    let (evs, err) = via_adapter(&fake).await.unwrap();
    assert_eq!(evs, vec![StreamEvent::TextDelta("Hello".into())], "{f:?}");
    assert!(matches!(err, Some(LlmError::Truncated)), "{f:?}: {err:?}");

    let primary = Fake::start(f, vec![Reply::CutAfter(hello(), "Hello")]).await;
    let fallback = Fake::start(f, vec![]).await;
    let r = router(&primary, Some(&fallback), |_| {});
    let (evs, err) = collect(routed(&r, "default").await.unwrap()).await;
    assert_eq!(evs, vec![StreamEvent::TextDelta("Hello".into())], "{f:?}");
    assert!(matches!(err, Some(LlmError::Truncated)), "{f:?}: {err:?}");
    assert_eq!((primary.requests(), fallback.requests()), (1, 0));
}

/// No byte before the time-to-first-token limit: the attempt is abandoned (the fake sees
/// the connection close) and retried; with only stalls, the time-out is the error.
async fn stall_before_first_byte(f: Format) {
    let fake = Fake::start(f, vec![Reply::Stall]).await;
    let p = f.adapter(fake.base_url());
    let waited = tokio::time::timeout(Duration::from_millis(TTFT_MS), p.stream(&request())).await;
    assert!(waited.is_err(), "{f:?}: the adapter waits");
    assert!(
        fake.hung_up(1).await,
        "{f:?}: dropping the adapter's future hangs up"
    );

    let fake = Fake::start(f, vec![Reply::Stall, Reply::Answer(hello())]).await;
    let r = router(&fake, None, |_| {});
    let t = Instant::now();
    let s = routed(&r, "default").await.unwrap();
    assert!(t.elapsed() >= Duration::from_millis(TTFT_MS), "{f:?}");
    assert_eq!(s.attempts, 2);
    assert!(
        fake.hung_up(1).await,
        "{f:?}: the timed-out attempt was closed"
    );
    let (_, err) = collect(s).await;
    assert!(err.is_none(), "{f:?}: {err:?}");

    let fake = Fake::start(f, vec![]).await;
    fake.otherwise(Reply::Stall);
    let r = router(&fake, None, |c| c.retries = 1);
    match routed(&r, "default").await {
        Err(LlmError::FirstTokenTimeout { ms }) => assert_eq!(ms, TTFT_MS),
        other => panic!("{f:?}: expected a time-out, got {:?}", other.map(|_| ())),
    }
    assert_eq!(fake.requests(), 2);
    assert!(fake.hung_up(2).await);
}

/// A stream that goes quiet after its first event is ended with Stalled (not a silent
/// hang, not a fallback), and the connection is closed.
async fn stall_mid_stream(f: Format) {
    let primary = Fake::start(f, vec![Reply::HoldAfter(hello(), "Hello")]).await;
    let fallback = Fake::start(f, vec![]).await;
    let r = router(&primary, Some(&fallback), |_| {});
    let t = Instant::now();
    let (evs, err) = collect(routed(&r, "default").await.unwrap()).await;
    assert_eq!(evs, vec![StreamEvent::TextDelta("Hello".into())], "{f:?}");
    assert!(
        matches!(err, Some(LlmError::Stalled { ms: STALL_MS })),
        "{f:?}: {err:?}"
    );
    assert!(t.elapsed() >= Duration::from_millis(STALL_MS));
    assert!(primary.hung_up(1).await, "{f:?}");
    assert_eq!(fallback.requests(), 0);
}

/// A frame that is not valid JSON is a Protocol error. Before the first event the router
/// moves to the next target without retrying this one; after it, the error is yielded.
async fn malformed_frame(f: Format) {
    let fake = Fake::start(f, vec![Reply::MalformedAfter(hello(), "")]).await;
    let (evs, err) = via_adapter(&fake).await.unwrap();
    assert!(evs.is_empty(), "{f:?}: {evs:?}");
    assert!(matches!(err, Some(LlmError::Protocol(_))), "{f:?}: {err:?}");

    let primary = Fake::start(f, vec![Reply::MalformedAfter(hello(), "")]).await;
    let fallback = Fake::start(f, vec![]).await;
    let r = router(&primary, Some(&fallback), |_| {});
    let s = routed(&r, "default").await.unwrap();
    assert_eq!((s.target.as_str(), s.attempts), ("b", 2));
    assert_eq!((primary.requests(), fallback.requests()), (1, 1));

    let primary = Fake::start(f, vec![Reply::MalformedAfter(hello(), "Hello")]).await;
    let r = router(&primary, Some(&fallback), |_| {});
    let (evs, err) = collect(routed(&r, "default").await.unwrap()).await;
    assert_eq!(evs, vec![StreamEvent::TextDelta("Hello".into())], "{f:?}");
    assert!(matches!(err, Some(LlmError::Protocol(_))), "{f:?}: {err:?}");
    assert_eq!(fallback.requests(), 1, "no fallback mid-answer");
}

/// Two failures in a row open `a`'s circuit: the next request skips it (the fake sees
/// nothing) and health reports it open; after the cooldown one trial closes it again.
async fn breaker_opens_and_recovers(f: Format) {
    let primary = Fake::start(f, vec![]).await;
    primary.otherwise(Reply::Status(503, None));
    let fallback = Fake::start(f, vec![]).await;
    let r = router(&primary, Some(&fallback), |c| {
        c.retries = 0;
        c.breaker_failures = 2;
        c.breaker_cooldown_ms = 300;
    });
    for _ in 0..2 {
        assert_eq!(routed(&r, "default").await.unwrap().target, "b");
    }
    assert_eq!(primary.requests(), 2);
    assert!(matches!(health_of(&r, "a"), BreakerState::Open { retry_in_ms } if retry_in_ms > 0));
    assert_eq!(health_of(&r, "b"), BreakerState::Closed);

    let s = routed(&r, "default").await.unwrap();
    assert_eq!((s.target.as_str(), s.attempts), ("b", 1));
    assert_eq!(primary.requests(), 2, "an open circuit sends nothing");

    // Only `a` in play: an open circuit with nowhere to go says so.
    let alone = r
        .stream("a", None, request(), CancellationToken::new())
        .await;
    assert!(matches!(alone, Err(LlmError::Unavailable(_))), "{alone:?}");

    tokio::time::sleep(Duration::from_millis(350)).await;
    primary.otherwise(Reply::Answer(hello()));
    let s = routed(&r, "default").await.unwrap();
    assert_eq!(s.target, "a", "{f:?}: the trial went to `a`");
    assert_eq!(health_of(&r, "a"), BreakerState::Closed);
    assert_eq!(r.health()[0].consecutive_failures, 0);
}

/// Dropping a started stream, or cancelling its token, closes the upstream connection at
/// once; cancelling while waiting for the first token returns Cancelled before the TTFT.
async fn drop_and_cancel_close_upstream(f: Format) {
    let fake = Fake::start(f, vec![]).await;
    fake.otherwise(Reply::HoldAfter(hello(), "Hello"));
    let r = router(&fake, None, |c| {
        c.ttft_timeout_ms = 5_000;
        c.stall_timeout_ms = 5_000;
    });

    let mut s = routed(&r, "default").await.unwrap();
    assert_eq!(
        s.next().await.unwrap().unwrap(),
        StreamEvent::TextDelta("Hello".into())
    );
    drop(s);
    assert!(
        fake.hung_up(1).await,
        "{f:?}: dropping closes the connection"
    );

    let cancel = CancellationToken::new();
    let mut s = r
        .stream("default", None, request(), cancel.clone())
        .await
        .unwrap();
    assert!(s.next().await.unwrap().is_ok());
    let t = Instant::now();
    let canceller = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(20)).await;
        canceller.cancel();
    });
    assert!(matches!(s.next().await, Some(Err(LlmError::Cancelled))));
    assert!(s.next().await.is_none());
    assert!(
        fake.hung_up(2).await,
        "{f:?}: cancelling closes the connection"
    );
    assert!(t.elapsed() < Duration::from_secs(1));
    drop(s);

    fake.otherwise(Reply::Stall);
    let cancel = CancellationToken::new();
    let canceller = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        canceller.cancel();
    });
    let t = Instant::now();
    let res = r.stream("default", None, request(), cancel).await;
    assert!(matches!(res, Err(LlmError::Cancelled)), "{res:?}");
    assert!(t.elapsed() < Duration::from_secs(1));
    assert!(
        fake.hung_up(3).await,
        "{f:?}: cancelling before the first token hangs up"
    );
    assert_eq!(fake.requests(), 3);
}

// ---------------------------------------------------------------------------------------
// Routing behaviour that does not depend on the format.

/// The weighted set is tried before the fallback list, each member once with no retries.
#[tokio::test]
async fn weighted_set_then_fallback_in_order() {
    let (a, b, c) = (
        Fake::start(Format::OpenAi, vec![]).await,
        Fake::start(Format::Anthropic, vec![]).await,
        Fake::start(Format::Gemini, vec![]).await,
    );
    a.otherwise(Reply::Status(502, None));
    b.otherwise(Reply::Status(503, None));
    let mut cfg = quick();
    cfg.retries = 0;
    add_target(&mut cfg, "a", &a);
    add_target(&mut cfg, "b", &b);
    add_target(&mut cfg, "c", &c);
    cfg.routes
        .insert("mix".into(), route(&[("a", 60), ("b", 40)], &["c", "a"]));
    let r = Router::new(&cfg, &env()).unwrap();
    let s = routed(&r, "mix").await.unwrap();
    assert_eq!(
        (s.target.as_str(), s.provider, s.attempts),
        ("c", "gemini", 3)
    );
    assert_eq!((a.requests(), b.requests(), c.requests()), (1, 1, 1));
}

/// A conversation stays on the target that answered it while that target is healthy,
/// and moves when its circuit opens.
#[tokio::test]
async fn conversations_stick_to_their_target() {
    let x = Fake::start(Format::OpenAi, vec![]).await;
    let y = Fake::start(Format::OpenAi, vec![]).await;
    let mut cfg = quick();
    cfg.retries = 0;
    cfg.breaker_failures = 1;
    add_target(&mut cfg, "x", &x);
    add_target(&mut cfg, "y", &y);
    cfg.routes
        .insert("default".into(), route(&[("x", 1), ("y", 1)], &[]));
    let r = Router::new(&cfg, &env()).unwrap();
    let go = |conv: Option<&'static str>| {
        let r = r.clone();
        async move {
            r.stream("default", conv, request(), CancellationToken::new())
                .await
                .unwrap()
                .target
        }
    };
    let first = go(Some("c1")).await;
    for _ in 0..20 {
        assert_eq!(go(Some("c1")).await, first);
    }
    // Without a conversation both targets get traffic (all 40 on one: p = 2^-39).
    let mut others = std::collections::HashSet::new();
    for _ in 0..40 {
        others.insert(go(None).await);
    }
    assert_eq!(others.len(), 2);

    let (stuck, other) = if first == "x" { (&x, "y") } else { (&y, "x") };
    stuck.otherwise(Reply::Status(500, None));
    assert_eq!(
        go(Some("c1")).await,
        other,
        "fails over when its target fails"
    );
    assert_eq!(go(Some("c1")).await, other, "and stays on the new one");
}

/// Names resolve as route, target, then `provider/model` on the environment's endpoint;
/// anything else is UnknownModel, and an empty router says NoTargets.
#[tokio::test]
async fn names_resolve_and_unknown_ones_are_refused() {
    let fake = Fake::start(Format::OpenAi, vec![]).await;
    let env = HashMap::from([
        ("OPENAI_BASE_URL".to_string(), fake.base_url()),
        ("OPENAI_API_KEY".to_string(), KEY.to_string()),
    ]);
    let r = Router::new(&LlmConfig::default(), &env).unwrap();
    assert_eq!(
        r.models(),
        vec!["default".to_string(), "openai".to_string()]
    );

    let s = routed(&r, "default").await.unwrap();
    assert_eq!(
        (s.target.as_str(), s.model.as_str()),
        ("openai", "gpt-4o-mini")
    );
    let s = routed(&r, "openai").await.unwrap();
    assert_eq!(s.target, "openai");
    let s = routed(&r, "openai/llama3.2:8b").await.unwrap();
    assert_eq!(
        (s.target.as_str(), s.provider, s.model.as_str()),
        ("openai/llama3.2:8b", "openai", "llama3.2:8b")
    );
    let models: Vec<String> = fake
        .seen()
        .iter()
        .map(|r| Format::OpenAi.model_and_key(r))
        .map(|(m, key)| {
            assert!(key);
            m
        })
        .collect();
    assert_eq!(models, ["gpt-4o-mini", "gpt-4o-mini", "llama3.2:8b"]);

    for bad in ["nope", "mistral/large", "openai/", "anthropic/claude-x"] {
        match routed(&r, bad).await {
            Err(LlmError::UnknownModel(m)) => assert_eq!(m, bad),
            other => panic!("{bad}: {:?}", other.map(|_| ())),
        }
    }

    let empty = Router::new(&LlmConfig::default(), &HashMap::new()).unwrap();
    assert!(empty.is_empty());
    assert!(matches!(
        routed(&empty, "default").await,
        Err(LlmError::NoTargets)
    ));
}

/// A request the provider rejects as bad (400) is not retried and does not fall back:
/// another model would reject it too.
#[tokio::test]
async fn a_bad_request_stops_the_route() {
    let primary = Fake::start(Format::Anthropic, vec![Reply::Status(400, None)]).await;
    let fallback = Fake::start(Format::Anthropic, vec![]).await;
    let r = router(&primary, Some(&fallback), |_| {});
    assert!(matches!(
        routed(&r, "default").await,
        Err(LlmError::Status { status: 400, .. })
    ));
    assert_eq!((primary.requests(), fallback.requests()), (1, 0));
    assert_eq!(health_of(&r, "a"), BreakerState::Closed);
}

/// Keys are read from the named variables, a missing one fails start-up by name, and no
/// key shows in Debug output.
#[tokio::test]
async fn keys_come_from_the_environment_and_stay_out_of_debug() {
    let fake = Fake::start(Format::Gemini, vec![]).await;
    let r = router(&fake, None, |_| {});
    let shown = format!("{r:?}");
    assert!(shown.contains("a-model") && !shown.contains(KEY), "{shown}");
    let s = routed(&r, "default").await.unwrap();
    assert!(!format!("{s:?}").contains(KEY));

    let mut cfg = quick();
    add_target(&mut cfg, "a", &fake);
    let e = Router::new(&cfg, &HashMap::new()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "llm.targets.a.api_key_env: environment variable FAKE_KEY is not set"
    );
}
