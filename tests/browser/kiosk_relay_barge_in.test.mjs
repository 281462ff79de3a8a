// Barge-in on the kiosk page in relay mode, in a real browser: the server talks to a fake
// OpenAI Realtime server that this test runs (it speaks the real event protocol: the
// `session.created` / `session.updated` handshake, `response.output_audio.delta`,
// `input_audio_buffer.speech_started`, and it takes `response.cancel` and
// `conversation.item.truncate`). The fake streams three seconds of reply audio, which the
// page's player queues; once the page has played some of it, the fake reports the guest
// speaking. The server waits its minimum speech duration (200 ms), then sends
// `interrupted`, and the page must stop every queued source at once, schedule nothing
// more (even though the fake goes on sending audio for the cancelled reply), report how
// much it played, and the fake must get the truncate at what the page had reported.
//
// Usage: STONEPOT_URL=http://127.0.0.1:PORT STONEPOT_REALTIME_PORT=FAKEPORT \
//        node kiosk_relay_barge_in.test.mjs
// The server runs with VOICE_MODE=relay, OPENAI_API_KEY set and OPENAI_REALTIME_URL
// pointing at ws://127.0.0.1:FAKEPORT/v1/realtime (scripts/browser-test.sh starts it).
import { chromium } from "playwright-core";
import { WebSocketServer } from "ws";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";

const base = process.env.STONEPOT_URL;
const fakePort = Number(process.env.STONEPOT_REALTIME_PORT);
assert.ok(base, "set STONEPOT_URL");
assert.ok(fakePort > 0, "set STONEPOT_REALTIME_PORT");
const artifacts = new URL("./artifacts/", import.meta.url).pathname;
mkdirSync(artifacts, { recursive: true });

/** The relay's minimum speech before a barge-in (VOICE_BARGE_IN_MIN_MS, default). */
const MIN_MS = 200;
/** How soon after `interrupted` the page must have stopped its player. */
const STOP_MS = 50;

/** What the test is waiting for: a stuck run fails naming it instead of hanging. */
let stage = "the fake server";
setTimeout(() => {
  console.error(`kiosk relay barge-in: stuck waiting for ${stage}`);
  process.exit(1);
}, 150_000).unref();

// ---- the fake OpenAI Realtime server ----------------------------------------------

/** Messages the relay sent, with when (Date.now()), and the one connection. */
const received = [];
let conn = null;
let eventNo = 0;
function send(v) {
  conn.send(JSON.stringify({ event_id: `event_fake_${++eventNo}`, ...v }));
}
const fake = new WebSocketServer({ host: "127.0.0.1", port: fakePort, path: "/v1/realtime" });
fake.on("connection", (ws) => {
  conn = ws;
  const expires = Math.floor(Date.now() / 1000) + 3600;
  send({ type: "session.created", session: { type: "realtime", object: "realtime.session", id: "sess_fake", expires_at: expires } });
  ws.on("message", (data) => {
    let v;
    try { v = JSON.parse(data.toString()); } catch (_) { return; }
    received.push({ at: Date.now(), v });
    // What the real server answers by itself.
    if (v.type === "session.update") send({ type: "session.updated", session: { ...v.session, object: "realtime.session" } });
    if (v.type === "conversation.item.truncate") {
      send({ type: "conversation.item.truncated", item_id: v.item_id, content_index: 0, audio_end_ms: v.audio_end_ms });
    }
  });
});
await new Promise((resolve, reject) => { fake.once("listening", resolve); fake.once("error", reject); });

