//! One conversation turn: the guest's text in, a streamed reply and tool calls out.
//!
//! With a model, the loop asks it for a reply, runs the tool calls it makes (each one
//! validated, recorded durably and idempotently, and turned into display updates),
//! hands the results back, and repeats until the model answers in words. Without one —
//! or when every model target fails before its first token — the offline agent plans
//! the same tool calls. Once the model has started answering, a failure is reported as
//! an `error` event, never swallowed.

use crate::offline;
use crate::tools::{DisplayOp, SERVER_TOOLS, ToolOutcome, Workspace, parse_arguments};
use async_trait::async_trait;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::time::Instant;
use stonepot_domain::Cart;
use stonepot_llm::provider::{EventStream, Price};
use stonepot_llm::{ChatRequest, Collected, LlmError, Message, Role, StreamEvent, ToolCall, Usage};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// The most model round-trips in one turn (each may run several tools).
pub const MAX_STEPS: usize = 6;

/// What the guest's client sees during a turn, in order.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TurnEvent {
    AssistantDelta {
        text: String,
    },
    ToolCall {
        id: String,
        name: String,
        arguments: Value,
    },
    ToolResult {
        id: String,
        name: String,
        ok: bool,
        result: Value,
    },
    AssistantDone {
        turn: u32,
        text: String,
        model: String,
        usage: Usage,
    },
    Error {
        code: String,
        message: String,
    },
}

impl TurnEvent {
    /// The event's `type`, as on the wire.
    pub fn kind(&self) -> &'static str {
        match self {
            TurnEvent::AssistantDelta { .. } => "assistant_delta",
            TurnEvent::ToolCall { .. } => "tool_call",
            TurnEvent::ToolResult { .. } => "tool_result",
            TurnEvent::AssistantDone { .. } => "assistant_done",
            TurnEvent::Error { .. } => "error",
        }
    }

    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or_else(|_| json!({"type": "error"}))
    }
}

/// A model stream chosen by whatever routes requests (the router, or a test double).
pub struct ModelStream {
    /// The configured target that answered (for the transcript).
    pub target: String,
    /// The model name as the provider knows it.
    pub model: String,
    pub price: Option<Price>,
    pub events: EventStream,
}

/// Something that answers chat requests.
#[async_trait]
pub trait Model: Send + Sync {
    /// Starts a streamed answer. An error here means nothing was said yet, so the turn
    /// may still fall back to the offline agent.
    async fn stream(&self, conversation: &str, req: ChatRequest) -> Result<ModelStream, LlmError>;
}

/// A tool call as kept in the transcript and replayed on a retry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedCall {
    pub id: String,
    pub name: String,
    /// The arguments as the model wrote them.
    pub arguments: String,
    pub ok: bool,
    pub result: Value,
}

/// What a server tool did: its outcome for the model and, when it changed the cart (an
/// order empties it), the cart it left. Display updates were made by the server.
pub struct ServerOutcome {
    pub outcome: ToolOutcome,
    pub cart: Option<Cart>,
}

/// The durable side of a conversation, implemented by the server over its store and
/// display hub.
#[async_trait]
pub trait Ledger: Send + Sync {
    /// The call already recorded for (this conversation, `turn`, `call_id`), if any.
    async fn recorded(&self, turn: u32, call_id: &str) -> Result<Option<RecordedCall>, String>;
    /// Records a call and, when it changed, the new cart — in one transaction.
    async fn record(
        &self,
        turn: u32,
        call: &RecordedCall,
        cart: Option<&Cart>,
    ) -> Result<(), String>;
    /// Appends display updates through the session log.
    async fn show(&self, ops: &[DisplayOp]) -> Result<(), String>;
    /// Runs one of [`SERVER_TOOLS`] (quotes and orders) for this conversation with its
    /// parsed arguments. A ledger without commerce refuses them.
    async fn server_tool(
        &self,
        turn: u32,
        call_id: &str,
        name: &str,
        arguments: &Value,
    ) -> Result<ServerOutcome, String> {
        let _ = (turn, call_id, arguments);
        Ok(ServerOutcome {
            outcome: ToolOutcome::refused("unsupported", format!("{name} is not available here")),
            cart: None,
        })
    }
    /// Stores the finished turn (whatever its status). Called before `assistant_done`
    /// goes out, so a client that saw the reply finds it in the transcript.
    async fn finish(&self, turn: &TurnRecord) -> Result<(), String>;
}

