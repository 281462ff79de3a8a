// The kiosk's reply player (crates/server/assets/kiosk-audio.js) in Node against a
// scripted AudioContext whose clock the test moves: frames are scheduled back to back a
// small lead ahead of the clock, what was heard is counted to the millisecond (the
// server cuts an interrupted reply's history to it), and an interruption stops every
// scheduled source at once. The real-browser test (kiosk_voice.test.mjs) covers the
// player against Chromium's own audio clock.
// Usage: node kiosk_player.test.mjs (no server, no browser).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";

const src = readFileSync(new URL("../../crates/server/assets/kiosk-audio.js", import.meta.url), "utf8");
const win = {};
new Function("window", src)(win);
const { Player } = win.StonepotAudio;

/** An AudioContext with a settable clock that records what is scheduled and stopped. */
function context() {
  const ctx = {
    currentTime: 10,
    outputLatency: 0,
    baseLatency: 0,
    destination: {},
    sources: [],
    createBuffer(channels, length, rate) {
      const data = new Float32Array(length);
      return { numberOfChannels: channels, length, sampleRate: rate, duration: length / rate, getChannelData: () => data };
    },
    createBufferSource() {
      const s = {
        buffer: null, startedAt: null, stopped: false, connected: false,
        connect() { s.connected = true; }, disconnect() { s.connected = false; },
        start(t) { s.startedAt = t; }, stop() { s.stopped = true; },
      };
      ctx.sources.push(s);
      return s;
    },
  };
  return ctx;
}

/** One 20 ms frame at 16 kHz whose samples are `v` (PCM16 little-endian). */
function frame(v) {
  const b = new ArrayBuffer(640);
  const d = new DataView(b);
  for (let i = 0; i < 320; i++) d.setInt16(i * 2, v, true);
  return b;
}

const near = (a, b) => Math.abs(a - b) < 1e-9;

// Frames are scheduled a lead ahead of the clock, then back to back.
{
  const ctx = context();
  const p = new Player(ctx);
  p.begin(16000);
  for (let i = 0; i < 5; i++) p.push(frame(16384));
  const starts = ctx.sources.map((s) => s.startedAt);
  assert.ok(near(starts[0], 10.08), `first frame 80 ms ahead: ${starts[0]}`);
  for (let i = 1; i < 5; i++) assert.ok(near(starts[i], starts[i - 1] + 0.02), `back to back: ${starts}`);
  assert.ok(ctx.sources.every((s) => s.connected && s.buffer.sampleRate === 16000));
  assert.ok(near(ctx.sources[0].buffer.getChannelData(0)[0], 0.5), "PCM16 decoded to float");
  assert.equal(p.playedMs(), 0, "nothing heard before the first frame starts");
  assert.equal(p.busy(), true);

  // 30 ms into the reply: one frame and half of the next heard.
  ctx.currentTime = 10.08 + 0.03;
  assert.equal(p.playedMs(), 30);
  // The output device's latency is not heard yet.
  ctx.outputLatency = 0.01;
  assert.equal(p.playedMs(), 20);
  ctx.outputLatency = 0;

  // Barge-in: every source stops at once, nothing stays queued, what was heard counts.
  ctx.currentTime = 10.08 + 0.05;
  assert.equal(p.stop(), 50);
  assert.ok(ctx.sources.every((s) => s.stopped || s.startedAt + 0.02 <= ctx.currentTime), "all unplayed sources stopped");
  assert.ok(ctx.sources.slice(2).every((s) => s.stopped && !s.connected));
  assert.equal(p.busy(), false);
  assert.equal(p.playedMs(), 50, "the count stays where the guest stopped hearing");

  // The next reply starts afresh, a lead ahead of the clock again.
  p.begin(16000);
  assert.equal(p.playedMs(), 0);
  p.push(frame(0));
  assert.ok(near(ctx.sources[ctx.sources.length - 1].startedAt, ctx.currentTime + 0.08));
}

// A gap (the page stalled, or a pause between sentences) restarts a lead ahead of now
// instead of scheduling in the past; the count goes on.
{
  const ctx = context();
  const p = new Player(ctx);
  p.begin(16000);
  p.push(frame(100));
  p.push(frame(100));
  ctx.currentTime = 11; // long after both ended
  p.push(frame(100));
  assert.ok(near(ctx.sources[2].startedAt, 11.08), `after a gap: ${ctx.sources[2].startedAt}`);
  assert.equal(p.playedMs(), 40);
  ctx.currentTime = 11.2;
  assert.equal(p.playedMs(), 60);
  assert.equal(p.busy(), false);
}

// Another rate (a 24 kHz reply): durations follow the rate.
{
  const ctx = context();
  const p = new Player(ctx);
  p.begin(24000);
  p.push(new ArrayBuffer(960)); // 480 samples = 20 ms at 24 kHz
  assert.ok(near(ctx.sources[0].buffer.duration, 0.02));
  ctx.currentTime = 11;
  assert.equal(p.playedMs(), 20);
}
console.log("ok  kiosk player");