/** `n` 20 ms deltas of a 24 kHz tone (the reply's audio), base64 PCM16. */
function toneDeltas(n) {
  const out = [];
  let phase = 0;
  for (let d = 0; d < n; d++) {
    const pcm = Buffer.alloc(480 * 2);
    for (let i = 0; i < 480; i++, phase++) pcm.writeInt16LE(Math.round(4000 * Math.sin((2 * Math.PI * 440 * phase) / 24000)), i * 2);
    out.push(pcm.toString("base64"));
  }
  return out;
}
function sendAudio(deltas) {
  for (const delta of deltas) {
    send({ type: "response.output_audio.delta", response_id: "r1", item_id: "a1", output_index: 0, content_index: 0, delta });
  }
}
async function until(what, ok, ms = 20_000) {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

// ---- the page ---------------------------------------------------------------------

/** Runs in the page before its scripts: when `interrupted` arrived, every reply source
 *  the player starts and stops (page clock, ms), and the `playout` reports sent. */
function watch() {
  const seen = { interruptedAt: null, interruptedWall: null, interruptedClock: null, starts: [], stops: [], playout: [], states: [] };
  window.__relay = seen;
  const send = WebSocket.prototype.send;
  WebSocket.prototype.send = function (data) {
    if (typeof data === "string") {
      try {
        const v = JSON.parse(data);
        if (v.type === "playout") seen.playout.push({ at: performance.now(), ms: v.playedMs });
      } catch (_) { /* not ours */ }
    }
    return send.call(this, data);
  };
  const onmessage = Object.getOwnPropertyDescriptor(WebSocket.prototype, "onmessage");
  Object.defineProperty(WebSocket.prototype, "onmessage", {
    set(fn) {
      onmessage.set.call(this, (m) => {
        if (typeof m.data === "string" && seen.interruptedAt === null && /"type":"interrupted"/.test(m.data)) {
          seen.interruptedAt = performance.now();
          seen.interruptedWall = Date.now();
          seen.interruptedClock = window.__relayCtx ? window.__relayCtx.currentTime : null;
        }
        return fn(m);
      });
    },
    get() { return onmessage.get.call(this); },
  });
  const start = AudioBufferSourceNode.prototype.start;
  AudioBufferSourceNode.prototype.start = function (...args) {
    this.__id = seen.starts.length;
    window.__relayCtx = this.context;
    // When it plays, on the audio clock: it is still to be heard until `end`.
    const when = args.length ? args[0] : this.context.currentTime;
    seen.starts.push({ at: performance.now(), end: when + (this.buffer ? this.buffer.duration : 0) });
    return start.apply(this, args);
  };
  const stop = AudioBufferSourceNode.prototype.stop;
  AudioBufferSourceNode.prototype.stop = function (...args) {
    seen.stops.push({ at: performance.now(), id: this.__id });
    return stop.apply(this, args);
  };
  document.addEventListener("DOMContentLoaded", () => {
    const el = document.getElementById("voice-state");
    if (!el) return;
    new MutationObserver(() => seen.states.push(el.dataset.state))
      .observe(el, { attributes: true, attributeFilter: ["data-state"] });
  });
}

stage = "Chromium";
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
         "--autoplay-policy=no-user-gesture-required"],
});

