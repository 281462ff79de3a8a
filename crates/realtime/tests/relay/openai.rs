use crate::common::*;
use serde_json::json;
use std::time::Duration;
use stonepot_realtime::testing::{FakeConn, FakeServer};
use stonepot_realtime::{RelayEvent, Speaker};

const MS: Duration = Duration::from_millis(300);

async fn started(
    expires: Duration,
    runner: std::sync::Arc<Runner>,
) -> (FakeServer, FakeConn, stonepot_realtime::RelayHandle, Events) {
    let mut fake = FakeServer::openai(expires).await.unwrap();
    let (relay, rx) = stonepot_realtime::start(openai_config(&fake.url), runner)
        .await
        .unwrap();
    let conn = fake.next_conn().await.unwrap();
    let mut events = Events::new(rx);
    events
        .until(|e| {
            matches!(
                e,
                RelayEvent::Ready {
                    rollover: false,
                    ..
                }
            )
        })
        .await;
    (fake, conn, relay, events)
}

fn deltas(conn: &mut FakeConn, response: &str, item: &str, n: usize) {
    for _ in 0..n {
        conn.send_audio(response, item, &[1000; 480]);
    }
}

#[tokio::test]
async fn configures_the_session_and_relays_audio_both_ways_at_the_right_rates() {
    let (_fake, mut conn, relay, mut events) =
        started(Duration::from_secs(3600), Runner::new(MS)).await;
    assert_eq!(conn.uri, "/v1/realtime?model=gpt-realtime");
    assert_eq!(conn.authorization.as_deref(), Some("Bearer sk-test"));
    let mut audio = Vec::new();
    let update = conn.expect("session.update", &mut audio).await.unwrap();
    let s = &update.msg["session"];
    assert_eq!(s["type"], "realtime");
    assert_eq!(s["instructions"], "You take orders.");
    assert_eq!(s["tools"][0]["name"], "add_item");
    assert_eq!(s["tools"][0]["type"], "function");
    assert_eq!(
        s["audio"]["input"]["format"],
        json!({"type": "audio/pcm", "rate": 24000})
    );
    assert_eq!(s["audio"]["input"]["turn_detection"]["type"], "server_vad");

    // 200 ms of guest audio at 16 kHz arrives as 200 ms at 24 kHz.
    stream(&relay, 0, 10, false).await;
    let got = conn.drain_audio(MS).await;
    assert_eq!(got.len(), 4800);

    conn.send(
        json!({"type": "input_audio_buffer.speech_started", "audio_start_ms": 0, "item_id": "u1"}),
    );
    conn.send(
        json!({"type": "input_audio_buffer.speech_stopped", "audio_end_ms": 180, "item_id": "u1"}),
    );
    conn.send(
        json!({"type": "conversation.item.input_audio_transcription.completed",
        "item_id": "u1", "content_index": 0, "transcript": "Two lattes please"}),
    );
    conn.send(
        json!({"type": "response.created", "response": {"id": "r1", "status": "in_progress"}}),
    );
    deltas(&mut conn, "r1", "a1", 5);
    conn.send(json!({"type": "response.output_audio_transcript.delta", "response_id": "r1", "item_id": "a1", "delta": "Two lattes"}));
    conn.send(json!({"type": "response.output_audio_transcript.done", "response_id": "r1", "item_id": "a1", "transcript": "Two lattes, coming up."}));
    conn.send(json!({"type": "response.done", "response": {"id": "r1", "status": "completed", "output": []}}));
    events
        .until(|e| matches!(e, RelayEvent::TurnComplete))
        .await;
    let kinds = events.brief();
    let pos = |s: &str| kinds.iter().position(|k| k.starts_with(s)).unwrap();
    assert!(pos("SpeechStarted") < pos("SpeechStopped"));
    assert!(pos("AudioStart") < pos("Audio("));
    assert!(pos("Audio(") < pos("AudioEnd"));
    assert!(events.seen.contains(&RelayEvent::Transcript {
        speaker: Speaker::User,
        text: "Two lattes please".into(),
        is_final: true,
        confidence: None,
    }));
    assert!(events.seen.contains(&RelayEvent::Transcript {
        speaker: Speaker::Assistant,
        text: "Two lattes, coming up.".into(),
        is_final: true,
        confidence: None,
    }));
    // 100 ms of model audio at 24 kHz reaches the client as 100 ms at 16 kHz.
    assert_eq!(audio_samples(&events.seen), 1600);
    relay.close().await.unwrap();
    events
        .until(|e| matches!(e, RelayEvent::Closed { .. }))
        .await;
}

