//! Voice activity detection: `earshot`'s per-frame speech probability turned into speech
//! start and stop events with hysteresis (a higher bar to start than to keep going), a
//! minimum speech duration (a cough or a door does not interrupt the agent) and a
//! hangover (a pause between words does not end the utterance). The [`Segmenter`] also
//! keeps the audio of each utterance, with a little pre-roll before the detected start.

use crate::frame::PIPELINE_RATE;
use earshot::Detector;

/// Samples per detector frame (16 ms at 16 kHz), fixed by `earshot`.
pub const VAD_FRAME: usize = 256;
const VAD_FRAME_MS: u32 = 16;

/// Tuning of the detector.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VadConfig {
    /// Probability at or above which a frame counts toward starting speech.
    pub start_threshold: f32,
    /// Probability below which a frame counts as quiet (between the two: no change).
    pub stop_threshold: f32,
    /// Speech must last this long before `SpeechStarted` (so coughs don't interrupt).
    pub min_speech_ms: u32,
    /// Quiet must last this long before `SpeechStopped`.
    pub hangover_ms: u32,
    /// Audio kept from before the detected start, so the first syllable is not lost.
    pub preroll_ms: u32,
    /// An utterance longer than this is cut (and reported stopped) to bound memory.
    pub max_utterance_ms: u32,
}

impl Default for VadConfig {
    fn default() -> Self {
        VadConfig {
            start_threshold: 0.5,
            stop_threshold: 0.3,
            min_speech_ms: 208,
            hangover_ms: 560,
            preroll_ms: 320,
            max_utterance_ms: 15_000,
        }
    }
}

/// A change of the speaking state, with the stream time (ms since the first sample).
#[derive(Debug, Clone, PartialEq)]
pub enum VadEvent {
    /// Speech has lasted `min_speech_ms`; `at_ms` is when it began.
    SpeechStarted { at_ms: u64 },
    /// Speech ended at `at_ms` (the start of the trailing quiet); `audio` holds the
    /// utterance at 16 kHz, pre-roll included.
    SpeechStopped { at_ms: u64, audio: Vec<i16> },
}

/// Turns a 16 kHz stream into speech events and utterances.
pub struct Segmenter {
    det: Box<Detector>,
    cfg: VadConfig,
    /// Samples waiting for a whole detector frame.
    partial: Vec<i16>,
    /// Recent audio while quiet (pre-roll), or the utterance while speaking.
    audio: Vec<i16>,
    /// Consecutive ms of speech-like frames while quiet (a candidate start).
    run_ms: u32,
    /// Consecutive ms of quiet frames while speaking.
    quiet_ms: u32,
    speaking: bool,
    clock_ms: u64,
    utterance_ms: u32,
}

impl Segmenter {
    pub fn new(cfg: VadConfig) -> Segmenter {
        Segmenter {
            det: Detector::default_boxed(),
            cfg,
            partial: Vec::with_capacity(VAD_FRAME),
            audio: Vec::new(),
            run_ms: 0,
            quiet_ms: 0,
            speaking: false,
            clock_ms: 0,
            utterance_ms: 0,
        }
    }

    /// Whether speech is in progress (started and not stopped).
    pub fn speaking(&self) -> bool {
        self.speaking
    }

    /// The utterance so far (pre-roll included) while speech is in progress: it only
    /// grows until `SpeechStopped` hands it over, so a caller streaming it to a
    /// recognizer can send what is past its last length.
    pub fn utterance(&self) -> Option<&[i16]> {
        self.speaking.then_some(self.audio.as_slice())
    }

    /// Milliseconds of audio seen so far.
    pub fn clock_ms(&self) -> u64 {
        self.clock_ms
    }

    /// Feeds 16 kHz samples; returns the events they caused, in order.
    pub fn push(&mut self, samples: &[i16]) -> Vec<VadEvent> {
        let mut events = Vec::new();
        let mut rest = samples;
        while !rest.is_empty() {
            let take = (VAD_FRAME - self.partial.len()).min(rest.len());
            self.partial.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.partial.len() == VAD_FRAME {
                let frame = std::mem::take(&mut self.partial);
                if let Some(e) = self.frame(&frame) {
                    events.push(e);
                }
                self.partial = frame;
                self.partial.clear();
            }
        }
        events
    }

    /// Ends the stream: an utterance in progress is reported stopped.
    pub fn finish(&mut self) -> Option<VadEvent> {
        if !self.speaking {
            return None;
        }
        let partial = std::mem::take(&mut self.partial);
        self.audio.extend_from_slice(&partial);
        Some(self.stop())
    }

    /// Forgets all state (a new conversation turn after `stop`).
    pub fn reset(&mut self) {
        self.det.reset();
        self.partial.clear();
        self.audio.clear();
        self.run_ms = 0;
        self.quiet_ms = 0;
        self.speaking = false;
        self.utterance_ms = 0;
    }

