// Speaks an order to the kiosk page through Chromium's fake microphone and checks the
// whole voice path in a real browser: the AudioWorklet's 16 kHz frames reach the
// server, its offline recognizer (pocketsphinx with the menu grammar) hears the order,
// the agent fills the cart on the live display, and the spoken reply comes back down and
// is scheduled by the page's player, with the state going listening → thinking →
// speaking and `playout` reports going up.
//
// The guest's voice is synthesized by espeak-ng here, as a WAV of one second of silence,
// the order, and a long silence. Chromium plays the file from its start when the page
// opens the microphone and then loops it; the trailing silence lets the voice activity
// detector see the end of the utterance and keeps the repeat far beyond the assertions,
// which wait on conditions (never fixed sleeps) with timeouts sized for a loaded
// 2-core machine. Voice is turned off before the repeat could be heard.
//
// Usage: STONEPOT_URL=http://127.0.0.1:PORT node kiosk_voice.test.mjs
// Needs espeak-ng and a server with its local speech engines (scripts/install-test-deps.sh).
import { chromium } from "playwright-core";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const base = process.env.STONEPOT_URL;
assert.ok(base, "set STONEPOT_URL");
const artifacts = new URL("./artifacts/", import.meta.url).pathname;
mkdirSync(artifacts, { recursive: true });

/** The spoken order: menu names the offline grammar knows (as crates/server/tests/voice.rs
 *  speaks them) and a quantity the offline agent parses. Not "two": its pronunciation is
 *  the same as "to", which the grammar also holds, so the recognizer writes either. */
const ORDER = "three margherita pizzas";
const LEAD_S = 1;
/** Longer than the test needs from the first utterance to its last voice assertion, so
 *  Chromium's loop does not order again while it runs. */
const TAIL_S = 60;

/** Parses espeak-ng's WAV (its header's sizes are placeholders when it writes to a pipe)
 *  and writes a 16-bit mono WAV of silence, the speech and silence. */
function orderWav(path) {
  const wav = execFileSync("espeak-ng", ["--stdout", "-v", "en-us", "-s", "160", ORDER]);
  let off = 12;
  let rate = 0;
  let pcm = null;
  while (off + 8 <= wav.length) {
    const id = wav.toString("ascii", off, off + 4);
    let size = wav.readUInt32LE(off + 4);
    if (id === "fmt ") {
      assert.equal(wav.readUInt16LE(off + 8), 1, "PCM");
      assert.equal(wav.readUInt16LE(off + 10), 1, "mono");
      assert.equal(wav.readUInt16LE(off + 22), 16, "16-bit");
      rate = wav.readUInt32LE(off + 12);
    }
    if (id === "data") {
      size = Math.min(size, wav.length - off - 8);
      pcm = wav.subarray(off + 8, off + 8 + size);
      break;
    }
    off += 8 + size + (size & 1);
  }
  assert.ok(rate > 0 && pcm && pcm.length > rate, "espeak-ng wrote speech");
  const body = Buffer.concat([Buffer.alloc(rate * LEAD_S * 2), pcm, Buffer.alloc(rate * TAIL_S * 2)]);
  const h = Buffer.alloc(44);
  h.write("RIFF", 0);
  h.writeUInt32LE(36 + body.length, 4);
  h.write("WAVEfmt ", 8);
  h.writeUInt32LE(16, 16);
  h.writeUInt16LE(1, 20);
  h.writeUInt16LE(1, 22);
  h.writeUInt32LE(rate, 24);
  h.writeUInt32LE(rate * 2, 28);
  h.writeUInt16LE(2, 32);
  h.writeUInt16LE(16, 34);
  h.write("data", 36);
  h.writeUInt32LE(body.length, 40);
  writeFileSync(path, Buffer.concat([h, body]));
}

/** Runs in the page before its scripts: watches the socket's traffic (binary frames and
 *  JSON types up, binary frames down), every reply buffer the player schedules, the
 *  microphone streams and the voice state's changes, in `window.__voice`. */