#[tokio::test]
async fn a_tool_call_interrupted_mid_utterance_runs_once_and_is_acknowledged() {
    let runner = Runner::new(Duration::from_millis(200));
    let (_fake, mut conn, _relay, mut events) =
        started(Duration::from_secs(3600), runner.clone()).await;
    let mut audio = Vec::new();
    conn.expect("session.update", &mut audio).await.unwrap();
    conn.send(json!({"type": "response.created", "response": {"id": "r1"}}));
    deltas(&mut conn, "r1", "a1", 3);
    let call = json!({"type": "function_call", "call_id": "c1", "name": "add_item",
        "arguments": "{\"item\":\"latte\"}"});
    conn.send(
        json!({"type": "response.function_call_arguments.done", "response_id": "r1",
        "item_id": "f1", "call_id": "c1", "name": "add_item", "arguments": "{\"item\":\"latte\"}"}),
    );
    conn.send(json!({"type": "response.output_item.done", "response_id": "r1", "item": call}));
    // The guest talks over the reply while the tool runs.
    conn.send(
        json!({"type": "input_audio_buffer.speech_started", "audio_start_ms": 40, "item_id": "u2"}),
    );
    conn.send(
        json!({"type": "response.done", "response": {"id": "r1", "status": "cancelled",
        "output": [call]}}),
    );
    events
        .until(|e| matches!(e, RelayEvent::Interrupted { .. }))
        .await;
    let result = events
        .until(|e| matches!(e, RelayEvent::ToolResult { .. }))
        .await;
    assert!(matches!(result, RelayEvent::ToolResult { ref call_id, .. } if call_id == "c1"));

    let mut outputs = 0;
    let mut replies = 0;
    while let Some(r) = conn.recv(Duration::from_millis(400)).await {
        match r.kind() {
            "conversation.item.create" if r.msg["item"]["type"] == "function_call_output" => {
                assert_eq!(r.msg["item"]["call_id"], "c1");
                outputs += 1;
            }
            "response.create" => replies += 1,
            _ => {}
        }
    }
    assert_eq!(runner.count(), 1, "the call ran exactly once");
    assert_eq!(outputs, 1, "the result was told to the model exactly once");
    assert_eq!(
        replies, 0,
        "no reply is forced on a guest who is still speaking"
    );
    let calls = events
        .seen
        .iter()
        .filter(|e| matches!(e, RelayEvent::ToolCall(_)))
        .count();
    assert_eq!(calls, 1);
    // The guest stops: the provider's turn detection answers (it sees the output).
    conn.send(
        json!({"type": "input_audio_buffer.speech_stopped", "audio_end_ms": 900, "item_id": "u2"}),
    );
    events
        .until(|e| matches!(e, RelayEvent::SpeechStopped))
        .await;
    assert!(conn.recv(Duration::from_millis(200)).await.is_none());
}