    fn frame(&mut self, frame: &[i16]) -> Option<VadEvent> {
        let p = self.det.predict_i16(frame);
        self.clock_ms += u64::from(VAD_FRAME_MS);
        self.audio.extend_from_slice(frame);
        if self.speaking {
            self.utterance_ms += VAD_FRAME_MS;
            if p < self.cfg.stop_threshold {
                self.quiet_ms += VAD_FRAME_MS;
            } else {
                self.quiet_ms = 0;
            }
            if self.quiet_ms >= self.cfg.hangover_ms
                || self.utterance_ms >= self.cfg.max_utterance_ms
            {
                return Some(self.stop());
            }
            return None;
        }
        if p >= self.cfg.start_threshold {
            self.run_ms += VAD_FRAME_MS;
        } else if p < self.cfg.stop_threshold {
            self.run_ms = 0;
        }
        // At least one speech frame, whatever the minimum: with `min_speech_ms` 0 (a relay
        // told to interrupt at once) silence must still not count as speech.
        if self.run_ms > 0 && self.run_ms >= self.cfg.min_speech_ms {
            self.speaking = true;
            self.quiet_ms = 0;
            let keep = samples_for(self.run_ms + self.cfg.preroll_ms);
            let cut = self.audio.len().saturating_sub(keep);
            self.audio.drain(..cut);
            self.utterance_ms = self.run_ms;
            let at_ms = self.clock_ms - u64::from(self.run_ms);
            self.run_ms = 0;
            return Some(VadEvent::SpeechStarted { at_ms });
        }
        // Quiet: keep only the pre-roll plus the candidate run.
        let keep = samples_for(self.run_ms + self.cfg.preroll_ms);
        if self.audio.len() > keep * 2 {
            let cut = self.audio.len() - keep;
            self.audio.drain(..cut);
        }
        None
    }

    fn stop(&mut self) -> VadEvent {
        self.speaking = false;
        let at_ms = self.clock_ms - u64::from(self.quiet_ms);
        self.quiet_ms = 0;
        self.run_ms = 0;
        self.utterance_ms = 0;
        VadEvent::SpeechStopped {
            at_ms,
            audio: std::mem::take(&mut self.audio),
        }
    }
}

fn samples_for(ms: u32) -> usize {
    (PIPELINE_RATE / 1000 * ms) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    fn speech(text: &str) -> Vec<i16> {
        let out = std::process::Command::new("espeak-ng")
            .args(["--stdout", "-v", "en-us", text])
            .output()
            .expect("espeak-ng is installed (scripts/install-test-deps.sh)");
        let w = crate::wav::read(&out.stdout).unwrap();
        crate::resample::resample_all(&w.samples, w.rate, 16_000).unwrap()
    }

    fn run(seg: &mut Segmenter, audio: &[i16]) -> Vec<VadEvent> {
        let mut ev = Vec::new();
        for f in audio.chunks(320) {
            ev.extend(seg.push(f));
        }
        ev
    }

    #[test]
    fn silence_is_not_speech_even_with_no_minimum() {
        let mut s = Segmenter::new(VadConfig {
            min_speech_ms: 0,
            ..Default::default()
        });
        assert!(run(&mut s, &vec![0; 16_000]).is_empty());
    }

    #[test]
    fn silence_is_not_speech() {
        let mut s = Segmenter::new(VadConfig::default());
        assert!(run(&mut s, &vec![0; 16_000 * 2]).is_empty());
        assert!(!s.speaking());
        assert_eq!(s.clock_ms(), 2000);
    }

    #[test]
    fn a_sentence_starts_and_stops_once_with_its_audio() {
        let mut s = Segmenter::new(VadConfig::default());
        let mut audio = vec![0i16; 8_000];
        let words = speech("I would like a margherita pizza please");
        audio.extend(&words);
        audio.extend(vec![0i16; 16_000]);
        let ev = run(&mut s, &audio);
        assert_eq!(
            ev.len(),
            2,
            "{:?}",
            ev.iter().map(std::mem::discriminant).collect::<Vec<_>>()
        );
        let VadEvent::SpeechStarted { at_ms } = ev[0] else {
            panic!("{:?}", ev[0])
        };
        assert!((400..800).contains(&at_ms), "started at {at_ms}");
        let VadEvent::SpeechStopped {
            at_ms: end,
            audio: ref utt,
        } = ev[1]
        else {
            panic!()
        };
        let spoken_ms = words.len() as u64 / 16;
        assert!(
            end > 500 + spoken_ms / 2 && end < 700 + spoken_ms,
            "stopped at {end}, spoke {spoken_ms}"
        );
        // The utterance holds (nearly) all the words: pre-roll before, hangover after.
        assert!(
            utt.len() >= words.len() * 8 / 10,
            "{} of {}",
            utt.len(),
            words.len()
        );
    }

    #[test]
    fn a_short_burst_does_not_start_speech() {
        let mut s = Segmenter::new(VadConfig::default());
        let word = speech("hm");
        let burst: Vec<i16> = word.iter().copied().take(16 * 100).collect(); // 100 ms
        let mut audio = vec![0i16; 8_000];
        audio.extend(&burst);
        audio.extend(vec![0i16; 16_000]);
        assert!(run(&mut s, &audio).is_empty());
    }

    #[test]
    fn long_speech_is_cut_at_the_maximum() {
        let cfg = VadConfig {
            max_utterance_ms: 1_000,
            ..VadConfig::default()
        };
        let mut s = Segmenter::new(cfg);
        let words = speech("one two three four five six seven eight nine ten eleven twelve");
        let ev = run(&mut s, &words);
        assert!(ev.iter().any(
            |e| matches!(e, VadEvent::SpeechStopped { audio, .. } if audio.len() <= 16 * 1_700)
        ));
    }

    #[test]
    fn finish_reports_an_open_utterance() {
        let mut s = Segmenter::new(VadConfig::default());
        let words = speech("hello there, good evening");
        run(&mut s, &words[..words.len() / 2]);
        assert!(s.speaking());
        assert!(matches!(s.finish(), Some(VadEvent::SpeechStopped { .. })));
        assert!(s.finish().is_none());
    }
}
