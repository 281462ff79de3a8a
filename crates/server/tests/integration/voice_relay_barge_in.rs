//! Barge-in in relay mode, decided by the server rather than the provider: speech over a
//! reply interrupts it only once the guest has spoken `VOICE_BARGE_IN_MIN_MS` (200 ms),
//! a reply that reads back a quoted order is never interrupted (the guest's words are
//! answered after it), and a barge-in never waits for the store. Against the fake
//! OpenAI Realtime (whose server VAD reports speech start and stop) and Gemini Live
//! (which reports neither: the relay's own detector hears the guest's espeak-ng speech).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;
use crate::relay_guest;

use relay_guest::{
    Got, Guest, deltas, openai_guest_turn, openai_heard, server, speech, turns_when,
};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use stonepot_realtime::testing::{FakeConn, FakeServer, Received};

/// Every client message the fake gets until the relay is quiet for `quiet`.
async fn received(conn: &mut FakeConn, quiet: Duration) -> Vec<Received> {
    let mut out = Vec::new();
    while let Some(r) = conn.recv(quiet).await {
        out.push(r);
    }
    out
}

/// When the guest got the first `kind` event.
fn seen_at(g: &Guest, kind: &str) -> Option<Instant> {
    g.seen.iter().find_map(|(at, got)| match got {
        Got::Event(v) if v["type"] == kind => Some(*at),
        _ => None,
    })
}

/// Audio frames the guest got after the first `kind` event.
fn frames_after(g: &Guest, kind: &str) -> usize {
    g.seen
        .iter()
        .skip_while(|(_, got)| !matches!(got, Got::Event(v) if v["type"] == kind))
        .filter(|(_, got)| matches!(got, Got::Audio(_)))
        .count()
}

/// An OpenAI reply r1 of `frames` 20 ms frames under way, all of it at the guest.
async fn openai_reply_playing(g: &mut Guest, conn: &mut FakeConn, frames: usize) {
    let mut audio = Vec::new();
    conn.expect("session.update", &mut audio).await.unwrap();
    openai_heard(conn, "u1", "What did I order");
    conn.send(json!({"type": "response.created", "response": {"id": "r1"}}));
    conn.send(
        json!({"type": "response.output_audio_transcript.delta", "response_id": "r1",
        "item_id": "a1", "delta": "Your order is two margheritas and one tiramisu"}),
    );
    deltas(conn, "r1", "a1", frames);
    while g.frames().len() < frames {
        g.next().await.expect("reply audio");
    }
}

