//! Streaming sample-rate conversion with `rubato`'s FFT resampler: audio arrives in
//! pieces of any length and leaves converted as soon as a whole chunk is in.

use crate::VoiceError;
use rubato::{FftFixedIn, Resampler as _};

/// Converts a mono PCM16 stream from one rate to another. Equal rates pass through
/// untouched (no delay, no cost).
pub struct Resampler {
    inner: Option<FftFixedIn<f32>>,
    chunk: usize,
    pending: Vec<f32>,
    from: u32,
    to: u32,
}

impl Resampler {
    /// A resampler working in 20 ms chunks of the input rate.
    pub fn new(from: u32, to: u32) -> Result<Resampler, VoiceError> {
        if from == 0 || to == 0 {
            return Err(VoiceError::Format("sample rates must be above 0 Hz".into()));
        }
        let chunk = (from as usize / 50).max(1);
        let inner = if from == to {
            None
        } else {
            Some(
                FftFixedIn::<f32>::new(from as usize, to as usize, chunk, 1, 1)
                    .map_err(|e| VoiceError::Format(format!("resampler {from}->{to} Hz: {e}")))?,
            )
        };
        Ok(Resampler {
            inner,
            chunk,
            pending: Vec::with_capacity(chunk * 2),
            from,
            to,
        })
    }

    pub fn rates(&self) -> (u32, u32) {
        (self.from, self.to)
    }

    /// Feeds samples; returns whatever converted output is ready.
    pub fn push(&mut self, samples: &[i16]) -> Result<Vec<i16>, VoiceError> {
        let Some(inner) = self.inner.as_mut() else {
            return Ok(samples.to_vec());
        };
        self.pending
            .extend(samples.iter().map(|&s| f32::from(s) / 32768.0));
        let mut out = Vec::new();
        while self.pending.len() >= self.chunk {
            let wave = inner
                .process(&[&self.pending[..self.chunk]], None)
                .map_err(|e| VoiceError::Format(format!("resampling: {e}")))?;
            self.pending.drain(..self.chunk);
            out.extend(wave.first().into_iter().flatten().map(|&x| to_i16(x)));
        }
        Ok(out)
    }

    /// Converts what is left (padding the last chunk with silence) and the filter's tail.
    pub fn finish(&mut self) -> Result<Vec<i16>, VoiceError> {
        let Some(inner) = self.inner.as_mut() else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        // The remainder padded with silence, then one chunk of silence to push out the
        // filter's delay.
        let rest = std::mem::take(&mut self.pending);
        let mut flush = |wave: Vec<Vec<f32>>| {
            out.extend(wave.first().into_iter().flatten().map(|&x| to_i16(x)));
        };
        if !rest.is_empty() {
            flush(
                inner
                    .process_partial(Some(&[rest.as_slice()]), None)
                    .map_err(|e| VoiceError::Format(format!("resampling: {e}")))?,
            );
        }
        flush(
            inner
                .process_partial::<&[f32]>(None, None)
                .map_err(|e| VoiceError::Format(format!("resampling: {e}")))?,
        );
        inner.reset();
        Ok(out)
    }

    /// Samples of delay the converter adds (0 when passing through).
    pub fn delay(&self) -> usize {
        self.inner.as_ref().map_or(0, |r| r.output_delay())
    }
}

fn to_i16(x: f32) -> i16 {
    (x * 32768.0).round().clamp(-32768.0, 32767.0) as i16
}

/// Converts a whole clip at once (delay removed, length scaled by the rate ratio).
pub fn resample_all(samples: &[i16], from: u32, to: u32) -> Result<Vec<i16>, VoiceError> {
    if from == to {
        return Ok(samples.to_vec());
    }
    let mut r = Resampler::new(from, to)?;
    let delay = r.delay();
    let mut out = r.push(samples)?;
    out.extend(r.finish()?);
    let want = (samples.len() as u64 * u64::from(to) / u64::from(from)) as usize;
    let start = delay.min(out.len());
    Ok(out[start..].iter().copied().take(want).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(hz: f32, rate: u32, n: usize) -> Vec<i16> {
        (0..n)
            .map(|i| {
                let t = i as f32 / rate as f32;
                (8000.0 * (2.0 * std::f32::consts::PI * hz * t).sin()) as i16
            })
            .collect()
    }

    /// The dominant frequency by counting zero crossings.
    fn frequency(s: &[i16], rate: u32) -> f32 {
        let crossings = s.windows(2).filter(|w| (w[0] < 0) != (w[1] < 0)).count();
        crossings as f32 / 2.0 / (s.len() as f32 / rate as f32)
    }

    #[test]
    fn equal_rates_pass_through() {
        let mut r = Resampler::new(16_000, 16_000).unwrap();
        let s = tone(440.0, 16_000, 320);
        assert_eq!(r.push(&s).unwrap(), s);
        assert!(r.finish().unwrap().is_empty());
    }

    #[test]
    fn a_tone_keeps_its_pitch_and_duration() {
        for (from, to) in [
            (48_000, 16_000),
            (16_000, 24_000),
            (22_050, 16_000),
            (8_000, 16_000),
        ] {
            let s = tone(440.0, from, from as usize); // one second
            let out = resample_all(&s, from, to).unwrap();
            assert_eq!(out.len(), to as usize, "{from}->{to}");
            let f = frequency(&out[to as usize / 10..], to);
            assert!((f - 440.0).abs() < 10.0, "{from}->{to}: {f} Hz");
        }
    }

    #[test]
    fn streaming_in_odd_pieces_matches_length() {
        let mut r = Resampler::new(48_000, 16_000).unwrap();
        let s = tone(300.0, 48_000, 48_000);
        let mut out = Vec::new();
        for piece in s.chunks(777) {
            out.extend(r.push(piece).unwrap());
        }
        out.extend(r.finish().unwrap());
        // One second in, one second (plus the filter's delay) out.
        assert!(
            out.len() >= 16_000 && out.len() <= 16_000 + 2 * 320 + r.delay(),
            "{}",
            out.len()
        );
    }

    #[test]
    fn zero_rates_are_refused() {
        assert!(Resampler::new(0, 16_000).is_err());
    }
}