#[tokio::test]
async fn a_result_after_the_reply_asks_for_a_new_reply_and_bad_arguments_are_refused() {
    let runner = Runner::new(Duration::from_millis(100));
    let (_fake, mut conn, _relay, mut events) =
        started(Duration::from_secs(3600), runner.clone()).await;
    let mut audio = Vec::new();
    conn.expect("session.update", &mut audio).await.unwrap();
    conn.send(json!({"type": "response.created", "response": {"id": "r1"}}));
    conn.send(
        json!({"type": "response.function_call_arguments.done", "call_id": "c1",
        "name": "add_item", "arguments": "{\"item\":\"tea\"}"}),
    );
    conn.send(
        json!({"type": "response.function_call_arguments.done", "call_id": "c2",
        "name": "add_item", "arguments": "not json"}),
    );
    conn.send(json!({"type": "response.done", "response": {"id": "r1", "status": "completed"}}));
    let out = conn
        .expect("conversation.item.create", &mut audio)
        .await
        .unwrap();
    assert_eq!(out.msg["item"]["call_id"], "c2");
    assert!(
        out.msg["item"]["output"]
            .as_str()
            .unwrap()
            .contains("bad_tool_arguments")
    );
    let out = conn
        .expect("conversation.item.create", &mut audio)
        .await
        .unwrap();
    assert_eq!(out.msg["item"]["call_id"], "c1");
    // One reply for both outputs, once no call is running.
    let mut replies = 0;
    while let Some(r) = conn.recv(Duration::from_millis(300)).await {
        replies += usize::from(r.kind() == "response.create");
    }
    assert_eq!(replies, 1);
    assert_eq!(runner.count(), 1);
    events
        .until(|e| matches!(e, RelayEvent::Error { code, .. } if code == "bad_tool_arguments"))
        .await;
}

#[tokio::test]
async fn barge_in_stops_audio_at_once_and_truncates_to_what_was_played() {
    let (_fake, mut conn, relay, mut events) =
        started(Duration::from_secs(3600), Runner::new(MS)).await;
    let mut audio = Vec::new();
    conn.expect("session.update", &mut audio).await.unwrap();
    conn.send(json!({"type": "response.created", "response": {"id": "r1"}}));
    deltas(&mut conn, "r1", "a1", 10);
    conn.send(
        json!({"type": "response.output_audio_transcript.delta", "response_id": "r1",
        "item_id": "a1", "delta": "Your order is two lattes and a scone"}),
    );
    events
        .until(|e| matches!(e, RelayEvent::Transcript { .. }))
        .await;
    assert_eq!(audio_samples(&events.seen), 3200);
    relay.playout(120).await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let sent_at = tokio::time::Instant::now();
    conn.send(
        json!({"type": "input_audio_buffer.speech_started", "audio_start_ms": 5, "item_id": "u2"}),
    );
    // Audio the provider had already queued for the cancelled reply.
    deltas(&mut conn, "r1", "a1", 5);
    let ev = events
        .until(|e| matches!(e, RelayEvent::Interrupted { .. }))
        .await;
    let stop = sent_at.elapsed();
    assert_eq!(ev, RelayEvent::Interrupted { played_ms: 120 });
    assert!(stop < Duration::from_millis(50), "barge-in took {stop:?}");
    let cancel = conn.expect("response.cancel", &mut audio).await.unwrap();
    let trunc = conn
        .expect("conversation.item.truncate", &mut audio)
        .await
        .unwrap();
    assert!(trunc.at >= cancel.at);
    assert_eq!(trunc.msg["item_id"], "a1");
    assert_eq!(trunc.msg["audio_end_ms"], 120);
    assert_eq!(trunc.msg["content_index"], 0);
    conn.send(json!({"type": "response.done", "response": {"id": "r1", "status": "cancelled"}}));
    // The next reply plays normally.
    conn.send(json!({"type": "response.created", "response": {"id": "r2"}}));
    deltas(&mut conn, "r2", "a2", 2);
    conn.send(json!({"type": "response.done", "response": {"id": "r2", "status": "completed"}}));
    events
        .until(|e| matches!(e, RelayEvent::TurnComplete))
        .await;
    let after: Vec<_> = events
        .seen
        .iter()
        .skip_while(|e| !matches!(e, RelayEvent::Interrupted { .. }))
        .cloned()
        .collect();
    let first_start = after
        .iter()
        .position(|e| matches!(e, RelayEvent::AudioStart))
        .unwrap();
    assert_eq!(
        audio_samples(&after[..first_start]),
        0,
        "nothing of the cancelled reply played"
    );
    assert_eq!(audio_samples(&after), 640);
}