#[tokio::test]
async fn openai_speech_shorter_than_the_minimum_does_not_interrupt_the_reply() {
    let mut fake = FakeServer::openai(Duration::from_secs(3600)).await.unwrap();
    let s = server(&fake, "openai").await;
    let (mut g, mut conn) = Guest::open(&s, &mut fake).await;
    openai_reply_playing(&mut g, &mut conn, 10).await;
    let _ = received(&mut conn, Duration::from_millis(100)).await;

    // A cough: the provider's VAD hears 80 ms of it.
    conn.send(
        json!({"type": "input_audio_buffer.speech_started", "audio_start_ms": 5, "item_id": "u2"}),
    );
    tokio::time::sleep(Duration::from_millis(80)).await;
    conn.send(
        json!({"type": "input_audio_buffer.speech_stopped", "audio_end_ms": 85, "item_id": "u2"}),
    );
    // Its automatic answer to the cough is refused while the reply runs: no error for
    // the guest.
    conn.send(
        json!({"type": "error", "error": {"type": "invalid_request_error",
        "code": "conversation_already_has_active_response",
        "message": "Conversation already has an active response in progress: r1."}}),
    );
    // The reply goes on, past the minimum.
    deltas(&mut conn, "r1", "a1", 10);
    while g.frames().len() < 20 {
        g.next().await.expect("the rest of the reply");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    conn.send(json!({"type": "response.done", "response": {"id": "r1", "status": "completed"}}));
    let end = g.until("audio_end").await;
    assert_eq!(end["sentMs"], 400, "the whole reply went out: {end}");
    let k = g.kinds();
    for not in ["interrupted", "speech_started", "speech_stopped", "error"] {
        assert!(!k.iter().any(|x| x == not), "{not} in {k:?}");
    }
    let to_provider = received(&mut conn, Duration::from_millis(200)).await;
    let kinds: Vec<&str> = to_provider.iter().map(Received::kind).collect();
    assert!(
        !kinds
            .iter()
            .any(|k| *k == "response.cancel" || *k == "conversation.item.truncate"),
        "{kinds:?}"
    );
}

#[tokio::test]
async fn openai_speech_longer_than_the_minimum_interrupts_and_truncates_to_what_was_played() {
    let mut fake = FakeServer::openai(Duration::from_secs(3600)).await.unwrap();
    let s = server(&fake, "openai").await;
    let (mut g, mut conn) = Guest::open(&s, &mut fake).await;
    openai_reply_playing(&mut g, &mut conn, 15).await;
    g.send(json!({"type": "playout", "playedMs": 140})).await;
    tokio::time::sleep(Duration::from_millis(100)).await;

    let spoke = Instant::now();
    conn.send(
        json!({"type": "input_audio_buffer.speech_started", "audio_start_ms": 5, "item_id": "u2"}),
    );
    // The reply keeps coming while the relay waits to be sure.
    deltas(&mut conn, "r1", "a1", 2);
    let int = g.until("interrupted").await;
    let decided = spoke + Duration::from_millis(200);
    let at = seen_at(&g, "interrupted").unwrap();
    assert!(at >= decided, "interrupted {:?} early", decided - at);
    // An upper bound on the stop after the decision (it also counts the fake's own
    // send): a few milliseconds here, against a 50 ms target. The bound leaves room for
    // a loaded 2-core machine (77 ms was seen once with the test pinned to one core
    // shared with three busy processes) and still fails on a stop that waits for
    // anything (a store write, a frame period, the next provider event).
    let stop = at - decided;
    eprintln!("barge-in: stop {stop:?} after the 200 ms minimum");
    assert!(stop < Duration::from_millis(150), "stop took {stop:?}");
    assert_eq!(int["heardMs"], 140, "{int}");
    assert_eq!(
        int["sentMs"], 340,
        "the frames sent while deciding count: {int}"
    );
    // What the provider had in flight never reaches the guest.
    deltas(&mut conn, "r1", "a1", 5);
    let mut audio = Vec::new();
    let cancel = conn.expect("response.cancel", &mut audio).await.unwrap();
    let trunc = conn
        .expect("conversation.item.truncate", &mut audio)
        .await
        .unwrap();
    assert!(trunc.at >= cancel.at);
    assert_eq!(trunc.msg["item_id"], "a1");
    assert_eq!(trunc.msg["audio_end_ms"], 140, "what the guest heard");
    conn.send(json!({"type": "response.done", "response": {"id": "r1", "status": "cancelled"}}));
    g.drain(Duration::from_millis(300)).await;
    assert_eq!(frames_after(&g, "interrupted"), 0, "{:?}", g.kinds());
    let k = g.kinds();
    let i = k.iter().position(|x| x == "interrupted").unwrap();
    assert_eq!(
        k[i + 1..].iter().position(|x| x == "speech_started"),
        Some(1),
        "speech_started right after interrupted (and its assistant_done): {k:?}"
    );
}

/// An OpenAI reply r1 of `frames` frames sent at once (faster than real time, as real
/// providers do) and completed, with the guest having played `played_ms` of it.
async fn openai_reply_finished_but_playing(
    g: &mut Guest,
    conn: &mut FakeConn,
    frames: usize,
    played_ms: u64,
) {
    openai_reply_playing(g, conn, frames).await;
    conn.send(
        json!({"type": "response.output_audio_transcript.done", "response_id": "r1",
        "item_id": "a1", "transcript": "Your order is two margheritas and one tiramisu"}),
    );
    conn.send(json!({"type": "response.done", "response": {"id": "r1", "status": "completed"}}));
    g.until("audio_end").await;
    g.send(json!({"type": "playout", "playedMs": played_ms}))
        .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let _ = received(conn, Duration::from_millis(100)).await;
}

#[tokio::test]
async fn openai_speech_over_a_finished_reply_still_playing_interrupts_it() {
    let mut fake = FakeServer::openai(Duration::from_secs(3600)).await.unwrap();
    let s = server(&fake, "openai").await;
    let (mut g, mut conn) = Guest::open(&s, &mut fake).await;
    // 3 s of reply, all of it at the kiosk, 600 ms of it played.
    openai_reply_finished_but_playing(&mut g, &mut conn, 150, 600).await;

    let spoke = Instant::now();
    conn.send(
        json!({"type": "input_audio_buffer.speech_started", "audio_start_ms": 5, "item_id": "u2"}),
    );
    let int = g.until("interrupted").await;
    let at = seen_at(&g, "interrupted").unwrap();
    assert!(
        at >= spoke + Duration::from_millis(200),
        "a tail is interrupted only after the minimum speech too"
    );
    assert_eq!(int["heardMs"], 600, "{int}");
    assert_eq!(int["sentMs"], 3000, "{int}");
    let next = g.until_any(&["speech_started"]).await;
    assert_eq!(next["type"], "speech_started");
    // The finished reply is cut to what was heard; there is nothing to cancel.
    let to_provider = received(&mut conn, Duration::from_millis(300)).await;
    let trunc = to_provider
        .iter()
        .find(|r| r.kind() == "conversation.item.truncate")
        .unwrap_or_else(|| panic!("no truncate in {:?}", kinds_of(&to_provider)));
    assert_eq!(trunc.msg["item_id"], "a1");
    assert_eq!(trunc.msg["audio_end_ms"], 600);
    assert!(
        !to_provider.iter().any(|r| r.kind() == "response.cancel"),
        "{:?}",
        kinds_of(&to_provider)
    );
    // The stored turn keeps what was heard, as for a reply cut while it was generated.
    let turns = turns_when(&s, &g.id, |t| {
        t.iter().any(|t| t["voice"]["interrupted"] == true)
    })
    .await;
    let cut = turns
        .iter()
        .find(|t| t["voice"]["interrupted"] == true)
        .unwrap();
    assert_eq!(cut["voice"]["heardMs"], 600, "{cut}");
}

#[tokio::test]
async fn openai_speech_after_a_reply_has_played_out_does_not_interrupt() {
    let mut fake = FakeServer::openai(Duration::from_secs(3600)).await.unwrap();
    let s = server(&fake, "openai").await;
    let (mut g, mut conn) = Guest::open(&s, &mut fake).await;
    // The kiosk reports the whole 400 ms reply played.
    openai_reply_finished_but_playing(&mut g, &mut conn, 20, 400).await;

    conn.send(
        json!({"type": "input_audio_buffer.speech_started", "audio_start_ms": 5, "item_id": "u2"}),
    );
    let started = g.until("speech_started").await;
    assert_eq!(started["type"], "speech_started");
    g.drain(Duration::from_millis(300)).await;
    assert!(
        !g.kinds().iter().any(|k| k == "interrupted"),
        "{:?}",
        g.kinds()
    );
    let to_provider = received(&mut conn, Duration::from_millis(200)).await;
    assert!(
        !to_provider
            .iter()
            .any(|r| r.kind() == "conversation.item.truncate"),
        "{:?}",
        kinds_of(&to_provider)
    );
}

fn kinds_of(r: &[Received]) -> Vec<&str> {
    r.iter().map(Received::kind).collect()
}

#[tokio::test]
async fn openai_speech_over_the_read_back_does_not_interrupt_and_is_answered_after() {
    let mut fake = FakeServer::openai(Duration::from_secs(3600)).await.unwrap();
    let s = server(&fake, "openai").await;
    let (mut g, mut conn) = Guest::open(&s, &mut fake).await;
    let mut audio = Vec::new();
    conn.expect("session.update", &mut audio).await.unwrap();
    openai_guest_turn(&mut conn, "u1", "A margherita, that's all");
    for (r, call, name, args) in [
        ("r1", "c1", "add_to_cart", "{\"item\":\"margherita\"}"),
        ("r2", "c2", "quote_order", "{}"),
    ] {
        conn.send(json!({"type": "response.created", "response": {"id": r}}));
        conn.send(
            json!({"type": "response.function_call_arguments.done", "response_id": r,
            "call_id": call, "name": name, "arguments": args}),
        );
        conn.send(json!({"type": "response.done", "response": {"id": r, "status": "completed"}}));
        let tr = g.until("tool_result").await;
        assert_eq!(tr["ok"], true, "{tr}");
        conn.expect("response.create", &mut audio).await.unwrap();
    }
    // The read-back.
    conn.send(json!({"type": "response.created", "response": {"id": "r3"}}));
    let read_back = "One margherita pizza, total eleven fifty. Shall I place it?";
    conn.send(
        json!({"type": "response.output_audio_transcript.delta", "response_id": "r3",
        "item_id": "a3", "delta": read_back}),
    );
    deltas(&mut conn, "r3", "a3", 10);
    while g.frames().len() < 10 {
        g.next().await.expect("read-back audio");
    }
    // The guest talks over it for half a second: it plays on.
    conn.send(
        json!({"type": "input_audio_buffer.speech_started", "audio_start_ms": 2000, "item_id": "u2"}),
    );
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        deltas(&mut conn, "r3", "a3", 5);
    }
    conn.send(
        json!({"type": "input_audio_buffer.speech_stopped", "audio_end_ms": 2500, "item_id": "u2"}),
    );
    conn.send(
        json!({"type": "input_audio_buffer.committed", "previous_item_id": "a3", "item_id": "u2"}),
    );
    openai_heard(&mut conn, "u2", "And a lemonade");
    while g.frames().len() < 35 {
        g.next().await.expect("the read-back plays on");
    }
    conn.send(
        json!({"type": "response.output_audio_transcript.done", "response_id": "r3",
        "item_id": "a3", "transcript": read_back}),
    );
    let done_at = tokio::time::Instant::now();
    conn.send(json!({"type": "response.done", "response": {"id": "r3", "status": "completed"}}));
    let end = g.until("audio_end").await;
    assert_eq!(end["sentMs"], 700, "all of the read-back: {end}");
    let k = g.kinds();
    assert!(!k.iter().any(|x| x == "interrupted"), "{k:?}");
    assert!(k.iter().any(|x| x == "speech_started"), "{k:?}");
    // The provider could not answer while the read-back was generated: the relay asks
    // once it is done, and the answer is the next turn.
    let ask = conn.expect("response.create", &mut audio).await.unwrap();
    assert!(ask.at >= done_at, "asked before the read-back was over");
    let to_provider = received(&mut conn, Duration::from_millis(200)).await;
    assert!(
        !to_provider
            .iter()
            .any(|r| r.kind() == "response.cancel" || r.kind() == "conversation.item.truncate"),
        "the read-back was cut at the provider"
    );
    conn.send(json!({"type": "response.created", "response": {"id": "r4"}}));
    deltas(&mut conn, "r4", "a4", 2);
    conn.send(
        json!({"type": "response.output_audio_transcript.done", "response_id": "r4",
        "item_id": "a4", "transcript": "A lemonade, added."}),
    );
    conn.send(json!({"type": "response.done", "response": {"id": "r4", "status": "completed"}}));
    g.send(json!({"type": "playout", "playedMs": 40})).await;
    let turns = turns_when(&s, &g.id, |t| {
        t.iter().any(|t| t["userText"] == "And a lemonade")
    })
    .await;
    let reading = turns
        .iter()
        .find(|t| {
            t["assistantText"]
                .as_str()
                .unwrap_or("")
                .contains("Shall I place it")
        })
        .unwrap_or_else(|| panic!("the read-back turn in {turns:?}"));
    assert_eq!(reading["voice"]["interrupted"], false, "{reading}");
    assert_eq!(reading["userText"], "A margherita, that's all", "{reading}");
    let next = turns
        .iter()
        .find(|t| t["userText"] == "And a lemonade")
        .unwrap();
    let next = turns_when(&s, &g.id, |t| {
        t.iter().any(|t| {
            t["userText"] == "And a lemonade" && t["assistantText"] == "A lemonade, added."
        })
    })
    .await
    .into_iter()
    .find(|t| t["userText"] == "And a lemonade")
    .unwrap_or_else(|| next.clone());
    assert_eq!(next["assistantText"], "A lemonade, added.", "{next}");
}