function watch() {
  const seen = { up: 0, upBytes: new Set(), down: 0, playout: [], scheduledS: 0, states: [], streams: [], sent: [] };
  window.__voice = seen;
  const gum = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
  navigator.mediaDevices.getUserMedia = async (c) => {
    const s = await gum(c);
    seen.streams.push(s);
    return s;
  };
  const send = WebSocket.prototype.send;
  WebSocket.prototype.send = function (data) {
    if (typeof data === "string") {
      try { const v = JSON.parse(data); seen.sent.push(v.type); if (v.type === "playout") seen.playout.push(v.playedMs); } catch (_) { /* not ours */ }
    } else {
      seen.up += 1;
      seen.upBytes.add(data.byteLength);
    }
    return send.call(this, data);
  };
  const onmessage = Object.getOwnPropertyDescriptor(WebSocket.prototype, "onmessage");
  Object.defineProperty(WebSocket.prototype, "onmessage", {
    set(fn) {
      onmessage.set.call(this, (m) => { if (typeof m.data !== "string") seen.down += 1; return fn(m); });
    },
    get() { return onmessage.get.call(this); },
  });
  const start = AudioBufferSourceNode.prototype.start;
  AudioBufferSourceNode.prototype.start = function (...args) {
    if (this.buffer) seen.scheduledS += this.buffer.duration;
    return start.apply(this, args);
  };
  document.addEventListener("DOMContentLoaded", () => {
    const el = document.getElementById("voice-state");
    if (!el) return;
    seen.states.push(el.dataset.state);
    new MutationObserver(() => {
      const s = el.dataset.state;
      if (seen.states[seen.states.length - 1] !== s) seen.states.push(s);
    }).observe(el, { attributes: true, attributeFilter: ["data-state"] });
  });
}

const dir = mkdtempSync(join(tmpdir(), "stonepot-voice-"));
const wavPath = join(dir, "order.wav");
orderWav(wavPath);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
         `--use-file-for-fake-audio-capture=${wavPath}`],
});

