// Stonepot kiosk: the guest's chat over /ws/restaurant/{id}, streaming replies beside
// the live display (an iframe of the session's display page). Reconnects by itself.
// Voice (kiosk-voice.js) shares the socket through `window.stonepotKiosk`: it sends
// microphone frames and hears every event and the reply audio; spoken turns land in the
// same log as typed ones.
(() => {
  "use strict";
  const log = document.getElementById("log");
  const form = document.getElementById("composer");
  const input = document.getElementById("text");
  const send = document.getElementById("send");
  const link = document.getElementById("link");
  const url = new URL(log.dataset.socket, location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  let socket = null;
  let backoff = 250;
  let current = null; // the assistant bubble being streamed
  let heard = null; // the guest's spoken words while the recognizer is still at them
  const pending = []; // messages typed while disconnected
  const listeners = []; // {event(ev), audio(ArrayBuffer), open(), close()}
  const tell = (what, arg) => { for (const l of listeners) if (l[what]) l[what](arg); };

  const add = (cls, text) => {
    const li = document.createElement("li");
    li.className = cls;
    li.textContent = text;
    log.append(li);
    log.scrollTop = log.scrollHeight;
    return li;
  };
  const state = (s, label) => { link.dataset.state = s; link.textContent = label; };
  const describe = (ev) => {
    const a = ev.arguments || {};
    const what = a.item || a.line_id || a.query || a.client || a.account || "";
    return `${ev.name.replace(/_/g, " ")}${what ? ": " + what : ""}`;
  };

  function onEvent(ev) {
    switch (ev.type) {
      case "ready": break;
      case "transcript":
        // What the guest said: a partial hypothesis updates one bubble in place; the
        // final one settles it (or removes it when nothing was understood).
        if (!heard) heard = add("msg user spoken partial", "");
        heard.textContent = ev.text || "";
        if (ev.final) {
          if (!heard.textContent.trim()) heard.remove();
          else heard.classList.remove("partial");
          heard = null;
          current = null;
        }
        log.scrollTop = log.scrollHeight;
        break;
      case "assistant_delta":
        if (!current) current = add("msg assistant", "");
        current.textContent += ev.text;
        log.scrollTop = log.scrollHeight;
        break;
      case "tool_call": add("tool", "… " + describe(ev)); break;
      case "tool_result":
        if (!ev.ok) add("tool refused", "✗ " + ((ev.result && ev.result.error && ev.result.error.message) || "refused"));
        break;
      case "assistant_done":
        if (!current && ev.text) add("msg assistant", ev.text);
        current = null;
        send.disabled = false;
        break;
      case "error":
        if (ev.code === "voice_unavailable") break; // the voice controller says so itself
        add("msg error", ev.message || "Something went wrong.");
        current = null;
        send.disabled = false;
        break;
      default: break;
    }
  }

  function connect() {
    state("connecting", "connecting…");
    socket = new WebSocket(url);
    socket.binaryType = "arraybuffer";
    socket.onopen = () => {
      backoff = 250;
      state("live", "live");
      while (pending.length && socket.readyState === WebSocket.OPEN) socket.send(pending.shift());
      tell("open");
    };
    socket.onmessage = (m) => {
      if (typeof m.data !== "string") { tell("audio", m.data); return; }
      let ev;
      try { ev = JSON.parse(m.data); } catch (_) { return; }
      onEvent(ev);
      tell("event", ev);
    };
    socket.onclose = () => {
      state("offline", "reconnecting…");
      current = null;
      if (heard) { heard.remove(); heard = null; }
      send.disabled = false;
      tell("close");
      setTimeout(connect, backoff);
      backoff = Math.min(backoff * 2, 5000);
    };
  }

  /** Sends the guest's words as a turn (queued while disconnected). */
  function ask(text) {
    current = null;
    const frame = JSON.stringify({ type: "user_text", text });
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(frame); else pending.push(frame);
  }

  function say(text) {
    text = text.trim();
    if (!text) return;
    add("msg user", text);
    ask(text);
  }

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    say(input.value);
    input.value = "";
    input.focus();
  });
  for (const chip of document.querySelectorAll(".chip")) {
    chip.addEventListener("click", () => say(chip.textContent));
  }
  window.stonepotKiosk = {
    /** Sends a frame now if the socket is open (audio is never queued: stale audio is
     *  worse than none); returns whether it went. */
    send: (data) => {
      if (!socket || socket.readyState !== WebSocket.OPEN) return false;
      socket.send(data);
      return true;
    },
    ask,
    /** Shows an event in the log as if the server sent it (the browser's own speech
     *  recognition shows its transcripts with it). */
    show: onEvent,
    listen: (l) => listeners.push(l),
  };
  connect();
})();
