//! Relay voice mode end to end: the real server (in-process on 127.0.0.1) with
//! `VOICE_MODE=relay` pointed at the fake OpenAI Realtime and Gemini Live servers of
//! `stonepot_realtime::testing`, which speak the real event protocol; a guest on the real
//! chat socket sends PCM16 frames and JSON events and reads what comes back. The fake is
//! scripted from the test: transcripts, model audio, function calls, an interruption,
//! `goAway` and session expiry, malformed events.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;
use crate::relay_guest;

use common::{get, start};
use relay_guest::{
    Guest, KEY, cart, deltas, display, openai_guest_turn, openai_heard, server, turns_when,
};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use stonepot_realtime::testing::FakeServer;

#[tokio::test]
async fn openai_audio_goes_up_and_comes_back_down_resampled_with_transcripts_and_the_ledger() {
    let mut fake = FakeServer::openai(Duration::from_secs(3600)).await.unwrap();
    let s = server(&fake, "openai").await;
    let health: Value = common::get_json(s.url("/health"), None).await;
    assert_eq!(health["speech"]["mode"], "relay", "{health}");
    assert_eq!(health["speech"]["realtime"], "openai", "{health}");
    let (mut g, mut conn) = Guest::open(&s, &mut fake).await;
    assert_eq!(
        conn.authorization.as_deref(),
        Some("Bearer sk-relay-test"),
        "the key from OPENAI_API_KEY"
    );
    let mut audio = Vec::new();
    let update = conn.expect("session.update", &mut audio).await.unwrap();
    let session = &update.msg["session"];
    // The text agent's prompt (with the tenant's menu) and tools.
    let instructions = session["instructions"].as_str().unwrap();
    assert!(instructions.contains("Margherita"), "{instructions}");
    let tools: Vec<&str> = session["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    for want in ["search_menu", "add_to_cart", "quote_order", "confirm_order"] {
        assert!(tools.contains(&want), "{want} in {tools:?}");
    }
    assert_eq!(session["audio"]["input"]["format"]["rate"], 24000);

    // 200 ms of 16 kHz guest audio reaches the provider as 200 ms at 24 kHz.
    for i in 0..10 {
        g.frame(&[i * 100; 320]).await;
    }
    let up = conn.drain_audio(Duration::from_millis(500)).await;
    assert_eq!(up.len(), 4800);

    conn.send(
        json!({"type": "input_audio_buffer.speech_started", "audio_start_ms": 0, "item_id": "u1"}),
    );
    conn.send(
        json!({"type": "input_audio_buffer.speech_stopped", "audio_end_ms": 180, "item_id": "u1"}),
    );
    conn.send(
        json!({"type": "conversation.item.input_audio_transcription.delta",
        "item_id": "u1", "content_index": 0, "delta": "Two margherita"}),
    );
    openai_heard(&mut conn, "u1", "Two margherita pizzas please");
    conn.send(
        json!({"type": "response.created", "response": {"id": "r1", "status": "in_progress"}}),
    );
    deltas(&mut conn, "r1", "a1", 5);
    conn.send(
        json!({"type": "response.output_audio_transcript.delta", "response_id": "r1",
        "item_id": "a1", "delta": "Two margheritas,"}),
    );
    conn.send(
        json!({"type": "response.output_audio_transcript.done", "response_id": "r1",
        "item_id": "a1", "transcript": "Two margheritas, coming up."}),
    );
    conn.send(json!({"type": "response.done", "response": {"id": "r1", "status": "completed", "output": []}}));
    let end = g.until("audio_end").await;
    g.seen_or_next("assistant_done").await;

    let k = g.kinds();
    let pos = |w: &str| {
        k.iter()
            .position(|x| x == w)
            .unwrap_or_else(|| panic!("{w} in {k:?}"))
    };
    assert!(pos("speech_started") < pos("speech_stopped"), "{k:?}");
    assert!(pos("speech_stopped") < pos("transcript"), "{k:?}");
    assert!(pos("audio_start") < pos("audio_end"), "{k:?}");
    let transcripts = g.events("transcript");
    assert_eq!(
        transcripts[0],
        json!({"type": "transcript", "final": false, "text": "Two margherita"})
    );
    let fin = &transcripts[1];
    assert_eq!(fin["final"], true);
    assert_eq!(fin["text"], "Two margherita pizzas please");
    assert!(
        fin["latencyMs"].is_u64(),
        "the ledger's transcript figure: {fin}"
    );
    assert_eq!(g.events("audio_start")[0]["sampleRate"], 16000);
    assert_eq!(g.events("assistant_delta")[0]["text"], "Two margheritas,");
    let done = &g.events("assistant_done")[0];
    assert_eq!(done["text"], "Two margheritas, coming up.");
    assert_eq!(done["model"], "gpt-realtime");

    // 100 ms of 24 kHz model audio comes down as five 20 ms frames at 16 kHz.
    let frames = g.frames();
    assert_eq!(frames.len(), 5, "{k:?}");
    assert!(frames.iter().all(|f| f.len() == 320));
    let peak = frames
        .iter()
        .flatten()
        .map(|s| s.unsigned_abs())
        .max()
        .unwrap();
    assert!(
        (900..=1100).contains(&peak),
        "the model's level survives resampling: {peak}"
    );
    assert_eq!(end["sentMs"], 100);

    // The played report completes the ledger.
    g.send(json!({"type": "playout", "playedMs": 100})).await;
    let turns = turns_when(&s, &g.id, |t| !t.is_empty()).await;
    let t = &turns[0];
    assert_eq!(t["userText"], "Two margherita pizzas please", "{t}");
    assert_eq!(t["assistantText"], "Two margheritas, coming up.", "{t}");
    assert_eq!(t["target"], "realtime:openai");
    assert_eq!(t["voice"]["mode"], "relay");
    assert_eq!(t["voice"]["interrupted"], false);
    for stage in ["transcript", "firstToken", "firstAudio"] {
        assert!(t["voice"]["latencyMs"][stage].is_u64(), "{stage}: {t}");
    }
    let metrics = get(s.url("/metrics"), None).await.text().await.unwrap();
    for stage in ["transcript", "first_token", "first_audio", "first_played"] {
        let line = format!("stonepot_voice_latency_seconds_count{{stage=\"{stage}\"}}");
        assert!(metrics.contains(&line), "{line} in\n{metrics}");
    }
}

