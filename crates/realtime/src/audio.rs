//! PCM16 plumbing: little-endian bytes and base64 to samples and back, and a streaming
//! rate converter (rubato's synchronous FFT resampler, fixed 10 ms input chunks) between
//! the client's rate and a provider's.

use crate::RelayError;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler};

/// Samples from little-endian PCM16 bytes; `None` when the length is odd.
pub fn pcm16_from_le_bytes(bytes: &[u8]) -> Option<Vec<i16>> {
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    Some(
        bytes
            .chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]))
            .collect(),
    )
}

/// Little-endian PCM16 bytes of `samples`.
pub fn pcm16_to_le_bytes(samples: &[i16]) -> Vec<u8> {
    let mut out = Vec::with_capacity(samples.len() * 2);
    for s in samples {
        out.extend_from_slice(&s.to_le_bytes());
    }
    out
}

/// Base64 of little-endian PCM16, as both providers carry audio in JSON.
pub fn pcm16_to_base64(samples: &[i16]) -> String {
    STANDARD.encode(pcm16_to_le_bytes(samples))
}

/// `prefix`, the base64 of `samples` as PCM16, then `suffix`, in one allocation: how
/// audio messages are written (50 a second per session; base64 needs no JSON escaping).
pub fn wrap_base64(prefix: &str, samples: &[i16], suffix: &str) -> String {
    let mut out =
        String::with_capacity(prefix.len() + (samples.len() * 2).div_ceil(3) * 4 + suffix.len());
    out.push_str(prefix);
    STANDARD.encode_string(pcm16_to_le_bytes(samples), &mut out);
    out.push_str(suffix);
    out
}

/// Samples from base64 PCM16; `None` when it is not base64 or has an odd byte count.
pub fn pcm16_from_base64(b64: &str) -> Option<Vec<i16>> {
    let bytes = STANDARD.decode(b64).ok()?;
    pcm16_from_le_bytes(&bytes)
}

/// Milliseconds of audio in `samples` at `rate`.
pub fn duration_ms(samples: usize, rate: u32) -> u64 {
    (samples as u64 * 1000) / u64::from(rate.max(1))
}

/// Converts a stream of PCM16 mono from one rate to another, chunk by chunk. Input is
/// gathered into 10 ms chunks (the resampler's fixed input size), so at most 10 ms waits
/// here; equal rates pass straight through.
pub struct RateConverter {
    inner: Option<Box<Fft<f32>>>,
    chunk: usize,
    pending: Vec<f32>,
    out: Vec<f32>,
}

impl std::fmt::Debug for RateConverter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateConverter")
            .field("chunk", &self.chunk)
            .field("passthrough", &self.inner.is_none())
            .finish()
    }
}

impl RateConverter {
    pub fn new(from: u32, to: u32) -> Result<Self, RelayError> {
        if from == to {
            return Ok(RateConverter {
                inner: None,
                chunk: 0,
                pending: Vec::new(),
                out: Vec::new(),
            });
        }
        let chunk = (from / 100) as usize;
        let fft = Fft::<f32>::new(from as usize, to as usize, chunk, 1, FixedSync::Input)
            .map_err(|e| RelayError::Resample(format!("{from} Hz to {to} Hz: {e}")))?;
        let out = vec![0.0; fft.output_frames_max()];
        Ok(RateConverter {
            inner: Some(Box::new(fft)),
            chunk,
            pending: Vec::with_capacity(chunk * 2),
            out,
        })
    }

    /// Appends to `out` the converted samples of every whole chunk `input` completes.
    pub fn push(&mut self, input: &[i16], out: &mut Vec<i16>) -> Result<(), RelayError> {
        let Some(fft) = self.inner.as_mut() else {
            out.extend_from_slice(input);
            return Ok(());
        };
        self.pending
            .extend(input.iter().map(|&s| f32::from(s) / 32768.0));
        let mut start = 0;
        while self.pending.len() - start >= self.chunk {
            let slice = &self.pending[start..start + self.chunk];
            let inbuf = InterleavedSlice::new(slice, 1, self.chunk)
                .map_err(|e| RelayError::Resample(e.to_string()))?;
            let frames = self.out.len();
            let mut outbuf = InterleavedSlice::new_mut(&mut self.out, 1, frames)
                .map_err(|e| RelayError::Resample(e.to_string()))?;
            let (_, produced) = fft
                .process_into_buffer(&inbuf, &mut outbuf, None)
                .map_err(|e| RelayError::Resample(e.to_string()))?;
            out.extend(self.out[..produced].iter().map(|&s| {
                // Rounded and clamped: the filter can overshoot full scale slightly.
                (s * 32768.0).round().clamp(-32768.0, 32767.0) as i16
            }));
            start += self.chunk;
        }
        self.pending.drain(..start);
        Ok(())
    }

    /// Forgets buffered input and filter state (after a barge-in the rest of a reply is
    /// dropped, so its tail must not leak into the next one).
    pub fn reset(&mut self) {
        self.pending.clear();
        if let Some(fft) = self.inner.as_mut() {
            fft.reset();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(rate: u32, hz: f32, ms: u32) -> Vec<i16> {
        let n = (rate * ms / 1000) as usize;
        (0..n)
            .map(|i| {
                let t = i as f32 / rate as f32;
                (10_000.0 * (2.0 * std::f32::consts::PI * hz * t).sin()) as i16
            })
            .collect()
    }

    #[test]
    fn converts_16k_to_24k_in_20ms_frames_with_the_right_length_and_level() {
        let mut c = RateConverter::new(16_000, 24_000).unwrap();
        let input = sine(16_000, 440.0, 1000);
        let mut out = Vec::new();
        for frame in input.chunks(320) {
            let before = out.len();
            c.push(frame, &mut out).unwrap();
            // Every 20 ms frame yields its 20 ms of 24 kHz output at once: no waiting.
            assert_eq!(out.len() - before, 480);
        }
        assert_eq!(out.len(), 24_000);
        // After the filter's start-up delay the level matches the input's.
        let peak = out[4_000..].iter().map(|s| s.unsigned_abs()).max().unwrap();
        assert!((9_000..=11_000).contains(&peak), "peak {peak}");
    }

    #[test]
    fn odd_sized_input_is_buffered_until_a_chunk_is_whole() {
        let mut c = RateConverter::new(24_000, 16_000).unwrap();
        let mut out = Vec::new();
        c.push(&[0; 100], &mut out).unwrap();
        assert!(out.is_empty());
        c.push(&[0; 140], &mut out).unwrap();
        assert_eq!(out.len(), 160);
        c.reset();
        c.push(&[0; 200], &mut out).unwrap();
        assert_eq!(out.len(), 160);
    }

    #[test]
    fn equal_rates_pass_through_and_bytes_round_trip() {
        let mut c = RateConverter::new(24_000, 24_000).unwrap();
        let mut out = Vec::new();
        c.push(&[1, -2, 3], &mut out).unwrap();
        assert_eq!(out, vec![1, -2, 3]);
        let b64 = pcm16_to_base64(&[i16::MIN, 0, i16::MAX]);
        assert_eq!(pcm16_from_base64(&b64), Some(vec![i16::MIN, 0, i16::MAX]));
        assert_eq!(pcm16_from_le_bytes(&[1, 2, 3]), None);
        assert_eq!(pcm16_from_base64("not base64!"), None);
        assert_eq!(duration_ms(480, 24_000), 20);
    }
}
