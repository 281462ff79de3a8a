// Stonepot kiosk voice: talk to the agent on the chat's own socket. The server's speech
// engines do the work (the microphone's 16 kHz frames go up, reply audio comes down and
// plays through a small jitter buffer); when /health says the server's local engines are
// missing (or the server refuses voice) the browser's own SpeechRecognition and
// speechSynthesis stand in, feeding the text chat. Hands-free (the server's voice
// activity detection finds the turns) or push-to-talk (hold the button or the space bar).
// The state the guest sees: off → listening → thinking → speaking → listening.
(() => {
  "use strict";
  const kiosk = window.stonepotKiosk;
  const root = document.getElementById("voice");
  if (!kiosk || !root || !window.StonepotAudio) return;
  const { Mic, Player } = window.StonepotAudio;
  const toggle = document.getElementById("voice-toggle");
  const ptt = document.getElementById("voice-ptt");
  const talk = document.getElementById("voice-talk");
  const stateEl = document.getElementById("voice-state");
  const label = document.getElementById("voice-label");
  const note = document.getElementById("voice-note");

  const LABELS = {
    off: "voice off", starting: "starting…", ready: "hold to talk",
    listening: "listening", thinking: "thinking…", speaking: "speaking",
  };
  /** How often the player reports what it has played while a reply plays (the server
   *  cuts an interrupted reply's history to it). */
  const PLAYOUT_EVERY_MS = 100;
  /** A spoken turn whose reply never starts (nothing to say, a lost event) gives the
   *  floor back to the guest after this long. */
  const REPLY_TIMEOUT_MS = 15000;

  // Asked at load, not on the first tap: the probe also starts the server's recognizer,
  // so the guest's first utterance does not wait for it.
  const health = fetch("/health", { cache: "no-store" }).then((r) => r.json()).catch(() => null);

  let on = false;
  let engine = null; // "server" | "browser"
  let state = "off";
  let holding = false; // push-to-talk held
  let ctx = null;
  let mic = null;
  let player = null;
  let started = false; // the server answered `start`
  let audioEnded = false;
  let replying = false; // a reply's audio is between audio_start and played out
  let queuedTurn = false; // the guest spoke over a reply that may not be cut
  let reporter = null;
  let replyTimer = null;
  let rec = null; // browser SpeechRecognition
  let spokenTurn = false; // the browser fallback's guest spoke the pending turn

  function setState(s) {
    state = s;
    root.dataset.state = s;
    stateEl.dataset.state = s;
    stateEl.textContent = LABELS[s] || s;
  }
  /** Nothing in flight: waiting for the guest. */
  const idle = () => setState(ptt.checked && !holding ? "ready" : "listening");
  const showNote = (text) => { note.textContent = text; note.hidden = !text; };
  const sendJson = (v) => kiosk.send(JSON.stringify(v));

  function armReplyTimer() {
    clearTimeout(replyTimer);
    replyTimer = setTimeout(() => { if (state === "thinking") idle(); }, REPLY_TIMEOUT_MS);
  }

  // ---- the server's engines ----

  function onFrame(buf) {
    if (!on || engine !== "server" || !started) return;
    if (ptt.checked && !holding) return;
    kiosk.send(buf);
  }

  function startReporting() {
    stopReporting();
    reporter = setInterval(() => {
      if (!player) return;
      sendJson({ type: "playout", playedMs: player.playedMs() });
      if (audioEnded && !player.busy()) {
        stopReporting();
        replying = false;
        if (queuedTurn) { queuedTurn = false; setState("thinking"); armReplyTimer(); } else if (state === "speaking") idle();
      }
    }, PLAYOUT_EVERY_MS);
  }
  function stopReporting() { clearInterval(reporter); reporter = null; }

  async function startServer() {
    engine = "server";
    const mine = ctx;
    await mine.resume();
    const m = new Mic(mine, root.dataset.worklet, onFrame);
    await m.start();
    if (!on || ctx !== mine) { m.stop(); return; } // turned off while the browser asked
    mic = m;
    player = new Player(mine);
    started = false;
    sendJson({ type: "start", sampleRate: 16000 });
  }

  /** Releases the microphone and the audio context, whichever engine was in use. */
  function stopServer() {
    stopReporting();
    if (player) player.stop();
    if (mic) mic.stop();
    if (ctx) ctx.close().catch(() => {});
    if (engine === "server" && started) sendJson({ type: "stop" });
    ctx = mic = player = null;
    started = replying = queuedTurn = false;
  }

  const server = {
    event(ev) {
      if (!on || engine !== "server") return;
      switch (ev.type) {
        case "started": started = true; if (state === "starting") idle(); break;
        case "stopped": if (state === "listening" || state === "ready") idle(); break;
        case "speech_started": if (state !== "speaking") setState("listening"); break;
        case "speech_stopped":
          // Over a reply that may not be cut (the order read-back) the guest's words are
          // the next turn, which starts when this reply has played.
          if (replying) queuedTurn = true; else { setState("thinking"); armReplyTimer(); }
          break;
        case "transcript":
          if (ev.final && !(ev.text || "").trim() && state === "thinking") idle();
          break;
        case "audio_start":
          clearTimeout(replyTimer);
          player.begin(ev.sampleRate);
          audioEnded = false;
          replying = true;
          queuedTurn = false;
          setState("speaking");
          startReporting();
          break;
        case "audio_end": audioEnded = true; break;
        case "interrupted": {
          // The guest talked over the reply: silence now, and tell the server exactly
          // how much was heard.
          const played = player ? player.stop() : 0;
          stopReporting();
          replying = false;
          sendJson({ type: "playout", playedMs: played });
          setState("listening");
          break;
        }
        case "assistant_done": if (state === "thinking") armReplyTimer(); break;
        case "error":
          if (ev.code === "voice_unavailable") {
            stopServer();
            startBrowser("The server cannot do voice here (" + (ev.message || "unavailable") + ").");
          } else if (state === "thinking" && /^(stt|tts)_failed$/.test(ev.code || "")) {
            idle();
          }
          break;
        default: break;
      }
    },
    audio(buf) {
      if (on && engine === "server" && player && replying) player.push(buf);
    },
    open() {
      if (on && engine === "server") { started = false; sendJson({ type: "start", sampleRate: 16000 }); }
    },
    close() {
      if (!on || engine !== "server") return;
      stopReporting();
      if (player) player.stop();
      started = replying = queuedTurn = false;
      setState("starting");
    },
  };
  kiosk.listen(server);

  // ---- the browser's own speech (fallback) ----

  const Recognition = window.SpeechRecognition || window.webkitSpeechRecognition;

  function startBrowser(reason) {
    engine = "browser";
    if (!Recognition) {
      showNote(reason + " This browser has no speech recognition either: please type your order.");
      setOff();
      return;
    }
    showNote(reason + " Using this browser's own speech recognition and voice instead.");
    rec = new Recognition();
    rec.continuous = !ptt.checked;
    rec.interimResults = true;
    rec.lang = document.documentElement.lang || "en";
    rec.onresult = (e) => {
      for (let i = e.resultIndex; i < e.results.length; i++) {
        const r = e.results[i];
        const text = r[0].transcript.trim();
        if (!r.isFinal) {
          kiosk.show({ type: "transcript", final: false, text });
          continue;
        }
        kiosk.show({ type: "transcript", final: true, text });
        if (!text) continue;
        spokenTurn = true;
        kiosk.ask(text);
        setState("thinking");
        armReplyTimer();
      }
    };
    rec.onerror = (e) => {
      // Silence and our own aborts are routine; anything else (no microphone, no
      // permission, the browser's speech service unreachable) would only fail again.
      if (e.error === "no-speech" || e.error === "aborted") return;
      showNote(reason + (e.error === "not-allowed" || e.error === "service-not-allowed"
        ? " The microphone is not allowed for this page; please type your order."
        : ` This browser's speech recognition is not working either (${e.error}); please type your order.`));
      setOff();
    };
    // Chrome ends recognition after a silence; hands-free listens again, except while
    // the reply is spoken (the synthesized voice would be heard as the guest).
    rec.onend = () => {
      if (on && engine === "browser" && !ptt.checked && state !== "speaking") listenAgain();
    };
    if (!ptt.checked) listenAgain();
    idle();
  }

  function listenAgain() {
    try { rec.start(); } catch (_) { /* already listening */ }
  }

  function stopBrowser() {
    if (engine !== "browser") return;
    if (rec) { rec.onend = null; rec.abort(); }
    rec = null;
    if (window.speechSynthesis) window.speechSynthesis.cancel();
  }

  kiosk.listen({
    event(ev) {
      if (!on || engine !== "browser" || ev.type !== "assistant_done" || !spokenTurn) return;
      spokenTurn = false;
      clearTimeout(replyTimer);
      if (!window.speechSynthesis || !ev.text) { idle(); return; }
      const u = new SpeechSynthesisUtterance(ev.text);
      u.lang = document.documentElement.lang || "en";
      u.onstart = () => { setState("speaking"); if (rec) rec.abort(); };
      u.onend = u.onerror = () => {
        if (state !== "speaking" && state !== "thinking") return;
        idle();
        if (on && rec && !ptt.checked) listenAgain();
      };
      window.speechSynthesis.speak(u);
    },
  });

  // ---- controls ----

  function setOff() {
    stopServer();
    stopBrowser();
    on = false;
    engine = null;
    holding = false;
    clearTimeout(replyTimer);
    toggle.setAttribute("aria-pressed", "false");
    label.textContent = "Talk";
    setState("off");
  }

  async function setOn() {
    on = true;
    toggle.setAttribute("aria-pressed", "true");
    label.textContent = "Voice on";
    setState("starting");
    showNote("");
    // Made inside the tap (before any await): browsers let audio start only from a
    // user gesture.
    if (window.AudioContext) ctx = new AudioContext({ latencyHint: "interactive" });
    const h = await health;
    if (!on) return;
    const sp = h && h.speech;
    if (sp && sp.mode === "offline" && !(sp.espeakNg && sp.recognizer)) {
      const missing = [!sp.recognizer && "speech recognizer", !sp.espeakNg && "espeak-ng"].filter(Boolean);
      if (ctx) { ctx.close().catch(() => {}); ctx = null; }
      startBrowser(`This server's local speech engines are missing (${missing.join(", ")}).`);
      return;
    }
    if (!ctx || !window.AudioWorkletNode || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      showNote("Voice needs a secure page (https) in a current browser; please type your order.");
      setOff();
      return;
    }
    try {
      await startServer();
    } catch (e) {
      showNote("The microphone is not available (" + (e && e.message ? e.message : e) + "); please type your order.");
      setOff();
    }
  }

  toggle.addEventListener("click", () => { if (on) setOff(); else setOn(); });

  function press() {
    if (!on || holding) return;
    holding = true;
    talk.setAttribute("aria-pressed", "true");
    if (state === "ready") setState("listening");
    if (engine === "browser" && rec) listenAgain();
  }
  function release() {
    if (!holding) return;
    holding = false;
    talk.setAttribute("aria-pressed", "false");
    if (engine === "server" && started) sendJson({ type: "stop" }); // the utterance ends here
    if (engine === "browser" && rec) rec.stop(); // delivers the final result
    if (state === "listening") idle();
  }
  talk.addEventListener("pointerdown", (e) => { e.preventDefault(); talk.setPointerCapture(e.pointerId); press(); });
  for (const t of ["pointerup", "pointercancel", "lostpointercapture"]) talk.addEventListener(t, release);
  const typing = (el) => el && (el.tagName === "INPUT" || el.tagName === "TEXTAREA" || el.isContentEditable);
  document.addEventListener("keydown", (e) => {
    if (e.code !== "Space" || !ptt.checked || !on || typing(document.activeElement)) return;
    e.preventDefault();
    if (!e.repeat) press();
  });
  document.addEventListener("keyup", (e) => {
    if (e.code !== "Space" || !ptt.checked || typing(document.activeElement)) return;
    e.preventDefault();
    release();
  });
  ptt.addEventListener("change", () => {
    talk.hidden = !ptt.checked;
    if (ptt.checked && engine === "server" && started) sendJson({ type: "stop" });
    if (engine === "browser" && rec) {
      rec.abort();
      rec.continuous = !ptt.checked;
      if (!ptt.checked) listenAgain();
    }
    if (on && (state === "listening" || state === "ready")) idle();
  });
  talk.hidden = !ptt.checked;
  setState("off");
})();
