// The kiosk's microphone worklet (crates/server/assets/kiosk-worklet.js) run in Node
// with a stand-in for the AudioWorklet scope: at the rates browsers capture at it must
// produce exactly 16,000 samples a second in 320-sample (20 ms) frames, keep speech
// frequencies at their level, and remove what would fold back below 8 kHz.
// Usage: node kiosk_worklet.test.mjs (no server, no browser).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";

const src = readFileSync(new URL("../../crates/server/assets/kiosk-worklet.js", import.meta.url), "utf8");

/** Runs the worklet at `rate` over `seconds` of a sine at `freq` Hz (amplitude 0.5) in
 *  128-sample render quanta; returns the frames it posted. */
function run(rate, freq, seconds) {
  const frames = [];
  let Processor = null;
  const scope = {
    sampleRate: rate,
    registerProcessor: (_name, cls) => { Processor = cls; },
    AudioWorkletProcessor: class {
      constructor() { this.port = { postMessage: (buf) => frames.push(new Int16Array(buf)) }; }
    },
  };
  new Function(...Object.keys(scope), src)(...Object.values(scope));
  const p = new Processor();
  for (let i = 0; i < rate * seconds; i += 128) {
    const ch = new Float32Array(128);
    for (let k = 0; k < 128; k++) ch[k] = 0.5 * Math.sin((2 * Math.PI * freq * (i + k)) / rate);
    assert.equal(p.process([[ch]]), true);
  }
  return frames;
}

/** The amplitude of `freq` in 16 kHz samples (skipping the filter's start-up). */
function amplitude(samples, freq) {
  let c = 0;
  let s = 0;
  const from = 1000;
  for (let n = from; n < samples.length; n++) {
    const t = n / 16000;
    c += samples[n] * Math.cos(2 * Math.PI * freq * t);
    s += samples[n] * Math.sin(2 * Math.PI * freq * t);
  }
  return (2 * Math.hypot(c, s)) / (samples.length - from) / 32768;
}

for (const rate of [48000, 44100, 16000, 24000, 96000]) {
  const frames = run(rate, 1000, 2);
  assert.ok(frames.every((f) => f.length === 320), `${rate}: 20 ms frames`);
  // 2 s in, 100 frames out, give or take the one still filling.
  assert.ok(frames.length >= 99 && frames.length <= 100, `${rate}: ${frames.length} frames in 2 s`);
  const a = amplitude(frames.flatMap((f) => [...f]), 1000);
  assert.ok(Math.abs(a - 0.5) < 0.02, `${rate}: 1 kHz kept at ${a}`);
}
for (const [rate, freq] of [[48000, 12000], [44100, 10000], [96000, 11000]]) {
  const out = run(rate, freq, 2).flatMap((f) => [...f]);
  const folded = 16000 - freq; // where it would land after naive decimation
  const a = amplitude(out, folded);
  assert.ok(a < 0.01, `${rate}: ${freq} Hz removed, ${a} left at ${folded} Hz`);
}
console.log("ok  kiosk worklet");