#[tokio::test]
async fn session_expiry_reconnects_with_the_conversation_and_the_uncommitted_audio() {
    let runner = Runner::new(Duration::from_millis(10));
    let (mut fake, mut conn, relay, mut events) =
        started(Duration::from_secs(3600), runner.clone()).await;
    let mut audio = Vec::new();
    conn.expect("session.update", &mut audio).await.unwrap();
    conn.send(
        json!({"type": "conversation.item.input_audio_transcription.completed",
        "item_id": "u1", "content_index": 0, "transcript": "Two lattes"}),
    );
    conn.send(json!({"type": "response.created", "response": {"id": "r1"}}));
    conn.send(
        json!({"type": "response.function_call_arguments.done", "call_id": "c1",
        "name": "add_item", "arguments": "{\"item\":\"latte\"}"}),
    );
    conn.send(
        json!({"type": "response.output_audio_transcript.done", "response_id": "r1",
        "item_id": "a1", "transcript": "Added two lattes."}),
    );
    conn.send(json!({"type": "response.done", "response": {"id": "r1", "status": "completed"}}));
    conn.expect("response.create", &mut audio).await.unwrap();
    conn.send(json!({"type": "input_audio_buffer.committed", "item_id": "u1"}));
    tokio::time::sleep(Duration::from_millis(50)).await;
    // Guest audio the provider has not committed when the session dies.
    let pending = stream(&relay, 100, 5, false).await;
    let mut old = conn.drain_audio(Duration::from_millis(200)).await;
    assert_eq!(old.len(), 2400);
    old.clear();
    conn.send(json!({"type": "error", "event_id": "e9", "error": {"type": "invalid_request_error",
        "code": "session_expired", "message": "Your session hit the maximum duration of 60 minutes."}}));
    let mut next = fake.next_conn().await.unwrap();
    let ev = events
        .until(|e| matches!(e, RelayEvent::RolledOver { .. }))
        .await;
    assert_eq!(
        ev,
        RelayEvent::RolledOver {
            reason: "session_expired".into(),
            resumed: false
        }
    );
    let mut msgs = Vec::new();
    while let Some(r) = next.recv(Duration::from_millis(300)).await {
        msgs.push(r);
    }
    assert_eq!(msgs[0].kind(), "session.update");
    let items: Vec<_> = msgs
        .iter()
        .filter(|r| r.kind() == "conversation.item.create")
        .map(|r| r.msg["item"].clone())
        .collect();
    assert_eq!(items.len(), 4, "{items:?}");
    assert_eq!(items[0]["content"][0]["text"], "Two lattes");
    assert_eq!(items[1]["type"], "function_call");
    // The output follows its call; the model's words may come before or after it.
    let output = items
        .iter()
        .position(|i| i["type"] == "function_call_output")
        .unwrap();
    assert!(output > 1);
    let said = items.iter().find(|i| i["role"] == "assistant").unwrap();
    assert_eq!(
        said["content"][0],
        json!({"type": "output_text", "text": "Added two lattes."})
    );
    let replayed: usize = msgs.iter().filter_map(|r| r.audio()).map(|a| a.len()).sum();
    assert_eq!(replayed, 2400, "the uncommitted audio is replayed once");
    assert_eq!(runner.count(), 1);
    assert!(!pending.is_empty());
}