/// What the turn needs besides the workspace.
pub struct TurnInput {
    pub conversation: String,
    pub turn: u32,
    /// The tenant's persona and instructions.
    pub system: String,
    /// Earlier turns, as model messages.
    pub history: Vec<Message>,
    pub user_text: String,
}

/// How a turn ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TurnStatus {
    Ok,
    Error,
    Cancelled,
}

impl TurnStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            TurnStatus::Ok => "ok",
            TurnStatus::Error => "error",
            TurnStatus::Cancelled => "cancelled",
        }
    }
}

/// The turn as it goes into the transcript.
#[derive(Debug, Clone, Serialize)]
pub struct TurnRecord {
    pub turn: u32,
    pub user_text: String,
    pub assistant_text: String,
    pub tool_calls: Vec<RecordedCall>,
    pub model: String,
    pub target: String,
    pub usage: Usage,
    pub cost_micros: u64,
    pub ttft_ms: Option<u64>,
    pub latency_ms: u64,
    pub status: TurnStatus,
    pub error: Option<String>,
}

struct Turn<'a> {
    ws: &'a mut Workspace,
    ledger: &'a dyn Ledger,
    tx: &'a mpsc::Sender<TurnEvent>,
    rec: TurnRecord,
    started: Instant,
}

impl Turn<'_> {
    async fn emit(&self, ev: TurnEvent) {
        // A closed receiver means the client left; cancellation handles the rest.
        let _ = self.tx.send(ev).await;
    }

    fn first_output(&mut self) {
        if self.rec.ttft_ms.is_none() {
            self.rec.ttft_ms = Some(ms(self.started));
        }
    }

    /// Announces a call, runs it (see [`run_call`]) and reports its result.
    async fn call(
        &mut self,
        id: &str,
        name: &str,
        arguments: &str,
    ) -> Result<RecordedCall, String> {
        let shown_args = serde_json::from_str::<Value>(arguments)
            .unwrap_or_else(|_| Value::String(arguments.to_string()));
        self.emit(TurnEvent::ToolCall {
            id: id.into(),
            name: name.into(),
            arguments: shown_args,
        })
        .await;
        let rec = run_call(self.ws, self.ledger, self.rec.turn, id, name, arguments).await?;
        self.emit(TurnEvent::ToolResult {
            id: rec.id.clone(),
            name: rec.name.clone(),
            ok: rec.ok,
            result: rec.result.clone(),
        })
        .await;
        self.rec.tool_calls.push(rec.clone());
        Ok(rec)
    }

    async fn say(&mut self, text: &str) {
        self.first_output();
        self.rec.assistant_text.push_str(text);
        self.emit(TurnEvent::AssistantDelta { text: text.into() })
            .await;
    }

    async fn fail(&mut self, code: &str, message: String) {
        self.rec.status = TurnStatus::Error;
        self.rec.error = Some(message.clone());
        self.emit(TurnEvent::Error {
            code: code.into(),
            message,
        })
        .await;
    }
}

