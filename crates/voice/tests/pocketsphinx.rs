//! The pocketsphinx pool against the real recognizer: whole utterances, streams with
//! partial hypotheses, more guests than decoders, abandoned streams, a missing Python.
//!
//! Needs espeak-ng and the pocketsphinx wheel (scripts/install-test-deps.sh).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;
use stonepot_voice::stt::{RecognitionStream, Vocabulary, vocabulary};
use stonepot_voice::{Pocketsphinx, Recognizer, VoiceError};

fn speech(text: &str) -> Vec<i16> {
    let out = std::process::Command::new("espeak-ng")
        .args(["--stdout", "-v", "en-us", text])
        .output()
        .expect("espeak-ng is installed (scripts/install-test-deps.sh)");
    let w = stonepot_voice::wav::read(&out.stdout).unwrap();
    let mut pcm = vec![0i16; 4_000];
    pcm.extend(stonepot_voice::resample::resample_all(&w.samples, w.rate, 16_000).unwrap());
    pcm.extend(vec![0i16; 4_000]);
    pcm
}

fn menu() -> Vec<String> {
    vocabulary([
        "Margherita Pizza",
        "Pepperoni Pizza",
        "Tiramisu",
        "Caesar Salad",
    ])
}

fn words(v: &[String]) -> Vocabulary {
    let v = v.to_vec();
    Box::pin(async move { v })
}

#[tokio::test]
async fn pocketsphinx_hears_menu_words() {
    let ps = Pocketsphinx::new("python3", 2);
    ps.start()
        .await
        .expect("pocketsphinx is installed (scripts/install-test-deps.sh)");
    let vocab = menu();
    let t = ps
        .transcribe(&speech("I'd like a margherita pizza"), &vocab)
        .await
        .unwrap();
    assert!(t.text.contains("margherita"), "{t:?}");
    // No posterior without the lattice pass: unknown, never a made-up certainty.
    assert_eq!(t.confidence, None, "{t:?}");
    let t = ps.transcribe(&speech("yes"), &vocab).await.unwrap();
    assert!(t.text.contains("yes"), "{t:?}");
    // Silence: nothing (or nearly nothing) heard, and no error.
    let t = ps.transcribe(&vec![0i16; 16_000], &vocab).await.unwrap();
    assert!(t.text.split_whitespace().count() <= 1, "{t:?}");
    // One at a time: the first helper did it all.
    assert_eq!(ps.running(), 1);
}

/// Streams `pcm` in 20 ms frames at `speed`× real time.
async fn speak(s: &RecognitionStream, pcm: &[i16], speed: u32) {
    for f in pcm.chunks(320) {
        s.push(f);
        tokio::time::sleep(Duration::from_millis(u64::from(20 / speed.max(1)))).await;
    }
}

#[tokio::test]
async fn a_stream_gives_partials_then_the_final() {
    let ps = Pocketsphinx::new("python3", 2);
    ps.start().await.unwrap();
    let vocab = menu();
    let pcm = speech("I'd like a margherita pizza");
    let s = ps.stream(words(&vocab)).unwrap();
    let mut partials = s.partials();
    let seen = tokio::spawn(async move {
        let mut seen = Vec::new();
        while partials.changed().await.is_ok() {
            seen.push(partials.borrow_and_update().clone());
        }
        seen
    });
    speak(&s, &pcm, 2).await;
    let t = s.finish().await.unwrap();
    assert!(t.text.contains("margherita pizza"), "{t:?}");
    let seen = seen.await.unwrap();
    assert!(seen.len() >= 2, "{seen:?}");
    // The hypothesis grows as the words come: an early one lacks the last word.
    assert!(seen.iter().any(|p| !p.contains("pizza")), "{seen:?}");
    assert!(seen.iter().any(|p| p.contains("margherita")), "{seen:?}");
}

#[tokio::test]
async fn a_third_guest_waits_for_a_decoder_and_is_decoded_whole() {
    let ps = Pocketsphinx::new("python3", 2);
    ps.start().await.unwrap();
    let vocab = menu();
    let (a, b, c) = (
        speech("I'd like a margherita pizza"),
        speech("pepperoni pizza"),
        speech("caesar salad"),
    );
    let sa = ps.stream(words(&vocab)).unwrap();
    let sb = ps.stream(words(&vocab)).unwrap();
    let sc = ps.stream(words(&vocab)).unwrap();
    let mut pc = sc.partials();
    // All three speak at once; the third has no decoder until one finishes.
    tokio::join!(speak(&sa, &a, 1), speak(&sb, &b, 1), speak(&sc, &c, 1));
    assert_eq!(ps.running(), 2);
    let tc = sc.finish();
    let (ta, tb) = (sa.finish().await.unwrap(), sb.finish().await.unwrap());
    let tc = tc.await.unwrap();
    assert!(ta.text.contains("margherita"), "{ta:?}");
    assert!(tb.text.contains("pepperoni"), "{tb:?}");
    assert!(tc.text.contains("caesar"), "{tc:?}");
    assert!(
        pc.borrow_and_update().is_empty(),
        "decoded whole: no partials"
    );
}

#[tokio::test]
async fn an_abandoned_stream_frees_its_decoder() {
    let ps = Pocketsphinx::new("python3", 1);
    ps.start().await.unwrap();
    let vocab = menu();
    let pcm = speech("pepperoni pizza");
    let s = ps.stream(words(&vocab)).unwrap();
    speak(&s, &pcm[..pcm.len() / 2], 4).await;
    drop(s);
    let t = tokio::time::timeout(Duration::from_secs(20), ps.transcribe(&pcm, &vocab))
        .await
        .expect("the decoder came back")
        .unwrap();
    assert!(t.text.contains("pepperoni"), "{t:?}");
}

#[tokio::test]
async fn a_missing_python_is_unavailable_and_empty_vocabularies_refused() {
    let ps = Pocketsphinx::new("/nonexistent/python3", 2);
    assert!(matches!(ps.start().await, Err(VoiceError::Unavailable(_))));
    assert!(matches!(
        ps.transcribe(&[0; 320], &[]).await,
        Err(VoiceError::Format(_))
    ));
}