let page = null;
try {
  page = await browser.newPage({ viewport: { width: 1280, height: 800 }, hasTouch: true, reducedMotion: "reduce" });
  // Generous: recognition, the agent and synthesis share 2 cores with other builds.
  page.setDefaultTimeout(45_000);
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.addInitScript(watch);

  await page.goto(`${base}/kiosk/demo-restaurant`);
  await page.waitForSelector('#link[data-state="live"]');
  const display = page.frameLocator("#display");
  await display.locator('#status[data-state="live"]').waitFor();
  assert.equal(await page.locator("#voice-state").getAttribute("data-state"), "off");

  // Voice on (a tap): the microphone opens, the file starts, the page listens.
  await page.locator("#voice-toggle").tap();
  await page.waitForSelector('#voice-state[data-state="listening"]');
  assert.equal(await page.locator("#voice-note").isHidden(), true, "the server's engines are used, no fallback note");

  // The guest's words come back as a final transcript in the conversation ...
  const said = page.locator(".msg.user.spoken:not(.partial)").first();
  await said.waitFor();
  const heard = (await said.innerText()).toLowerCase();
  assert.match(heard, /three margherita/, `transcript: ${heard}`);

  // ... the display beside it shows the three pizzas in the cart ...
  const cart = display.locator('section[data-type="cart"]');
  await cart.waitFor();
  await page.waitForFunction(() => {
    const f = document.getElementById("display").contentDocument;
    const c = f && f.querySelector('section[data-type="cart"]');
    return c && /Margherita Pizza/.test(c.textContent) && /38\.97/.test(c.textContent); // 3 × 12.99
  });

  // ... the reply is spoken: audio frames arrive and the player schedules them, and the
  // state went listening → thinking → speaking, then back to listening.
  await page.waitForFunction(() => window.__voice.down >= 25 && window.__voice.scheduledS >= 0.5);
  await page.waitForFunction(() => window.__voice.playout.some((ms) => ms > 0));
  await page.waitForSelector('#voice-state[data-state="listening"]');
  const seen = await page.evaluate(() => ({ ...window.__voice, upBytes: [...window.__voice.upBytes], streams: window.__voice.streams.length }));
  assert.equal(seen.streams, 1, "one microphone stream");
  const at = (s, from = 0) => seen.states.indexOf(s, from);
  const l = at("listening");
  const t = at("thinking", l);
  const sp = at("speaking", t);
  assert.ok(l >= 0 && t > l && sp > t && at("listening", sp) > sp, `states: ${seen.states.join(" → ")}`);
  // 20 ms frames of 16 kHz PCM16 went up, at most real time.
  assert.deepEqual(seen.upBytes, [640], `frame sizes: ${seen.upBytes}`);
  assert.ok(seen.up >= 100, `${seen.up} frames sent`);
  // The reply's text streamed into the chat as well.
  const reply = await page.locator(".msg.assistant").last().innerText();
  assert.ok(reply.trim().length > 0, "the agent's reply is shown");
  // Playout reports grow and never pass what was scheduled.
  const played = seen.playout.filter((ms) => ms > 0);
  assert.ok(played.every((ms, i) => i === 0 || ms >= played[i - 1]), `playout: ${played}`);
  assert.ok(Math.max(...played) <= seen.scheduledS * 1000 + 1, `played ${Math.max(...played)} of ${seen.scheduledS * 1000} ms`);

  // Voice off: the microphone is released (its track ends).
  await page.locator("#voice-toggle").tap();
  await page.waitForSelector('#voice-state[data-state="off"]');
  await page.waitForFunction(() =>
    window.__voice.streams.every((s) => s.getAudioTracks().every((t) => t.readyState === "ended")));

  await page.screenshot({ path: `${artifacts}kiosk_voice.png`, fullPage: true });
  assert.deepEqual(errors, [], "no script errors");

  // Push to talk, with the space bar: nothing goes up until it is held; holding it sends
  // the order, releasing it sends `stop`; while it is up again, nothing goes up.
  page = await browser.newPage({ viewport: { width: 1280, height: 800 }, hasTouch: true, reducedMotion: "reduce" });
  page.setDefaultTimeout(45_000);
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.addInitScript(watch);
  await page.goto(`${base}/kiosk/demo-restaurant`);
  await page.waitForSelector('#link[data-state="live"]');
  await page.locator("#voice-ptt").check();
  assert.equal(await page.locator("#voice-talk").isVisible(), true, "the hold-to-talk button shows");
  await page.locator("#voice-toggle").tap();
  await page.waitForSelector('#voice-state[data-state="ready"]');
  await page.waitForFunction(() => window.__voice.sent.includes("start"));
  assert.equal(await page.evaluate(() => window.__voice.up), 0, "no audio before the key is held");
  await page.keyboard.down("Space");
  await page.waitForSelector('#voice-state[data-state="listening"]');
  await page.locator(".msg.user.spoken:not(.partial)").first().waitFor();
  await page.keyboard.up("Space");
  await page.waitForFunction(() => window.__voice.sent.includes("stop"));
  const upAtRelease = await page.evaluate(() => window.__voice.up);
  assert.ok(upAtRelease >= 50, `${upAtRelease} frames while held`);
  // The reply plays and ends; the page waits for the key again, sending nothing.
  await page.waitForFunction(() => window.__voice.states.includes("speaking"));
  await page.waitForSelector('#voice-state[data-state="ready"]');
  assert.equal(await page.evaluate(() => window.__voice.up), upAtRelease, "no audio while the key is up");
  assert.equal(await page.locator("#voice-toggle").getAttribute("aria-pressed"), "true", "the space bar did not press the focused toggle");

  // Where /health says the local recognizer is missing, the page does not send the server
  // any voice: it says so and uses the browser's own speech (or asks the guest to type
  // when the browser has none).
  page = await browser.newPage({ viewport: { width: 1280, height: 800 }, hasTouch: true, reducedMotion: "reduce" });
  page.setDefaultTimeout(45_000);
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.addInitScript(watch);
  await page.route("**/health", (route) => route.fulfill({
    status: 200,
    contentType: "application/json",
    body: JSON.stringify({ ok: true, speech: { mode: "offline", espeakNg: true, recognizer: false } }),
  }));
  await page.goto(`${base}/kiosk/demo-restaurant`);
  await page.waitForSelector('#link[data-state="live"]');
  await page.locator("#voice-toggle").tap();
  const fallback = page.locator("#voice-note");
  await fallback.waitFor();
  const why = await fallback.innerText();
  assert.match(why, /local speech engines are missing \(speech recognizer\)/, why);
  // (Headless Chromium has SpeechRecognition but no speech service behind it, so the
  // note may go on to say that it fails too.)
  assert.match(why, /browser's own speech recognition|no speech recognition either|speech recognition is not working either/, why);
  const traffic = await page.evaluate(() => ({ up: window.__voice.up, sent: window.__voice.sent, streams: window.__voice.streams.length }));
  assert.deepEqual(traffic, { up: 0, sent: [], streams: 0 }, "no server voice in the fallback");
  assert.deepEqual(errors, [], "no script errors");
  console.log(`ok  kiosk voice (heard "${heard}", states ${seen.states.join(" → ")}, ${seen.down} reply frames; fallback: "${why}")`);
} catch (e) {
  // What the page showed, for the log of a failed run.
  if (page) {
    const chat = await page.locator("#log").innerText().catch(() => "?");
    const states = await page.evaluate(() => window.__voice && window.__voice.states.join(" → ")).catch(() => "?");
    console.error(`kiosk voice failed; states: ${states}\nconversation:\n${chat}`);
    await page.screenshot({ path: `${artifacts}kiosk_voice-failed.png`, fullPage: true }).catch(() => {});
  }
  throw e;
} finally {
  await browser.close();
  rmSync(dir, { recursive: true, force: true });
}