/// Runs one tool call at most once per (turn, id): a replayed id returns what was
/// recorded and changes nothing. The call is recorded (with the cart it left) before its
/// display updates are shown, so nothing is shown that is not durable. Public because a
/// realtime speech model proposes calls outside a text turn, and they must run exactly
/// as the text agent's do.
pub async fn run_call(
    ws: &mut Workspace,
    ledger: &dyn Ledger,
    turn: u32,
    id: &str,
    name: &str,
    arguments: &str,
) -> Result<RecordedCall, String> {
    if let Some(done) = ledger.recorded(turn, id).await? {
        return Ok(done);
    }
    let before = ws.clone();
    let out: ToolOutcome = if SERVER_TOOLS.contains(&name) {
        match parse_arguments(arguments) {
            Err(refusal) => refusal,
            Ok(args) => {
                let done = ledger.server_tool(turn, id, name, &args).await?;
                let changed = done.cart.is_some();
                ws.absorb(name, &done.outcome, done.cart);
                let mut out = done.outcome;
                out.cart_changed = changed && out.ok;
                out
            }
        }
    } else {
        ws.run(name, arguments)
    };
    let rec = RecordedCall {
        id: id.into(),
        name: name.into(),
        arguments: arguments.into(),
        ok: out.ok,
        result: out.result.clone(),
    };
    let cart = if out.cart_changed { ws.cart() } else { None };
    if let Err(e) = ledger.record(turn, &rec, cart).await {
        *ws = before;
        return Err(e);
    }
    if !out.display.is_empty() {
        ledger.show(&out.display).await?;
    }
    Ok(rec)
}

