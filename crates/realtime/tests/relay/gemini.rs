use crate::common::*;
use serde_json::json;
use std::time::Duration;
use stonepot_realtime::testing::{FakeConn, FakeServer};
use stonepot_realtime::{RelayEvent, Speaker};

async fn started(
    transparent: bool,
    runner: std::sync::Arc<Runner>,
) -> (FakeServer, FakeConn, stonepot_realtime::RelayHandle, Events) {
    let mut fake = FakeServer::gemini().await.unwrap();
    let (relay, rx) = stonepot_realtime::start(gemini_config(&fake.url, transparent), runner)
        .await
        .unwrap();
    let conn = fake.next_conn().await.unwrap();
    let mut events = Events::new(rx);
    events
        .until(|e| {
            matches!(
                e,
                RelayEvent::Ready {
                    provider: "gemini",
                    ..
                }
            )
        })
        .await;
    (fake, conn, relay, events)
}

#[tokio::test]
async fn sets_up_the_session_then_relays_audio_transcripts_and_turns() {
    let (_fake, mut conn, relay, mut events) = started(false, Runner::new(Duration::ZERO)).await;
    assert!(
        conn.uri.ends_with("BidiGenerateContent?key=g-test"),
        "{}",
        conn.uri
    );
    let setup = conn.recv(Duration::from_secs(1)).await.unwrap();
    assert_eq!(setup.kind(), "setup");
    let s = &setup.msg["setup"];
    assert_eq!(s["model"], "models/gemini-live-test");
    assert_eq!(
        s["generationConfig"]["responseModalities"],
        json!(["AUDIO"])
    );
    assert_eq!(
        s["systemInstruction"]["parts"][0]["text"],
        "You take orders."
    );
    assert_eq!(s["tools"][0]["functionDeclarations"][0]["name"], "add_item");
    assert_eq!(s["sessionResumption"], json!({}));
    assert!(s["contextWindowCompression"]["slidingWindow"].is_object());
    assert!(s["inputAudioTranscription"].is_object());

    let sent = stream(&relay, 0, 5, false).await;
    let mut got = Vec::new();
    while got.len() < sent.len() {
        let r = conn.recv(Duration::from_secs(1)).await.unwrap();
        assert_eq!(
            r.msg["realtimeInput"]["audio"]["mimeType"],
            "audio/pcm;rate=16000"
        );
        got.extend(r.audio().unwrap());
    }
    assert_eq!(got, sent, "16 kHz guest audio goes through untouched");

    conn.send(json!({"serverContent": {"inputTranscription": {"text": "A scone"}}}));
    conn.send_audio("", "", &[500; 480]);
    conn.send(json!({"serverContent": {"outputTranscription": {"text": "One scone."}}}));
    conn.send(json!({"serverContent": {"generationComplete": true}}));
    conn.send(
        json!({"serverContent": {"turnComplete": true}, "usageMetadata": {"totalTokenCount": 9}}),
    );
    events
        .until(|e| matches!(e, RelayEvent::TurnComplete))
        .await;
    assert_eq!(audio_samples(&events.seen), 320);
    assert!(events.seen.contains(&RelayEvent::Transcript {
        speaker: Speaker::User,
        text: "A scone".into(),
        is_final: true,
        confidence: None,
    }));
    assert!(events.seen.contains(&RelayEvent::Transcript {
        speaker: Speaker::Assistant,
        text: "One scone.".into(),
        is_final: true,
        confidence: None,
    }));
    assert!(events.seen.contains(&RelayEvent::AudioEnd));
}

#[tokio::test]
async fn a_tool_call_survives_the_interruption_of_its_turn() {
    let runner = Runner::new(Duration::from_millis(150));
    let (_fake, mut conn, _relay, mut events) = started(false, runner.clone()).await;
    conn.recv(Duration::from_secs(1)).await.unwrap();
    conn.send_audio("", "", &[500; 480]);
    conn.send(
        json!({"toolCall": {"functionCalls": [{"id": "f1", "name": "add_item",
        "args": {"item": "scone"}}]}}),
    );
    conn.send(json!({"serverContent": {"interrupted": true}}));
    conn.send(json!({"toolCallCancellation": {"ids": ["f1"]}}));
    // A provider resending the same call does not run it again.
    conn.send(
        json!({"toolCall": {"functionCalls": [{"id": "f1", "name": "add_item",
        "args": {"item": "scone"}}]}}),
    );
    events
        .until(|e| matches!(e, RelayEvent::Interrupted { played_ms: 0 }))
        .await;
    let mut audio = Vec::new();
    let resp = conn.expect("toolResponse", &mut audio).await.unwrap();
    let fr = &resp.msg["toolResponse"]["functionResponses"][0];
    assert_eq!(fr["id"], "f1");
    assert_eq!(fr["name"], "add_item");
    assert_eq!(fr["response"]["ok"], true);
    assert!(
        conn.recv(Duration::from_millis(300)).await.is_none(),
        "acknowledged once"
    );
    assert_eq!(runner.count(), 1);
    events
        .until(|e| matches!(e, RelayEvent::ToolResult { .. }))
        .await;
    let results = events
        .seen
        .iter()
        .filter(|e| matches!(e, RelayEvent::ToolResult { .. }))
        .count();
    assert_eq!(results, 1);
}

