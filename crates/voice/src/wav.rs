//! WAV files of PCM16 mono: reading test speech and what espeak-ng writes, writing what
//! speech-to-text providers take.

use crate::VoiceError;

/// A decoded clip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wav {
    pub rate: u32,
    pub samples: Vec<i16>,
}

/// The fields of a WAV header that matter here, and where its samples start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WavHeader {
    pub rate: u32,
    pub channels: u16,
    /// Offset of the first sample byte.
    pub data_offset: usize,
    /// Bytes of sample data the header announces; streaming writers (espeak-ng
    /// `--stdout`) announce a huge placeholder, so readers take what actually arrives.
    pub data_len: u32,
}

/// Parses the header at the start of `bytes`. `Ok(None)`: not enough bytes yet (a
/// streaming reader waits for more); an error: not a PCM16 WAV.
pub fn parse_header(bytes: &[u8]) -> Result<Option<WavHeader>, VoiceError> {
    if bytes.len() < 12 {
        return Ok(None);
    }
    if &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return Err(VoiceError::Format(
            "not a WAV file (no RIFF/WAVE header)".into(),
        ));
    }
    let mut pos = 12;
    let mut fmt: Option<(u16, u16, u32, u16)> = None;
    loop {
        if bytes.len() < pos + 8 {
            return Ok(None);
        }
        let id = &bytes[pos..pos + 4];
        let len = u32::from_le_bytes([
            bytes[pos + 4],
            bytes[pos + 5],
            bytes[pos + 6],
            bytes[pos + 7],
        ]);
        let body = pos + 8;
        if id == b"data" {
            let Some((format, channels, rate, bits)) = fmt else {
                return Err(VoiceError::Format(
                    "WAV: data chunk before fmt chunk".into(),
                ));
            };
            if format != 1 || bits != 16 {
                return Err(VoiceError::Format(format!(
                    "WAV: only 16-bit PCM is supported (format {format}, {bits} bits)"
                )));
            }
            return Ok(Some(WavHeader {
                rate,
                channels,
                data_offset: body,
                data_len: len,
            }));
        }
        let end = body + len as usize + (len as usize & 1);
        if id == b"fmt " {
            if bytes.len() < body + 16 {
                return Ok(None);
            }
            let b = &bytes[body..];
            fmt = Some((
                u16::from_le_bytes([b[0], b[1]]),
                u16::from_le_bytes([b[2], b[3]]),
                u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
                u16::from_le_bytes([b[14], b[15]]),
            ));
        }
        if end > 1 << 20 {
            return Err(VoiceError::Format("WAV: header chunks too large".into()));
        }
        pos = end;
    }
}

/// Reads a whole PCM16 WAV; stereo is mixed down to mono.
pub fn read(bytes: &[u8]) -> Result<Wav, VoiceError> {
    let h =
        parse_header(bytes)?.ok_or_else(|| VoiceError::Format("WAV: truncated header".into()))?;
    if h.channels == 0 || h.rate == 0 {
        return Err(VoiceError::Format("WAV: zero channels or rate".into()));
    }
    let end = (h.data_offset + h.data_len as usize).min(bytes.len());
    let all = crate::frame::to_samples(&bytes[h.data_offset..end]);
    let samples = if h.channels == 1 {
        all
    } else {
        let c = usize::from(h.channels);
        all.chunks_exact(c)
            .map(|f| (f.iter().map(|&s| i32::from(s)).sum::<i32>() / c as i32) as i16)
            .collect()
    };
    Ok(Wav {
        rate: h.rate,
        samples,
    })
}

/// Writes PCM16 mono samples as a WAV file.
pub fn write(samples: &[i16], rate: u32) -> Vec<u8> {
    let data = (samples.len() * 2) as u32;
    let mut out = Vec::with_capacity(44 + data as usize);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * 2).to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data.to_le_bytes());
    out.extend(crate::frame::to_bytes(samples));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let s: Vec<i16> = (0..1000).map(|i| (i * 31 % 2000 - 1000) as i16).collect();
        let w = read(&write(&s, 16_000)).unwrap();
        assert_eq!((w.rate, w.samples), (16_000, s));
    }

    #[test]
    fn a_streaming_header_with_a_placeholder_length_reads_what_arrived() {
        let mut b = write(&[1, 2, 3], 22_050);
        b[40..44].copy_from_slice(&0x7fff_f000u32.to_le_bytes());
        assert_eq!(read(&b).unwrap().samples, vec![1, 2, 3]);
    }

    #[test]
    fn partial_headers_wait_and_bad_ones_fail() {
        let b = write(&[1, 2, 3], 16_000);
        assert_eq!(parse_header(&b[..20]).unwrap(), None);
        assert_eq!(parse_header(&b).unwrap().map(|h| h.data_offset), Some(44));
        assert!(parse_header(b"RIFX0000WAVEfmt ").is_err());
        let mut float = b.clone();
        float[20] = 3;
        assert!(read(&float).unwrap_err().to_string().contains("16-bit PCM"));
    }

    #[test]
    fn stereo_is_mixed_to_mono() {
        let mut b = write(&[100, 300, -100, -300], 8_000);
        b[22] = 2; // channels
        let w = read(&b).unwrap();
        assert_eq!(w.samples, vec![200, -200]);
    }
}