/// A Gemini reply of `frames` 20 ms frames under way, all of it at the guest.
async fn gemini_reply_playing(g: &mut Guest, conn: &mut FakeConn, frames: usize) {
    conn.send(json!({"serverContent": {"inputTranscription": {"text": "what did I order", "finished": true}}}));
    for _ in 0..frames {
        conn.send_audio("", "", &[900; 480]);
    }
    conn.send(json!({"serverContent": {"outputTranscription": {"text": "You have two margheritas and a tiramisu"}}}));
    let before = g.frames().len();
    while g.frames().len() < before + frames {
        g.next().await.expect("reply audio");
    }
}

#[tokio::test]
async fn gemini_a_cough_does_not_interrupt_the_reply_and_speech_does() {
    let mut fake = FakeServer::gemini().await.unwrap();
    let s = server(&fake, "gemini").await;
    let (mut g, mut conn) = Guest::open(&s, &mut fake).await;
    let mut audio = Vec::new();
    let setup = conn.expect("setup", &mut audio).await.unwrap();
    assert_eq!(
        setup.msg["setup"]["realtimeInputConfig"]["activityHandling"], "NO_INTERRUPTION",
        "the relay decides barge-in, not Gemini: {}",
        setup.msg
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    gemini_reply_playing(&mut g, &mut conn, 40).await;
    g.send(json!({"type": "playout", "playedMs": 100})).await;
    let voice = speech("margherita pizza with extra cheese please");

    // 120 ms of speech, then quiet: shorter than the minimum.
    g.speak(&voice[..1_920]).await;
    g.speak(&[0; 8_000]).await;
    g.drain(Duration::from_millis(100)).await;
    for not in ["interrupted", "speech_started"] {
        assert!(
            !g.kinds().iter().any(|x| x == not),
            "{not}: {:?}",
            g.kinds()
        );
    }
    // The reply goes on.
    for _ in 0..5 {
        conn.send_audio("", "", &[900; 480]);
    }
    while g.frames().len() < 45 {
        g.next().await.expect("the reply plays on after a cough");
    }

    // A second of speech interrupts, once 200 ms of it have been heard.
    let spoke = Instant::now();
    g.speak(&voice[..16_000]).await;
    let int = g.seen_or_next("interrupted").await;
    let at = seen_at(&g, "interrupted").unwrap();
    let after = at - spoke;
    eprintln!("gemini barge-in {after:?} after the speech began");
    assert!(after >= Duration::from_millis(200), "{after:?}");
    assert!(after < Duration::from_millis(600), "{after:?}");
    assert_eq!(int["sentMs"], 900, "{int}");
    // Gemini reports no speech: the relay's detector tells the client, as OpenAI's VAD
    // does, right after the interruption.
    g.seen_or_next("speech_started").await;
    let k = g.kinds();
    let i = k.iter().position(|x| x == "interrupted").unwrap();
    assert!(
        k[i..].iter().any(|x| x == "speech_started"),
        "speech_started after interrupted: {k:?}"
    );
    // Gemini goes on generating the reply (its own interruption is off): dropped.
    for _ in 0..5 {
        conn.send_audio("", "", &[900; 480]);
    }
    conn.send(json!({"serverContent": {"outputTranscription": {"text": " and a lemonade."}}}));
    conn.send(json!({"serverContent": {"turnComplete": true}}));
    // Its answer to the guest plays.
    for _ in 0..3 {
        conn.send_audio("", "", &[700; 480]);
    }
    conn.send(json!({"serverContent": {"turnComplete": true}}));
    g.until("audio_end").await;
    let after_cut: Vec<&Value> = g
        .seen
        .iter()
        .skip_while(|(_, got)| !matches!(got, Got::Event(v) if v["type"] == "interrupted"))
        .filter_map(|(_, got)| match got {
            Got::Event(v) if v["type"] == "audio_start" => Some(v),
            _ => None,
        })
        .collect();
    assert_eq!(
        after_cut.len(),
        1,
        "only the answer starts: {:?}",
        g.kinds()
    );
    assert_eq!(frames_after(&g, "interrupted"), 3, "{:?}", g.kinds());
    // Quiet after the speech: the guest stopped speaking.
    g.speak(&[0; 16_000]).await;
    g.seen_or_next("speech_stopped").await;
}

#[tokio::test]
async fn gemini_speech_over_the_read_back_does_not_interrupt() {
    let mut fake = FakeServer::gemini().await.unwrap();
    let s = server(&fake, "gemini").await;
    let (mut g, mut conn) = Guest::open(&s, &mut fake).await;
    let mut audio = Vec::new();
    conn.expect("setup", &mut audio).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    conn.send(json!({"serverContent": {"inputTranscription": {"text": "a margherita, that's all", "finished": true}}}));
    for (id, name) in [("g1", "add_to_cart"), ("g2", "quote_order")] {
        let args = if name == "add_to_cart" {
            json!({"item": "margherita"})
        } else {
            json!({})
        };
        conn.send(json!({"toolCall": {"functionCalls": [{"id": id, "name": name, "args": args}]}}));
        let tr = g.until("tool_result").await;
        assert_eq!(tr["ok"], true, "{tr}");
        if name == "add_to_cart" {
            // Gemini answers a call within its turn: this reply goes on after the quote.
            for _ in 0..5 {
                conn.send_audio("", "", &[900; 480]);
            }
            while g.frames().len() < 5 {
                g.next().await.expect("the first words");
            }
        }
    }
    // The read-back, 800 ms of it; the guest talks over it for a second.
    for _ in 0..40 {
        conn.send_audio("", "", &[900; 480]);
    }
    conn.send(json!({"serverContent": {"outputTranscription": {"text": "Added. One margherita, eleven fifty. Shall I place it?"}}}));
    while g.frames().len() < 45 {
        g.next().await.expect("read-back audio");
    }
    g.speak(&speech("and a lemonade please")[..16_000]).await;
    for _ in 0..5 {
        conn.send_audio("", "", &[900; 480]);
    }
    conn.send(json!({"serverContent": {"turnComplete": true}}));
    let end = g.until("audio_end").await;
    assert_eq!(end["sentMs"], 1000, "all of the read-back: {end}");
    assert_eq!(
        g.events("audio_start").len(),
        1,
        "one reply: {:?}",
        g.kinds()
    );
    assert!(
        !g.kinds().iter().any(|x| x == "interrupted"),
        "{:?}",
        g.kinds()
    );
}

/// Holds SQLite's write lock from a connection of its own (as a burst of other writers
/// would) until the returned connection rolls back: every store write the server starts
/// meanwhile waits.
async fn hold_store_write_lock(s: &common::TestServer) -> sqlx::SqliteConnection {
    use sqlx::Connection;
    let path = s.running.app.store.sqlite_path().expect("a database file");
    let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut c)
        .await
        .unwrap();
    c
}

