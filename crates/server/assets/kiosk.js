// Stonepot kiosk: the guest's chat over /ws/restaurant/{id}, streaming replies beside
// the live display (an iframe of the session's display page). Reconnects by itself.
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
  const pending = []; // messages typed while disconnected

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
    socket.onopen = () => {
      backoff = 250;
      state("live", "live");
      while (pending.length && socket.readyState === WebSocket.OPEN) socket.send(pending.shift());
    };
    socket.onmessage = (m) => { try { onEvent(JSON.parse(m.data)); } catch (_) { /* ignore */ } };
    socket.onclose = () => {
      state("offline", "reconnecting…");
      current = null;
      send.disabled = false;
      setTimeout(connect, backoff);
      backoff = Math.min(backoff * 2, 5000);
    };
  }

  function say(text) {
    text = text.trim();
    if (!text) return;
    add("msg user", text);
    current = null;
    const frame = JSON.stringify({ type: "user_text", text });
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(frame); else pending.push(frame);
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
  connect();
})();
