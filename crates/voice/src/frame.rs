//! PCM16 framing: the sample rates a client may announce, the size of one 20 ms frame at
//! each, and the conversion between little-endian bytes on the wire and samples.

use crate::VoiceError;

/// Samples per second of every engine inside the pipeline (VAD, recognizer): audio at any
/// other announced rate is resampled to this on the way in.
pub const PIPELINE_RATE: u32 = 16_000;

/// Milliseconds of audio in one frame on the socket.
pub const FRAME_MS: u32 = 20;

/// Rates a client may announce in `start`. Telephone (8 kHz), wideband (16 kHz), the
/// realtime models' 24 kHz and the two rates browsers capture at.
pub const RATES: [u32; 5] = [8_000, 16_000, 24_000, 44_100, 48_000];

/// A validated sample rate from [`RATES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SampleRate(u32);

impl SampleRate {
    pub const PIPELINE: SampleRate = SampleRate(PIPELINE_RATE);

    /// The rate, or an error naming the ones accepted.
    pub fn new(hz: u32) -> Result<SampleRate, VoiceError> {
        if RATES.contains(&hz) {
            Ok(SampleRate(hz))
        } else {
            Err(VoiceError::Format(format!(
                "sampleRate: {hz} Hz is not supported; use one of {RATES:?}"
            )))
        }
    }

    pub fn hz(self) -> u32 {
        self.0
    }

    /// Samples in one 20 ms frame (320 at 16 kHz; 882 at 44.1 kHz).
    pub fn frame_samples(self) -> usize {
        (self.0 * FRAME_MS / 1000) as usize
    }

    /// Bytes in one 20 ms PCM16 frame (640 at 16 kHz).
    pub fn frame_bytes(self) -> usize {
        self.frame_samples() * 2
    }

    /// Milliseconds `samples` last at this rate.
    pub fn ms(self, samples: usize) -> u64 {
        samples as u64 * 1000 / u64::from(self.0)
    }
}

/// Decodes one binary frame from the client. A frame is one or more whole 20 ms frames
/// at `rate` (browsers' worklets deliver fixed-size blocks; some send 40 or 60 ms), at
/// most `max_frames` of them, so a frame of the wrong size is refused rather than
/// silently misaligning every later sample.
pub fn decode_frame(
    bytes: &[u8],
    rate: SampleRate,
    max_frames: usize,
) -> Result<Vec<i16>, VoiceError> {
    let one = rate.frame_bytes();
    if bytes.is_empty() || !bytes.len().is_multiple_of(one) {
        return Err(VoiceError::Format(format!(
            "audio frame of {} bytes: expected a multiple of {one} bytes (20 ms of PCM16 mono at {} Hz)",
            bytes.len(),
            rate.hz()
        )));
    }
    if bytes.len() / one > max_frames {
        return Err(VoiceError::Format(format!(
            "audio frame of {} bytes: at most {} ms per frame",
            bytes.len(),
            max_frames as u32 * FRAME_MS
        )));
    }
    Ok(to_samples(bytes))
}

/// Little-endian PCM16 bytes to samples (an odd trailing byte is ignored).
pub fn to_samples(bytes: &[u8]) -> Vec<i16> {
    bytes
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect()
}

/// Samples to little-endian PCM16 bytes.
pub fn to_bytes(samples: &[i16]) -> Vec<u8> {
    let mut out = Vec::with_capacity(samples.len() * 2);
    for s in samples {
        out.extend_from_slice(&s.to_le_bytes());
    }
    out
}

/// Root-mean-square level of `samples` in dBFS (−100 for silence).
pub fn dbfs(samples: &[i16]) -> f32 {
    if samples.is_empty() {
        return -100.0;
    }
    let sum: f64 = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    let rms = (sum / samples.len() as f64).sqrt() / 32768.0;
    if rms <= 1e-5 {
        -100.0
    } else {
        (20.0 * rms.log10()) as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_sizes_follow_the_rate() {
        let r = SampleRate::new(16_000).unwrap();
        assert_eq!((r.frame_samples(), r.frame_bytes()), (320, 640));
        assert_eq!(SampleRate::new(48_000).unwrap().frame_bytes(), 1920);
        assert_eq!(SampleRate::new(44_100).unwrap().frame_samples(), 882);
        assert_eq!(SampleRate::new(8_000).unwrap().frame_bytes(), 320);
        assert_eq!(r.ms(16_000), 1000);
    }

    #[test]
    fn unknown_rates_are_refused_by_name() {
        let e = SampleRate::new(11_025).unwrap_err().to_string();
        assert!(e.contains("11025") && e.contains("16000"), "{e}");
    }

    #[test]
    fn frames_must_be_whole_20ms_blocks() {
        let r = SampleRate::PIPELINE;
        assert_eq!(decode_frame(&[0; 640], r, 3).unwrap().len(), 320);
        assert_eq!(decode_frame(&[0; 1280], r, 3).unwrap().len(), 640);
        for bad in [0usize, 1, 639, 641, 1000] {
            let e = decode_frame(&vec![0; bad], r, 3).unwrap_err().to_string();
            assert!(e.contains("640"), "{bad}: {e}");
        }
        let e = decode_frame(&[0; 640 * 4], r, 3).unwrap_err().to_string();
        assert!(e.contains("60 ms"), "{e}");
    }

    #[test]
    fn bytes_round_trip_little_endian() {
        let s = [0i16, 1, -1, i16::MAX, i16::MIN, 12345];
        let b = to_bytes(&s);
        assert_eq!(&b[2..4], &[1, 0]);
        assert_eq!(to_samples(&b), s);
    }

    #[test]
    fn level_of_silence_and_full_scale() {
        assert_eq!(dbfs(&[0; 320]), -100.0);
        let loud: Vec<i16> = (0..320)
            .map(|i| if i % 2 == 0 { 32767 } else { -32767 })
            .collect();
        assert!(dbfs(&loud) > -0.1);
    }
}