#[tokio::test]
async fn openai_function_calls_run_the_agents_tools_and_update_the_display() {
    let mut fake = FakeServer::openai(Duration::from_secs(3600)).await.unwrap();
    let s = server(&fake, "openai").await;
    let (mut g, mut conn) = Guest::open(&s, &mut fake).await;
    let mut audio = Vec::new();
    conn.expect("session.update", &mut audio).await.unwrap();
    openai_guest_turn(&mut conn, "u1", "Two margheritas");
    conn.send(json!({"type": "response.created", "response": {"id": "r1"}}));
    let call = json!({"type": "function_call", "call_id": "c1", "name": "add_to_cart",
        "arguments": "{\"item\":\"margherita\",\"quantity\":2}"});
    conn.send(
        json!({"type": "response.function_call_arguments.done", "response_id": "r1",
        "item_id": "f1", "call_id": "c1", "name": "add_to_cart",
        "arguments": "{\"item\":\"margherita\",\"quantity\":2}"}),
    );
    conn.send(json!({"type": "response.output_item.done", "response_id": "r1", "item": call}));
    conn.send(
        json!({"type": "response.done", "response": {"id": "r1", "status": "completed",
        "output": [call]}}),
    );

    let tc = g.until("tool_call").await;
    assert_eq!(
        tc,
        json!({"type": "tool_call", "id": "c1", "name": "add_to_cart",
            "arguments": {"item": "margherita", "quantity": 2}})
    );
    let tr = g.until("tool_result").await;
    assert_eq!(tr["id"], "c1");
    assert_eq!(tr["ok"], true, "{tr}");
    // The display shows the cart, exactly as for a typed order.
    let state = display(&s, &g.id).await;
    assert!(state.contains("Margherita Pizza"), "{state}");
    assert_eq!(cart(&s, &g.id).await, vec![("margherita".to_string(), 2)]);

    // The result goes back to the model once, and a reply is asked for.
    let out = conn
        .expect("conversation.item.create", &mut audio)
        .await
        .unwrap();
    assert_eq!(out.msg["item"]["type"], "function_call_output");
    assert_eq!(out.msg["item"]["call_id"], "c1");
    assert!(
        out.msg["item"]["output"]
            .as_str()
            .unwrap()
            .contains("margherita")
    );
    conn.expect("response.create", &mut audio).await.unwrap();
    conn.send(json!({"type": "response.created", "response": {"id": "r2"}}));
    deltas(&mut conn, "r2", "a2", 2);
    conn.send(
        json!({"type": "response.output_audio_transcript.done", "response_id": "r2",
        "item_id": "a2", "transcript": "Two margheritas are in your cart."}),
    );
    conn.send(json!({"type": "response.done", "response": {"id": "r2", "status": "completed"}}));
    g.until("audio_end").await;

    // One turn: the guest's words, the call, the spoken answer.
    let turns = turns_when(&s, &g.id, |t| !t.is_empty()).await;
    assert_eq!(turns.len(), 1, "{turns:?}");
    let t = &turns[0];
    assert_eq!(t["userText"], "Two margheritas");
    assert_eq!(t["assistantText"], "Two margheritas are in your cart.");
    let calls = t["toolCalls"].as_array().unwrap();
    assert_eq!(calls.len(), 1, "{t}");
    assert_eq!(calls[0]["callId"], "c1");
    assert_eq!(calls[0]["ok"], true);

    // A provider repeating the call (same id, next response) does not add again.
    conn.send(
        json!({"type": "response.function_call_arguments.done", "call_id": "c1",
        "name": "add_to_cart", "arguments": "{\"item\":\"margherita\",\"quantity\":2}"}),
    );
    // Typed text goes to the same model, in the same conversation.
    g.send(json!({"type": "user_text", "text": "and a tiramisu"}))
        .await;
    let typed = conn
        .expect("conversation.item.create", &mut audio)
        .await
        .unwrap();
    assert_eq!(typed.msg["item"]["role"], "user", "{}", typed.msg);
    assert!(typed.msg.to_string().contains("and a tiramisu"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(cart(&s, &g.id).await, vec![("margherita".to_string(), 2)]);
    assert_eq!(g.events("tool_call").len(), 1, "{:?}", g.kinds());
}

#[tokio::test]
async fn openai_barge_in_stops_the_audio_and_truncates_the_reply_to_what_was_played() {
    let mut fake = FakeServer::openai(Duration::from_secs(3600)).await.unwrap();
    let s = server(&fake, "openai").await;
    let (mut g, mut conn) = Guest::open(&s, &mut fake).await;
    let mut audio = Vec::new();
    conn.expect("session.update", &mut audio).await.unwrap();
    openai_heard(&mut conn, "u1", "What did I order");
    conn.send(json!({"type": "response.created", "response": {"id": "r1"}}));
    let full = "Your order is two margheritas and one tiramisu and a lemonade";
    conn.send(
        json!({"type": "response.output_audio_transcript.delta", "response_id": "r1",
        "item_id": "a1", "delta": full}),
    );
    deltas(&mut conn, "r1", "a1", 15);
    // The guest has the whole 300 ms and has played 120 ms of it.
    while g.frames().len() < 15 {
        g.next().await.expect("reply audio");
    }
    g.send(json!({"type": "playout", "playedMs": 120})).await;
    tokio::time::sleep(Duration::from_millis(100)).await;

    let sent_at = Instant::now();
    conn.send(
        json!({"type": "input_audio_buffer.speech_started", "audio_start_ms": 5, "item_id": "u2"}),
    );
    let int = g.until("interrupted").await;
    let stop = sent_at.elapsed();
    // Audio the provider had already queued for the cancelled reply.
    deltas(&mut conn, "r1", "a1", 5);
    assert_eq!(int["heardMs"], 120, "{int}");
    assert_eq!(int["sentMs"], 300, "{int}");
    // The guest spoke the minimum (200 ms by default) before the relay interrupted; the
    // margin is generous for a loaded 2-core machine (the tighter figures are in
    // voice_relay_barge_in.rs and PERFORMANCE.md).
    assert!(
        stop >= Duration::from_millis(200),
        "interrupted after {stop:?}"
    );
    assert!(stop < Duration::from_millis(700), "barge-in took {stop:?}");
    let cancel = conn.expect("response.cancel", &mut audio).await.unwrap();
    let trunc = conn
        .expect("conversation.item.truncate", &mut audio)
        .await
        .unwrap();
    assert!(trunc.at >= cancel.at);
    assert_eq!(trunc.msg["item_id"], "a1");
    assert_eq!(trunc.msg["audio_end_ms"], 120, "what the guest heard");
    conn.send(json!({"type": "response.done", "response": {"id": "r1", "status": "cancelled"}}));
    g.drain(Duration::from_millis(300)).await;
    let k = g.kinds();
    let i = k.iter().position(|x| x == "interrupted").unwrap();
    assert!(
        !k[i..].iter().any(|x| x.starts_with("audio(")),
        "no audio after interrupted: {k:?}"
    );
    assert!(k[i..].iter().any(|x| x == "speech_started"), "{k:?}");

    // The stored reply is what the guest heard of it.
    let turns = turns_when(&s, &g.id, |t| !t.is_empty()).await;
    let t = &turns[0];
    assert_eq!(t["userText"], "What did I order");
    assert_eq!(t["voice"]["interrupted"], true, "{t}");
    assert_eq!(t["voice"]["heardMs"], 120, "{t}");
    let heard = t["assistantText"].as_str().unwrap();
    assert!(!heard.is_empty() && heard.len() < full.len(), "'{heard}'");
    assert!(full.starts_with(heard.trim_end_matches('…')), "'{heard}'");
    let metrics = get(s.url("/metrics"), None).await.text().await.unwrap();
    assert!(metrics.contains("stonepot_voice_latency_seconds_count{stage=\"barge_in_stop\"} 1"));
}

#[tokio::test]
async fn openai_session_expiry_reconnects_and_the_conversation_continues() {
    let mut fake = FakeServer::openai(Duration::from_secs(3600)).await.unwrap();
    let s = server(&fake, "openai").await;
    let (mut g, mut conn) = Guest::open(&s, &mut fake).await;
    let mut audio = Vec::new();
    conn.expect("session.update", &mut audio).await.unwrap();
    openai_guest_turn(&mut conn, "u1", "One margherita");
    conn.send(json!({"type": "response.created", "response": {"id": "r1"}}));
    conn.send(
        json!({"type": "response.function_call_arguments.done", "call_id": "c1",
        "name": "add_to_cart", "arguments": "{\"item\":\"margherita\"}"}),
    );
    conn.send(json!({"type": "response.done", "response": {"id": "r1", "status": "completed"}}));
    g.until("tool_result").await;
    conn.expect("response.create", &mut audio).await.unwrap();

    conn.send(json!({"type": "error", "event_id": "e9", "error": {"type": "invalid_request_error",
        "code": "session_expired", "message": "Your session hit the maximum duration of 60 minutes."}}));
    let mut next = fake.next_conn().await.expect("the relay reconnected");
    let mut msgs = Vec::new();
    while let Some(r) = next.recv(Duration::from_millis(400)).await {
        msgs.push(r);
    }
    assert_eq!(msgs[0].kind(), "session.update");
    let context: String = msgs.iter().map(|m| m.msg.to_string()).collect();
    assert!(
        context.contains("One margherita"),
        "the conversation is re-injected: {context}"
    );

    // The same socket goes on: guest audio reaches the new connection, and a call made
    // there changes the same cart.
    for _ in 0..5 {
        g.frame(&[500; 320]).await;
    }
    assert_eq!(
        next.drain_audio(Duration::from_millis(400)).await.len(),
        2400
    );
    next.send(json!({"type": "response.created", "response": {"id": "r9"}}));
    next.send(
        json!({"type": "response.function_call_arguments.done", "call_id": "c9",
        "name": "add_to_cart", "arguments": "{\"item\":\"margherita\"}"}),
    );
    next.send(json!({"type": "response.done", "response": {"id": "r9", "status": "completed"}}));
    let tr = g.until("tool_result").await;
    assert_eq!(tr["id"], "c9");
    assert_eq!(cart(&s, &g.id).await, vec![("margherita".to_string(), 2)]);
    assert!(
        g.events("error").is_empty(),
        "a rollover is not an error: {:?}",
        g.kinds()
    );
}

#[tokio::test]
async fn malformed_provider_events_become_error_events_and_the_session_goes_on() {
    for provider in ["openai", "gemini"] {
        let mut fake = match provider {
            "openai" => FakeServer::openai(Duration::from_secs(3600)).await.unwrap(),
            _ => FakeServer::gemini().await.unwrap(),
        };
        let s = server(&fake, provider).await;
        let (mut g, mut conn) = Guest::open(&s, &mut fake).await;
        let mut audio = Vec::new();
        let first = if provider == "openai" {
            "session.update"
        } else {
            "setup"
        };
        conn.expect(first, &mut audio).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        conn.send_raw("{this is not json");
        let e = g.until("error").await;
        assert_eq!(e["code"], "malformed_event", "{provider}: {e}");
        // Still relaying: the model's audio comes through afterwards.
        conn.send_audio("r1", "a1", &[800; 480]);
        conn.send_audio("r1", "a1", &[800; 480]);
        g.until("audio_start").await;
        while g.frames().is_empty() {
            g.next().await.expect("audio after the bad event");
        }
    }
}

#[tokio::test]
async fn gemini_relays_audio_runs_tools_and_rolls_over_on_go_away_with_resumption() {
    let mut fake = FakeServer::gemini().await.unwrap();
    let s = server(&fake, "gemini").await;
    let (mut g, mut conn) = Guest::open(&s, &mut fake).await;
    assert!(conn.uri.contains("key=g-relay-test"), "{}", conn.uri);
    let mut audio = Vec::new();
    let setup = conn.expect("setup", &mut audio).await.unwrap();
    let decl = setup.msg.to_string();
    assert!(decl.contains("add_to_cart"), "{decl}");
    tokio::time::sleep(Duration::from_millis(100)).await;

    // Gemini takes 16 kHz: the guest's frames arrive sample for sample.
    let sent: Vec<i16> = (0..1600).map(|i| (i % 400) as i16).collect();
    for f in sent.chunks(320) {
        g.frame(f).await;
    }
    let up = conn.drain_audio(Duration::from_millis(400)).await;
    assert_eq!(up.len(), 1600);

    conn.send(json!({"serverContent": {"inputTranscription": {"text": "a margherita"}}}));
    conn.send(
        json!({"serverContent": {"inputTranscription": {"text": " please", "finished": true}}}),
    );
    conn.send(
        json!({"toolCall": {"functionCalls": [{"id": "g1", "name": "add_to_cart",
        "args": {"item": "margherita"}}]}}),
    );
    let tr = g.until("tool_result").await;
    assert_eq!(tr["ok"], true, "{tr}");
    assert!(display(&s, &g.id).await.contains("Margherita Pizza"));
    let resp = conn.expect("toolResponse", &mut audio).await.unwrap();
    assert_eq!(resp.msg["toolResponse"]["functionResponses"][0]["id"], "g1");
    // The spoken answer, 24 kHz down to the client's 16 kHz.
    for _ in 0..5 {
        conn.send_audio("", "", &[1200; 480]);
    }
    conn.send(json!({"serverContent": {"outputTranscription": {"text": "Added a margherita."}}}));
    conn.send(json!({"serverContent": {"turnComplete": true}}));
    g.until("audio_end").await;
    assert_eq!(g.frames().iter().map(Vec::len).sum::<usize>(), 1600);
    let done = g.seen_or_next("assistant_done").await;
    assert_eq!(done["text"], "Added a margherita.");
    let turns = turns_when(&s, &g.id, |t| !t.is_empty()).await;
    assert_eq!(turns[0]["userText"], "a margherita please", "{}", turns[0]);
    assert_eq!(turns[0]["assistantText"], "Added a margherita.");
    assert_eq!(turns[0]["toolCalls"][0]["callId"], "g1");

    // goAway: the relay resumes on a new connection with the latest handle.
    conn.send(json!({"sessionResumptionUpdate": {"newHandle": "handle-1", "resumable": true}}));
    conn.send(json!({"goAway": {"timeLeft": "3s"}}));
    let mut next = fake.next_conn().await.expect("the relay reconnected");
    let setup = next.expect("setup", &mut audio).await.unwrap();
    assert_eq!(
        setup.msg["setup"]["sessionResumption"]["handle"], "handle-1",
        "{}",
        setup.msg
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    for f in sent.chunks(320) {
        g.frame(f).await;
    }
    let up = next.drain_audio(Duration::from_millis(400)).await;
    assert_eq!(up.len(), 1600, "audio goes to the new connection");
    next.send(
        json!({"toolCall": {"functionCalls": [{"id": "g2", "name": "add_to_cart",
        "args": {"item": "margherita"}}]}}),
    );
    let tr = g.until("tool_result").await;
    assert_eq!(tr["id"], "g2");
    assert_eq!(cart(&s, &g.id).await, vec![("margherita".to_string(), 2)]);
    let resp = next.expect("toolResponse", &mut audio).await.unwrap();
    assert_eq!(resp.msg["toolResponse"]["functionResponses"][0]["id"], "g2");
    assert!(
        conn.recv(Duration::from_millis(100))
            .await
            .is_none_or(|r| r.kind() != "toolResponse")
    );
}

#[tokio::test]
async fn an_unreachable_realtime_model_is_reported_on_start() {
    // A fake whose address then refuses connections.
    let fake = FakeServer::openai(Duration::from_secs(3600)).await.unwrap();
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("ws://{}/v1/realtime", l.local_addr().unwrap())
    };
    let s = start(&[
        ("STONEPOT_DEMO_KEY", KEY),
        ("VOICE_MODE", "relay"),
        ("OPENAI_API_KEY", "sk-relay-test"),
        ("OPENAI_BASE_URL", "http://127.0.0.1:9"),
        ("OPENAI_REALTIME_URL", closed.as_str()),
    ])
    .await;
    drop(fake);
    let mut g = Guest::connect(&s).await;
    // Audio before `start` is refused once, not per frame.
    g.frame(&[0; 320]).await;
    g.frame(&[0; 320]).await;
    let e = g.until("error").await;
    assert_eq!(e["code"], "voice_unavailable", "{e}");
    g.send(json!({"type": "start", "sampleRate": 16000})).await;
    let e = g.until_any(&["started", "error"]).await;
    assert_eq!(e["code"], "voice_unavailable", "{e}");
    assert!(e["message"].as_str().unwrap().contains("openai"), "{e}");
    assert_eq!(g.events("error").len(), 2, "{:?}", g.kinds());
}

#[test]
fn relay_mode_without_the_providers_key_stops_start_up_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let env: std::collections::HashMap<String, String> = [
        ("DATA_DIR", dir.path().to_str().unwrap()),
        ("VOICE_TENANT_MODES", "demo-restaurant=relay"),
        ("REALTIME_PROVIDER", "gemini"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let flags = stonepot_server::config::Overrides {
        port: Some(0),
        demo: true,
        ..Default::default()
    };
    let Err(e) = stonepot_server::config::Config::load(None, &env, &flags) else {
        panic!("start-up was not refused");
    };
    let e = e.to_string();
    assert!(e.contains("GEMINI_API_KEY") && e.contains("relay"), "{e}");
}

#[tokio::test]
async fn gemini_interruption_stops_the_audio_and_a_call_in_flight_still_runs_once() {
    let mut fake = FakeServer::gemini().await.unwrap();
    let s = server(&fake, "gemini").await;
    let (mut g, mut conn) = Guest::open(&s, &mut fake).await;
    let mut audio = Vec::new();
    conn.expect("setup", &mut audio).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    conn.send(json!({"serverContent": {"inputTranscription": {"text": "a margherita", "finished": true}}}));
    for _ in 0..15 {
        conn.send_audio("", "", &[900; 480]);
    }
    conn.send(json!({"serverContent": {"outputTranscription": {"text": "One margherita, and would you like a drink with that"}}}));
    while g.frames().len() < 15 {
        g.next().await.expect("reply audio");
    }
    g.send(json!({"type": "playout", "playedMs": 100})).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    // The model calls a tool, and the guest talks over it at once.
    conn.send(
        json!({"toolCall": {"functionCalls": [{"id": "g7", "name": "add_to_cart",
        "args": {"item": "margherita"}}]}}),
    );
    conn.send(json!({"serverContent": {"interrupted": true}}));
    conn.send(json!({"toolCallCancellation": {"ids": ["g7"]}}));
    let int = g.until("interrupted").await;
    assert_eq!(int["heardMs"], 100, "{int}");
    assert_eq!(int["sentMs"], 300, "{int}");
    let tr = g.seen_or_next("tool_result").await;
    assert_eq!(tr["ok"], true, "the call survives the interruption: {tr}");
    conn.send(json!({"serverContent": {"turnComplete": true}}));
    g.drain(Duration::from_millis(300)).await;
    let k = g.kinds();
    let i = k.iter().position(|x| x == "interrupted").unwrap();
    assert!(!k[i..].iter().any(|x| x.starts_with("audio(")), "{k:?}");
    assert_eq!(cart(&s, &g.id).await, vec![("margherita".to_string(), 1)]);
    // Told to the model once, although it cancelled the call.
    let mut responses = 0;
    while let Some(r) = conn.recv(Duration::from_millis(300)).await {
        responses += usize::from(r.kind() == "toolResponse");
    }
    assert_eq!(responses, 1);
    assert_eq!(g.events("tool_call").len(), 1);
}