#[tokio::test]
async fn go_away_resumes_from_the_latest_handle_without_losing_or_doubling_audio() {
    let (mut fake, mut conn, relay, mut events) = started(false, Runner::new(Duration::ZERO)).await;
    conn.recv(Duration::from_secs(1)).await.unwrap();
    let a = stream(&relay, 0, 10, false).await;
    let got_a = conn.drain_audio(Duration::from_millis(200)).await;
    assert_eq!(got_a, a);
    // The state with A in it can be resumed.
    conn.send(json!({"sessionResumptionUpdate": {"newHandle": "handle-1", "resumable": true}}));
    conn.send(json!({"sessionResumptionUpdate": {"newHandle": "", "resumable": false}}));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let b = stream(&relay, 10_000, 10, false).await;
    let got_b = conn.drain_audio(Duration::from_millis(200)).await;
    assert_eq!(got_b, b);
    conn.send(json!({"goAway": {"timeLeft": "3s"}}));
    let mut next = fake.next_conn().await.unwrap();
    let setup = next.recv(Duration::from_secs(1)).await.unwrap();
    assert_eq!(
        setup.msg["setup"]["sessionResumption"]["handle"],
        "handle-1"
    );
    let ev = events
        .until(|e| matches!(e, RelayEvent::RolledOver { .. }))
        .await;
    assert_eq!(
        ev,
        RelayEvent::RolledOver {
            reason: "go_away".into(),
            resumed: true
        }
    );
    let c = stream(&relay, 20_000, 5, false).await;
    let got = next.drain_audio(Duration::from_millis(300)).await;
    // B was sent after the handle, so the resumed session needs it again; A it has.
    let expected: Vec<i16> = b.iter().chain(c.iter()).copied().collect();
    assert_eq!(got.len(), expected.len());
    assert_eq!(got, expected);
}

#[tokio::test]
async fn transparent_resumption_replays_exactly_what_was_not_consumed() {
    let (mut fake, mut conn, relay, mut events) = started(true, Runner::new(Duration::ZERO)).await;
    let setup = conn.recv(Duration::from_secs(1)).await.unwrap();
    assert_eq!(setup.msg["setup"]["sessionResumption"]["transparent"], true);
    let sent = stream(&relay, 0, 10, false).await;
    let got = conn.drain_audio(Duration::from_millis(200)).await;
    assert_eq!(got, sent);
    // Messages 1..=6 (the first six frames) are in the resumable state.
    conn.send(
        json!({"sessionResumptionUpdate": {"newHandle": "h2", "resumable": true,
        "lastConsumedClientMessageIndex": "6"}}),
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
    conn.close();
    let mut next = fake.next_conn().await.unwrap();
    let setup = next.recv(Duration::from_secs(1)).await.unwrap();
    assert_eq!(setup.msg["setup"]["sessionResumption"]["handle"], "h2");
    let got = next.drain_audio(Duration::from_millis(300)).await;
    assert_eq!(got, sent[6 * 320..].to_vec());
    let ev = events
        .until(|e| matches!(e, RelayEvent::RolledOver { .. }))
        .await;
    assert!(matches!(ev, RelayEvent::RolledOver { resumed: true, .. }));
}

#[tokio::test]
async fn malformed_events_are_reported_and_the_session_goes_on() {
    let (_fake, mut conn, _relay, mut events) = started(false, Runner::new(Duration::ZERO)).await;
    conn.send_raw("nonsense");
    conn.send(json!({"goAway": {"timeLeft": "whenever"}}));
    conn.send(
        json!({"serverContent": {"modelTurn": {"parts": [{"inlineData":
        {"mimeType": "audio/pcm;rate=24000", "data": "%%%"}}]}}}),
    );
    conn.send(json!({"toolCall": {"functionCalls": [{"name": "add_item"}]}}));
    conn.send(json!({"setupComplete": {}}));
    conn.send(json!({"somethingNew": {"x": 1}}));
    conn.send_audio("", "", &[7; 480]);
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
            "malformed_event",
            "unexpected_event"
        ]
    );
}

#[tokio::test]
async fn a_lost_connection_without_a_handle_starts_fresh_with_the_conversation() {
    let (mut fake, mut conn, _relay, mut events) =
        started(false, Runner::new(Duration::ZERO)).await;
    conn.recv(Duration::from_secs(1)).await.unwrap();
    conn.send(json!({"serverContent": {"inputTranscription": {"text": "A scone"}}}));
    conn.send(json!({"serverContent": {"outputTranscription": {"text": "One scone."}}}));
    conn.send(json!({"serverContent": {"turnComplete": true}}));
    events
        .until(|e| matches!(e, RelayEvent::TurnComplete))
        .await;
    conn.close();
    let mut next = fake.next_conn().await.unwrap();
    let setup = next.recv(Duration::from_secs(1)).await.unwrap();
    assert_eq!(setup.msg["setup"]["sessionResumption"], json!({}));
    let ctx = next.recv(Duration::from_secs(1)).await.unwrap();
    assert_eq!(
        ctx.msg,
        json!({"clientContent": {"turns": [
            {"role": "user", "parts": [{"text": "A scone"}]},
            {"role": "model", "parts": [{"text": "One scone."}]}
        ], "turnComplete": false}})
    );
    let ev = events
        .until(|e| matches!(e, RelayEvent::RolledOver { .. }))
        .await;
    assert!(matches!(ev, RelayEvent::RolledOver { resumed: false, .. }));
}