let page = null;
try {
  page = await browser.newPage({ viewport: { width: 1280, height: 800 }, hasTouch: true, reducedMotion: "reduce" });
  page.setDefaultTimeout(30_000);
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.addInitScript(watch);
  stage = "the kiosk page";
  await page.goto(`${base}/kiosk/demo-restaurant`);
  await page.waitForSelector('#link[data-state="live"]');

  // Voice on: the page sends `start`, the server opens the realtime session.
  stage = "voice on";
  await page.locator("#voice-toggle").tap();
  await page.waitForSelector('#voice-state[data-state="listening"]');
  stage = "the relay's connection";
  await until("the relay's session.update", () => received.some((r) => r.v.type === "session.update"));

  // The model answers with three seconds of audio, sent at once as a fast provider does.
  send({ type: "conversation.item.input_audio_transcription.completed", item_id: "u1", content_index: 0, transcript: "What did I order" });
  send({ type: "response.created", response: { id: "r1", status: "in_progress" } });
  send({ type: "response.output_audio_transcript.delta", response_id: "r1", item_id: "a1", delta: "Your order is two margheritas, one tiramisu and a lemonade." });
  sendAudio(toneDeltas(150));
  stage = "the reply playing";
  await page.waitForSelector('#voice-state[data-state="speaking"]');
  await page.waitForFunction(() => window.__relay.starts.length >= 140);
  // The guest hears a good part of it (the page reports every ~100 ms) ...
  await page.waitForFunction(() => window.__relay.playout.some((p) => p.ms >= 500));
  const reportedBefore = await page.evaluate(() => Math.max(...window.__relay.playout.map((p) => p.ms)));

  // ... then talks over it. The provider goes on sending audio it had under way.
  stage = "`interrupted`";
  const spokeAt = Date.now();
  send({ type: "input_audio_buffer.speech_started", audio_start_ms: 1000, item_id: "u2" });
  const more = toneDeltas(25);
  const feeder = setInterval(() => { if (more.length) sendAudio([more.shift()]); }, 20);
  try {
    await page.waitForFunction(() => window.__relay.interruptedAt !== null);
    stage = "the playout report";
    await page.waitForFunction(() => window.__relay.playout.some((p) => p.at > window.__relay.interruptedAt));
    await new Promise((r) => setTimeout(r, 600)); // the rest of the cancelled reply arrives, or not
  } finally {
    clearInterval(feeder);
  }
  stage = "the checks";
  const seen = await page.evaluate(() => window.__relay);

  // The relay waited for the guest to have spoken the minimum.
  const decidedAfter = seen.interruptedWall - spokeAt;
  assert.ok(decidedAfter >= MIN_MS, `interrupted ${decidedAfter} ms after the speech began`);
  // The player stopped every source still to be heard, within STOP_MS of `interrupted`
  // (the unplayed rest of the three seconds; those already played are left alone) ...
  const stopped = new Set(seen.stops.filter((s) => s.at >= seen.interruptedAt).map((s) => s.id));
  const lastStop = Math.max(...seen.stops.filter((s) => s.at >= seen.interruptedAt).map((s) => s.at));
  const stopMs = lastStop - seen.interruptedAt;
  assert.ok(seen.interruptedClock !== null, "the audio clock was read at `interrupted`");
  const unheard = seen.starts
    .map((s, id) => ({ ...s, id }))
    .filter((s) => s.at <= seen.interruptedAt && s.end > seen.interruptedClock + 0.001);
  const playingOn = unheard.filter((s) => !stopped.has(s.id)).length;
  assert.ok(unheard.length > 50, `${unheard.length} sources were still queued`);
  assert.equal(playingOn, 0, `${playingOn} of ${unheard.length} queued sources were not stopped`);
  assert.ok(stopMs < STOP_MS, `the player took ${stopMs.toFixed(1)} ms to stop`);
  // ... and scheduled nothing after it, though the fake kept sending.
  const after = seen.starts.filter((s) => s.at > seen.interruptedAt).length;
  assert.equal(after, 0, `${after} sources started after interrupted`);
  // It reported what it had played: a `playout` right after, at least what it had reported.
  const report = seen.playout.find((p) => p.at > seen.interruptedAt);
  assert.ok(report.ms >= reportedBefore && report.ms < 3000, `playout after interrupted: ${report.ms} ms`);
  // The provider was told to cancel, and to keep only what the page had reported played.
  const cancel = received.find((r) => r.v.type === "response.cancel");
  const trunc = received.find((r) => r.v.type === "conversation.item.truncate");
  assert.ok(cancel && trunc, `to the provider: ${received.map((r) => r.v.type).filter((t) => t !== "input_audio_buffer.append").join(", ")}`);
  assert.equal(trunc.v.item_id, "a1");
  assert.ok(trunc.v.audio_end_ms >= reportedBefore && trunc.v.audio_end_ms <= report.ms,
    `truncate at ${trunc.v.audio_end_ms} ms; the page reported ${reportedBefore} ms before and ${report.ms} ms after`);
  assert.equal(await page.locator("#voice-state").getAttribute("data-state"), "listening");
  await page.screenshot({ path: `${artifacts}kiosk_relay_barge_in.png`, fullPage: true });
  assert.deepEqual(errors, [], "no script errors");
  console.log(`ok  kiosk relay barge-in (interrupted ${decidedAfter} ms after speech began, player stopped ${stopped.size} sources in ${stopMs.toFixed(1)} ms, heard ${report.ms} ms, truncate at ${trunc.v.audio_end_ms} ms)`);
} catch (e) {
  if (page) {
    const seen = await page.evaluate(() => window.__relay && { ...window.__relay, starts: window.__relay.starts.length, stops: window.__relay.stops.length }).catch(() => "?");
    console.error(`kiosk relay barge-in failed; page: ${JSON.stringify(seen)}\nto the provider: ${received.map((r) => r.v.type).filter((t) => t !== "input_audio_buffer.append").join(", ")}`);
    await page.screenshot({ path: `${artifacts}kiosk_relay_barge_in-failed.png`, fullPage: true }).catch(() => {});
  }
  throw e;
} finally {
  await browser.close();
  for (const c of fake.clients) c.terminate();
  fake.close();
}