fn ms(t: Instant) -> u64 {
    u64::try_from(t.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Runs one turn to its end (or until `cancel` fires) and returns what to store.
/// Events stream on `tx`; the last one is `assistant_done` or `error`.
pub async fn run_turn(
    ws: &mut Workspace,
    model: Option<&dyn Model>,
    ledger: &dyn Ledger,
    input: TurnInput,
    tx: &mpsc::Sender<TurnEvent>,
    cancel: &CancellationToken,
) -> TurnRecord {
    let mut t = Turn {
        ws,
        ledger,
        tx,
        started: Instant::now(),
        rec: TurnRecord {
            turn: input.turn,
            user_text: input.user_text.clone(),
            assistant_text: String::new(),
            tool_calls: Vec::new(),
            model: String::new(),
            target: String::new(),
            usage: Usage::default(),
            cost_micros: 0,
            ttft_ms: None,
            latency_ms: 0,
            status: TurnStatus::Ok,
            error: None,
        },
    };
    let ran = tokio::select! {
        biased;
        () = cancel.cancelled() => None,
        r = drive(&mut t, model, &input) => Some(r),
    };
    match ran {
        None => {
            t.rec.status = TurnStatus::Cancelled;
            t.rec.error = Some("the client went away".into());
        }
        Some(Err(e)) => t.fail("internal", e).await,
        Some(Ok(())) => {}
    }
    t.rec.latency_ms = ms(t.started);
    if let Err(e) = ledger.finish(&t.rec).await {
        t.fail("not_stored", format!("the turn could not be stored: {e}"))
            .await;
    }
    if t.rec.status == TurnStatus::Ok {
        t.emit(TurnEvent::AssistantDone {
            turn: t.rec.turn,
            text: t.rec.assistant_text.clone(),
            model: t.rec.model.clone(),
            usage: t.rec.usage,
        })
        .await;
    }
    t.rec
}

async fn drive(
    t: &mut Turn<'_>,
    model: Option<&dyn Model>,
    input: &TurnInput,
) -> Result<(), String> {
    let Some(model) = model else {
        return offline_turn(t, &input.user_text).await;
    };
    let mut messages = Vec::with_capacity(input.history.len() + 2);
    messages.push(Message::system(input.system.clone()));
    messages.extend(input.history.iter().cloned());
    messages.push(Message::user(input.user_text.clone()));
    for step in 0..MAX_STEPS {
        let req = ChatRequest {
            model: String::new(),
            messages: messages.clone(),
            tools: t.ws.specs(),
            max_tokens: Some(1024),
            temperature: Some(0.2),
        };
        let model_span = tracing::info_span!(
            "model_call",
            step,
            target = tracing::field::Empty,
            model = tracing::field::Empty
        );
        let opened = model
            .stream(&input.conversation, req)
            .instrument(model_span.clone())
            .await;
        let stream = match opened {
            Ok(s) => s,
            Err(e) if step == 0 && t.rec.assistant_text.is_empty() => {
                tracing::warn!(error = %e, "every model target failed; the offline agent takes this turn");
                return offline_turn(t, &input.user_text).await;
            }
            Err(e) => {
                t.fail("model_unavailable", e.to_string()).await;
                return Ok(());
            }
        };
        t.rec.model.clone_from(&stream.model);
        t.rec.target.clone_from(&stream.target);
        model_span.record("model", stream.model.as_str());
        model_span.record("target", stream.target.as_str());
        let price = stream.price;
        let mut events = stream.events;
        let mut got = Collected::default();
        let mut open = Vec::new();
        // The model call's span lasts until its answer has streamed in.
        let broke = async {
            while let Some(ev) = events.next().await {
                match ev {
                    Ok(StreamEvent::TextDelta(text)) => {
                        got.text.push_str(&text);
                        t.say(&text).await;
                    }
                    Ok(ev) => {
                        t.first_output();
                        got.push(&ev, &mut open);
                    }
                    Err(e) => return Some(e),
                }
            }
            None
        }
        .instrument(model_span)
        .await;
        if let Some(e) = broke {
            t.fail("model_stream", format!("the model's answer broke off: {e}"))
                .await;
            return Ok(());
        }
        add_usage(&mut t.rec, &got.usage, price);
        if got.tool_calls.is_empty() {
            return Ok(());
        }
        messages.push(Message {
            role: Role::Assistant,
            content: got.text.clone(),
            tool_calls: got.tool_calls.clone(),
            tool_call_id: None,
        });
        for ToolCall {
            id,
            name,
            arguments,
        } in &got.tool_calls
        {
            let rec = t
                .call(id, name, arguments)
                .instrument(tracing::info_span!("tool", name = %name))
                .await?;
            messages.push(Message::tool_result(id.clone(), rec.result.to_string()));
        }
    }
    t.fail(
        "too_many_steps",
        format!("the model kept calling tools after {MAX_STEPS} rounds"),
    )
    .await;
    Ok(())
}

fn add_usage(rec: &mut TurnRecord, u: &Usage, price: Option<Price>) {
    rec.usage.input_tokens += u.input_tokens;
    rec.usage.output_tokens += u.output_tokens;
    rec.usage.cached_input_tokens += u.cached_input_tokens;
    if let Some(p) = price {
        rec.cost_micros += p.cost_micros(u);
    }
}

async fn offline_turn(t: &mut Turn<'_>, text: &str) -> Result<(), String> {
    t.rec.model = "offline".into();
    t.rec.target = "offline".into();
    let plan = offline::plan(t.ws, text);
    let mut outcomes = Vec::with_capacity(plan.calls.len());
    for (i, c) in plan.calls.iter().enumerate() {
        let id = format!("offline-{}-{i}", t.rec.turn);
        let rec = t
            .call(&id, &c.name, &c.arguments.to_string())
            .instrument(tracing::info_span!("tool", name = %c.name))
            .await?;
        outcomes.push(ToolOutcome {
            ok: rec.ok,
            result: rec.result,
            display: Vec::new(),
            cart_changed: false,
        });
    }
    let reply = offline::reply(t.ws, &plan, &outcomes);
    // Stream it word by word so clients render it the same way as a model's reply.
    let mut rest = reply.as_str();
    while !rest.is_empty() {
        let cut = rest
            .char_indices()
            .skip(1)
            .find(|(_, c)| *c == ' ')
            .map_or(rest.len(), |(i, _)| i);
        let (piece, tail) = rest.split_at(cut);
        t.say(piece).await;
        rest = tail;
    }
    Ok(())
}

/// Rebuilds model messages from stored turns (user text, the tool calls and their
/// results, then the reply).
pub fn history(turns: &[TurnRecord]) -> Vec<Message> {
    let mut out = Vec::new();
    for t in turns {
        out.push(Message::user(t.user_text.clone()));
        if !t.tool_calls.is_empty() {
            out.push(Message {
                role: Role::Assistant,
                content: String::new(),
                tool_calls: t
                    .tool_calls
                    .iter()
                    .map(|c| ToolCall {
                        id: c.id.clone(),
                        name: c.name.clone(),
                        arguments: c.arguments.clone(),
                    })
                    .collect(),
                tool_call_id: None,
            });
            for c in &t.tool_calls {
                out.push(Message::tool_result(c.id.clone(), c.result.to_string()));
            }
        }
        if !t.assistant_text.is_empty() {
            out.push(Message {
                role: Role::Assistant,
                content: t.assistant_text.clone(),
                tool_calls: Vec::new(),
                tool_call_id: None,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{HashMap, VecDeque};
    use std::sync::{Arc, Mutex};
    use stonepot_domain::{Currency, demo};
    use stonepot_llm::StopReason;

    type Reply = Result<Vec<Result<StreamEvent, LlmError>>, LlmError>;

    /// Answers each request with the next scripted list of events (or an error).
    struct Scripted {
        replies: Mutex<VecDeque<Reply>>,
        seen: Mutex<Vec<ChatRequest>>,
    }

    impl Scripted {
        fn new(replies: Vec<Reply>) -> Self {
            Scripted {
                replies: Mutex::new(replies.into()),
                seen: Mutex::new(Vec::new()),
            }
        }
    }

    #[async_trait]
    impl Model for Scripted {
        async fn stream(&self, _c: &str, req: ChatRequest) -> Result<ModelStream, LlmError> {
            self.seen.lock().unwrap().push(req);
            let next = self.replies.lock().unwrap().pop_front();
            let events =
                next.unwrap_or_else(|| Ok(vec![Ok(StreamEvent::Done(StopReason::EndTurn))]))?;
            Ok(ModelStream {
                target: "fake".into(),
                model: "fake-1".into(),
                price: Some(Price {
                    input: 1_000_000,
                    cached_input: 0,
                    output: 2_000_000,
                }),
                events: futures::stream::iter(events).boxed(),
            })
        }
    }

    #[derive(Default)]
    struct MemLedger {
        calls: Mutex<HashMap<(u32, String), RecordedCall>>,
        carts: Mutex<Vec<Cart>>,
        shown: Mutex<Vec<DisplayOp>>,
        finished: Mutex<Vec<TurnStatus>>,
    }

    #[async_trait]
    impl Ledger for MemLedger {
        async fn recorded(&self, turn: u32, id: &str) -> Result<Option<RecordedCall>, String> {
            Ok(self
                .calls
                .lock()
                .unwrap()
                .get(&(turn, id.to_string()))
                .cloned())
        }
        async fn record(
            &self,
            turn: u32,
            c: &RecordedCall,
            cart: Option<&Cart>,
        ) -> Result<(), String> {
            self.calls
                .lock()
                .unwrap()
                .insert((turn, c.id.clone()), c.clone());
            if let Some(cart) = cart {
                self.carts.lock().unwrap().push(cart.clone());
            }
            Ok(())
        }
        async fn show(&self, ops: &[DisplayOp]) -> Result<(), String> {
            self.shown.lock().unwrap().extend(ops.iter().cloned());
            Ok(())
        }
        async fn finish(&self, t: &TurnRecord) -> Result<(), String> {
            self.finished.lock().unwrap().push(t.status);
            Ok(())
        }
    }

    fn ws() -> Workspace {
        Workspace::Restaurant {
            menu: Arc::new(demo::restaurant_menu()),
            cart: Cart::new(),
            currency: Currency::USD,
            quote: None,
        }
    }

    fn call(id: &str, name: &str, args: &str) -> Vec<Result<StreamEvent, LlmError>> {
        vec![
            Ok(StreamEvent::ToolCallStart {
                index: 0,
                id: id.into(),
                name: name.into(),
            }),
            Ok(StreamEvent::ToolCallDelta {
                index: 0,
                arguments: args.into(),
            }),
            Ok(StreamEvent::ToolCallEnd { index: 0 }),
            Ok(StreamEvent::Usage(Usage {
                input_tokens: 100,
                output_tokens: 10,
                cached_input_tokens: 0,
            })),
            Ok(StreamEvent::Done(StopReason::ToolUse)),
        ]
    }

    fn words(text: &str) -> Vec<Result<StreamEvent, LlmError>> {
        vec![
            Ok(StreamEvent::TextDelta(text.into())),
            Ok(StreamEvent::Done(StopReason::EndTurn)),
        ]
    }

    fn input(turn: u32) -> TurnInput {
        TurnInput {
            conversation: "c1".into(),
            turn,
            system: "be brief".into(),
            history: Vec::new(),
            user_text: "a margherita".into(),
        }
    }

    async fn run(
        ws: &mut Workspace,
        m: &Scripted,
        l: &MemLedger,
        turn: u32,
    ) -> (TurnRecord, Vec<TurnEvent>) {
        let (tx, mut rx) = mpsc::channel(256);
        let rec = run_turn(ws, Some(m), l, input(turn), &tx, &CancellationToken::new()).await;
        drop(tx);
        let mut evs = Vec::new();
        while let Some(e) = rx.recv().await {
            evs.push(e);
        }
        (rec, evs)
    }

    #[tokio::test]
    async fn tools_run_and_their_results_go_back_to_the_model() {
        let m = Scripted::new(vec![
            Ok(call(
                "c1",
                "add_to_cart",
                r#"{"item":"margherita","quantity":2}"#,
            )),
            Ok(words("Two margheritas, coming up.")),
        ]);
        let l = MemLedger::default();
        let mut w = ws();
        let (rec, evs) = run(&mut w, &m, &l, 1).await;
        assert_eq!(rec.status, TurnStatus::Ok, "{:?}", rec.error);
        assert_eq!(w.cart().unwrap().item_count(), 2);
        assert_eq!(
            l.carts.lock().unwrap().len(),
            1,
            "the new cart was recorded"
        );
        assert!(
            l.shown
                .lock()
                .unwrap()
                .iter()
                .any(|d| matches!(d, DisplayOp::Put { kind, .. } if kind == "cart"))
        );
        let kinds: Vec<&str> = evs.iter().map(TurnEvent::kind).collect();
        assert_eq!(
            kinds,
            [
                "tool_call",
                "tool_result",
                "assistant_delta",
                "assistant_done"
            ]
        );
        let second = &m.seen.lock().unwrap()[1];
        let last = second.messages.last().unwrap();
        assert_eq!(last.role, Role::Tool);
        assert!(last.content.contains("\"added\""), "{}", last.content);
        assert_eq!(rec.usage.input_tokens, 100);
        assert_eq!(rec.cost_micros, 120, "100 in at $1/M + 10 out at $2/M");
    }

    #[tokio::test]
    async fn a_replayed_call_id_changes_nothing_twice() {
        let l = MemLedger::default();
        let mut w = ws();
        for _ in 0..2 {
            let m = Scripted::new(vec![
                Ok(call("same", "add_to_cart", r#"{"item":"margherita"}"#)),
                Ok(words("ok")),
            ]);
            let (rec, _) = run(&mut w, &m, &l, 7).await;
            assert_eq!(rec.status, TurnStatus::Ok);
        }
        assert_eq!(w.cart().unwrap().item_count(), 1);
        assert_eq!(l.carts.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn invalid_arguments_come_back_as_a_refusal_and_the_loop_is_bounded() {
        let replies = (0..MAX_STEPS + 2)
            .map(|i| Ok(call(&format!("c{i}"), "add_to_cart", r#"{"item": 42}"#)))
            .collect();
        let m = Scripted::new(replies);
        let l = MemLedger::default();
        let mut w = ws();
        let (rec, evs) = run(&mut w, &m, &l, 1).await;
        assert_eq!(rec.status, TurnStatus::Error);
        assert_eq!(m.seen.lock().unwrap().len(), MAX_STEPS);
        assert!(
            matches!(evs.last(), Some(TurnEvent::Error { code, .. }) if code == "too_many_steps")
        );
        assert!(
            evs.iter()
                .any(|e| matches!(e, TurnEvent::ToolResult { ok: false, .. }))
        );
        assert!(w.cart().unwrap().lines.is_empty());
    }

    #[tokio::test]
    async fn a_break_after_the_first_token_is_an_error_not_a_silent_cut() {
        let m = Scripted::new(vec![Ok(vec![
            Ok(StreamEvent::TextDelta("Sure, I".into())),
            Err(LlmError::Truncated),
        ])]);
        let l = MemLedger::default();
        let (rec, evs) = run(&mut ws(), &m, &l, 1).await;
        assert_eq!(rec.status, TurnStatus::Error);
        assert_eq!(rec.assistant_text, "Sure, I");
        assert!(
            matches!(evs.last(), Some(TurnEvent::Error { code, .. }) if code == "model_stream")
        );
        assert!(
            !evs.iter()
                .any(|e| matches!(e, TurnEvent::AssistantDone { .. }))
        );
    }

    #[tokio::test]
    async fn when_every_target_fails_first_the_offline_agent_answers() {
        let m = Scripted::new(vec![Err(LlmError::Transport("connection refused".into()))]);
        let l = MemLedger::default();
        let (rec, evs) = run(&mut ws(), &m, &l, 1).await;
        assert_eq!(rec.status, TurnStatus::Ok);
        assert_eq!(rec.model, "offline");
        assert!(matches!(evs.last(), Some(TurnEvent::AssistantDone { .. })));
    }

    #[tokio::test]
    async fn cancelling_stops_the_turn() {
        struct Stalls;
        #[async_trait]
        impl Model for Stalls {
            async fn stream(&self, _c: &str, _r: ChatRequest) -> Result<ModelStream, LlmError> {
                Ok(ModelStream {
                    target: "slow".into(),
                    model: "slow".into(),
                    price: None,
                    events: futures::stream::pending().boxed(),
                })
            }
        }
        let (tx, _rx) = mpsc::channel(8);
        let cancel = CancellationToken::new();
        let c = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            c.cancel();
        });
        let l = MemLedger::default();
        let rec = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            run_turn(&mut ws(), Some(&Stalls), &l, input(1), &tx, &cancel),
        )
        .await
        .unwrap();
        assert_eq!(rec.status, TurnStatus::Cancelled);
        assert_eq!(
            *l.finished.lock().unwrap(),
            [TurnStatus::Cancelled],
            "stored too"
        );
    }

    #[test]
    fn history_replays_calls_and_results_in_order() {
        let t = TurnRecord {
            turn: 1,
            user_text: "hi".into(),
            assistant_text: "hello".into(),
            tool_calls: vec![RecordedCall {
                id: "a".into(),
                name: "show_cart".into(),
                arguments: "{}".into(),
                ok: true,
                result: json!({"lines": []}),
            }],
            model: String::new(),
            target: String::new(),
            usage: Usage::default(),
            cost_micros: 0,
            ttft_ms: None,
            latency_ms: 0,
            status: TurnStatus::Ok,
            error: None,
        };
        let h = history(&[t]);
        let roles: Vec<Role> = h.iter().map(|m| m.role).collect();
        assert_eq!(
            roles,
            [Role::User, Role::Assistant, Role::Tool, Role::Assistant]
        );
        assert_eq!(h[2].tool_call_id.as_deref(), Some("a"));
    }
}