#[tokio::test]
async fn a_barge_in_reaches_the_guest_while_the_store_is_busy() {
    // The store write that numbers the turn used to run on the socket's event pump when
    // the interrupted reply was closed, holding back the `speech_started` behind it.
    let mut fake = FakeServer::openai(Duration::from_secs(3600)).await.unwrap();
    let s = server(&fake, "openai").await;
    let (mut g, mut conn) = Guest::open(&s, &mut fake).await;
    let mut audio = Vec::new();
    conn.expect("session.update", &mut audio).await.unwrap();
    openai_heard(&mut conn, "u1", "What did I order");
    let mut lock = hold_store_write_lock(&s).await;
    let locked_at = Instant::now();
    conn.send(json!({"type": "response.created", "response": {"id": "r1"}}));
    conn.send(
        json!({"type": "response.output_audio_transcript.delta", "response_id": "r1",
        "item_id": "a1", "delta": "Two margheritas and a lemonade"}),
    );
    deltas(&mut conn, "r1", "a1", 15);
    while g.frames().len() < 15 {
        g.next().await.expect("reply audio while the store is busy");
    }
    g.send(json!({"type": "playout", "playedMs": 100})).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    conn.send(
        json!({"type": "input_audio_buffer.speech_started", "audio_start_ms": 5, "item_id": "u2"}),
    );
    g.until("interrupted").await;
    let started = g.until("speech_started").await;
    assert!(started["atMs"].is_u64());
    let waited = locked_at.elapsed();
    assert!(
        waited < Duration::from_millis(1500),
        "the socket waited {waited:?} for the store"
    );
    let done = g.events("assistant_done");
    assert_eq!(done.len(), 1, "{:?}", g.kinds());
    assert!(
        done[0]["turn"].is_null() || done[0]["turn"].is_u64(),
        "{}",
        done[0]
    );
    // Hold the lock a while longer, then let the writes through: the turn is stored.
    tokio::time::sleep(Duration::from_millis(2000).saturating_sub(locked_at.elapsed())).await;
    sqlx::query("ROLLBACK").execute(&mut lock).await.unwrap();
    let turns = turns_when(&s, &g.id, |t| !t.is_empty()).await;
    assert_eq!(turns[0]["userText"], "What did I order");
    assert_eq!(turns[0]["voice"]["interrupted"], true, "{}", turns[0]);
}
