// Stonepot kiosk microphone worklet: runs on the audio thread, turns the microphone's
// float samples (at the AudioContext's rate, usually 44.1 or 48 kHz) into the server's
// wire format: 16 kHz PCM16 mono in 20 ms frames (320 samples, 640 bytes), each posted
// to the page as a transferable ArrayBuffer. Done here rather than on the main thread so
// a busy page (layout, the display iframe) never drops or bunches microphone audio.
//
// Downsampling is a low-pass FIR at the input rate (a Blackman-windowed sinc cut at
// 7 kHz, under the 8 kHz Nyquist of the output, so speech sibilants do not fold back as
// noise the recognizer would hear) followed by linear interpolation at the output
// positions: the input is at least 2.75x oversampled there, so the interpolation adds
// little error, and the cost is ~35 multiply-adds per input sample at 48 kHz.
"use strict";

const OUT_RATE = 16000;
const FRAME = 320; // 20 ms at 16 kHz
/** Filter length: about 11 taps per output sample (33 at 44.1 kHz, 35 at 48 kHz, 67 at
 *  96 kHz), so the transition band stays as narrow in Hz at any capture rate. */
const taps = (inRate) => Math.max(33, 2 * Math.ceil((11 * inRate) / OUT_RATE / 2) + 1);

function lowPass(inRate) {
  const n = taps(inRate);
  const fc = Math.min(7000, 0.45 * inRate) / inRate; // cycles per input sample
  const h = new Float32Array(n);
  const mid = (n - 1) / 2;
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const x = i - mid;
    const sinc = x === 0 ? 2 * fc : Math.sin(2 * Math.PI * fc * x) / (Math.PI * x);
    const w = 0.42 - 0.5 * Math.cos((2 * Math.PI * i) / (n - 1)) + 0.08 * Math.cos((4 * Math.PI * i) / (n - 1));
    h[i] = sinc * w;
    sum += h[i];
  }
  for (let i = 0; i < n; i++) h[i] /= sum; // unity gain at DC
  return h;
}

class Downsampler extends AudioWorkletProcessor {
  constructor() {
    super();
    this.passThrough = sampleRate === OUT_RATE;
    this.step = sampleRate / OUT_RATE; // input samples per output sample
    this.h = lowPass(sampleRate);
    this.hist = new Float32Array(this.h.length); // ring of the last inputs
    this.pos = 0;
    this.prev = 0; // the previous filtered sample
    this.t = 0; // position of the next output, in input samples after `prev`
    this.frame = new Int16Array(FRAME);
    this.n = 0;
  }

  emit(x) {
    const s = Math.max(-1, Math.min(1, x));
    this.frame[this.n++] = s < 0 ? Math.round(s * 32768) : Math.round(s * 32767);
    if (this.n === FRAME) {
      const buf = this.frame.buffer;
      this.port.postMessage(buf, [buf]);
      this.frame = new Int16Array(FRAME);
      this.n = 0;
    }
  }

  process(inputs) {
    const input = inputs[0];
    const ch = input && input[0];
    if (!ch) return true; // no microphone connected yet (or it ended): keep the node alive
    if (this.passThrough) {
      for (let i = 0; i < ch.length; i++) this.emit(ch[i]);
      return true;
    }
    const h = this.h;
    const hist = this.hist;
    const n = h.length;
    for (let i = 0; i < ch.length; i++) {
      hist[this.pos] = ch[i];
      this.pos = (this.pos + 1) % n;
      let y = 0;
      for (let k = 0, j = this.pos; k < n; k++, j = (j + 1) % n) y += h[k] * hist[j];
      // Outputs that fall between the previous filtered sample and this one.
      while (this.t <= 1) {
        this.emit(this.prev + (y - this.prev) * this.t);
        this.t += this.step;
      }
      this.t -= 1;
      this.prev = y;
    }
    return true;
  }
}

registerProcessor("stonepot-downsampler", Downsampler);