/// Two hours of conversation on a provider that ends each connection after ten minutes:
/// twelve rollovers, each with a turn and a tool call before it and guest audio the
/// provider had not committed when the connection died. Nothing is lost or doubled: every
/// call runs once, every fresh connection gets the whole conversation in order, and the
/// uncommitted audio of each is replayed once.
#[tokio::test]
async fn a_two_hour_conversation_survives_twelve_rollovers_with_nothing_lost() {
    let runner = Runner::new(Duration::from_millis(1));
    let (mut fake, mut conn, relay, mut events) =
        started(Duration::from_secs(3600), runner.clone()).await;
    let mut audio = Vec::new();
    conn.expect("session.update", &mut audio).await.unwrap();
    for n in 0..12 {
        conn.send(
            json!({"type": "conversation.item.input_audio_transcription.completed",
            "item_id": format!("u{n}"), "content_index": 0, "transcript": format!("Order {n}")}),
        );
        conn.send(json!({"type": "response.created", "response": {"id": format!("r{n}")}}));
        conn.send(
            json!({"type": "response.function_call_arguments.done", "call_id": format!("c{n}"),
            "name": "add_item", "arguments": format!("{{\"item\":\"item {n}\"}}")}),
        );
        conn.send(
            json!({"type": "response.output_audio_transcript.done", "response_id": format!("r{n}"),
            "item_id": format!("a{n}"), "transcript": format!("Added item {n}.")}),
        );
        conn.send(
            json!({"type": "response.done", "response": {"id": format!("r{n}"), "status": "completed"}}),
        );
        conn.expect("response.create", &mut audio).await.unwrap();
        conn.send(json!({"type": "input_audio_buffer.committed", "item_id": format!("u{n}")}));
        tokio::time::sleep(Duration::from_millis(30)).await;
        let pending = stream(&relay, 1000 * n, 3, false).await;
        let sent_before = conn.drain_audio(Duration::from_millis(150)).await;
        assert_eq!(
            sent_before.len(),
            1440,
            "rollover {n}: the audio went out first"
        );
        conn.send(
            json!({"type": "error", "error": {"type": "invalid_request_error",
            "code": "session_expired", "message": "Your session hit the maximum duration."}}),
        );
        conn = fake.next_conn().await.unwrap();
        events
            .until(|e| matches!(e, RelayEvent::RolledOver { .. }))
            .await;
        let mut msgs = Vec::new();
        while let Some(r) = conn.recv(Duration::from_millis(200)).await {
            msgs.push(r);
        }
        assert_eq!(msgs[0].kind(), "session.update", "rollover {n}");
        let items: Vec<_> = msgs
            .iter()
            .filter(|r| r.kind() == "conversation.item.create")
            .map(|r| r.msg["item"].clone())
            .collect();
        assert_eq!(items.len(), 4 * (n as usize + 1), "rollover {n}: {items:?}");
        let said: Vec<String> = items
            .iter()
            .filter(|i| i["role"] == "user")
            .map(|i| {
                i["content"][0]["text"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            })
            .collect();
        let expected: Vec<String> = (0..=n).map(|k| format!("Order {k}")).collect();
        assert_eq!(said, expected, "rollover {n}: the guest's turns, in order");
        let calls: Vec<&str> = items
            .iter()
            .filter(|i| i["type"] == "function_call")
            .filter_map(|i| i["call_id"].as_str())
            .collect();
        assert_eq!(calls.len(), n as usize + 1, "rollover {n}: {calls:?}");
        let replayed: Vec<i16> = msgs.iter().filter_map(|r| r.audio()).flatten().collect();
        // The same 24 kHz audio the dead connection got: replayed once, in order.
        assert_eq!(replayed, sent_before, "rollover {n}");
        assert_eq!(pending.len(), 960, "three 20 ms frames at 16 kHz");
    }
    assert_eq!(runner.count(), 12, "every call ran exactly once");
}

#[tokio::test]
async fn announced_expiry_rolls_over_early_at_a_quiet_moment() {
    let (mut fake, _conn, _relay, mut events) =
        started(Duration::from_secs(2), Runner::new(MS)).await;
    let next = fake.next_conn_within(Duration::from_secs(4)).await;
    assert!(next.is_some(), "no proactive rollover before expiry");
    let ev = events
        .until(|e| matches!(e, RelayEvent::RolledOver { .. }))
        .await;
    assert_eq!(
        ev,
        RelayEvent::RolledOver {
            reason: "session_expiry".into(),
            resumed: false
        }
    );
    events
        .until(|e| matches!(e, RelayEvent::Ready { rollover: true, .. }))
        .await;
}

#[tokio::test]
async fn malformed_and_out_of_order_events_are_reported_and_the_session_goes_on() {
    let (_fake, mut conn, _relay, mut events) =
        started(Duration::from_secs(3600), Runner::new(MS)).await;
    conn.send_raw("{not json");
    conn.send_raw(r#"{"type":"response.output_audio.delta","response_id":"r0","delta":"@@"}"#);
    conn.send_raw(r#"{"no_type":1}"#);
    conn.send(json!({"type": "response.created", "response": {"id": "r1"}}));
    conn.send(json!({"type": "response.done", "response": {"id": "r1"}}));
    conn.send(json!({"type": "response.done", "response": {"id": "r1"}}));
    deltas(&mut conn, "r1", "a1", 1);
    conn.send(json!({"type": "error", "error": {"type": "invalid_request_error", "code": "bad_thing", "message": "nope"}}));
    conn.send(json!({"type": "response.created", "response": {"id": "r2"}}));
    deltas(&mut conn, "r2", "a2", 1);
    events
        .until(|e| matches!(e, RelayEvent::Audio { .. }))
        .await;
    let codes: Vec<String> = events
        .seen
        .iter()
        .filter_map(|e| match e {
            RelayEvent::Error { code, .. } => Some(code.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        codes,
        vec![
            "malformed_event",
            "malformed_event",
            "malformed_event",
            "unexpected_event",
            "unexpected_event",
            "provider_error"
        ]
    );
}

#[tokio::test]
async fn typed_text_joins_the_voice_conversation() {
    let (_fake, mut conn, relay, _events) =
        started(Duration::from_secs(3600), Runner::new(MS)).await;
    relay.text("And a blueberry muffin").await.unwrap();
    let mut audio = Vec::new();
    let item = conn
        .expect("conversation.item.create", &mut audio)
        .await
        .unwrap();
    assert_eq!(
        item.msg["item"],
        json!({"type": "message", "role": "user",
            "content": [{"type": "input_text", "text": "And a blueberry muffin"}]})
    );
    conn.expect("response.create", &mut audio).await.unwrap();
}

#[tokio::test]
async fn a_provider_that_stays_unreachable_ends_the_session_with_a_reason() {
    let (fake, conn, _relay, mut events) =
        started(Duration::from_secs(3600), Runner::new(MS)).await;
    // No server to come back to: every reconnect attempt fails.
    drop(fake);
    conn.close();
    let err = events
        .until(|e| matches!(e, RelayEvent::Error { .. }))
        .await;
    assert!(
        matches!(err, RelayEvent::Error { ref code, .. } if code == "relay_connect"),
        "{err:?}"
    );
    let closed = events
        .until(|e| matches!(e, RelayEvent::Closed { .. }))
        .await;
    assert!(matches!(closed, RelayEvent::Closed { ref reason } if reason.contains("unreachable")));
}

#[tokio::test]
async fn start_fails_cleanly_without_a_provider_or_with_a_bad_config() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let err = stonepot_realtime::start(
        openai_config(&format!("ws://127.0.0.1:{port}/v1/realtime")),
        Runner::new(MS),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), "relay_connect");
    let mut cfg = openai_config("https://api.openai.com/v1/realtime");
    let err = stonepot_realtime::start(cfg.clone(), Runner::new(MS))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("ws:// or wss://"), "{err}");
    cfg.provider = stonepot_realtime::ProviderConfig::from_env(
        "openai",
        &[("OPENAI_REALTIME_URL".to_string(), "ws://x".to_string())].into(),
    )
    .unwrap();
    cfg.client_rate = 1_000;
    let err = stonepot_realtime::start(cfg, Runner::new(MS))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("client_rate"), "{err}");
    let err =
        stonepot_realtime::ProviderConfig::from_env("azure", &Default::default()).unwrap_err();
    assert!(err.to_string().contains("openai or gemini"));
}
