// Stonepot kitchen board: staff sign in with a staff key of the tenant or a staff token
// (a JWT, pasted or handed over as #token=… by a sign-in page) kept for this tab only;
// the board's display session streams one kitchen_ticket card per open order, and the
// buttons move orders along through the same API the counter uses.
(() => {
  "use strict";
  const board = document.getElementById("board");
  const tenant = board.dataset.tenant;
  const form = document.getElementById("login");
  const keyInput = document.getElementById("key");
  const loginError = document.getElementById("login-error");
  const list = document.getElementById("tickets");
  const empty = document.getElementById("empty");
  const statusEl = document.getElementById("status");
  const stored = `stonepot.kitchen.${tenant}`;
  const cards = new Map(); // order id -> {data, el}
  let key = sessionStorage.getItem(stored);
  // A sign-in redirect may hand the token over in the fragment, which never reaches a
  // server or a log; take it and clear it from the address bar.
  const handed = new URLSearchParams(location.hash.slice(1)).get("token");
  if (handed) {
    key = handed;
    sessionStorage.setItem(stored, key);
    history.replaceState(null, "", location.pathname + location.search);
  }
  let socketPath = null;
  let socket = null;
  let seq = 0;
  let backoff = 250;

  const el = (tag, cls, text) => {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  };
  const setStatus = (state, text) => { statusEl.dataset.state = state; statusEl.textContent = text; };
  const label = (s) => String(s).replace(/_/g, " ");

  // What staff can do next with an order in each status.
  const nextSteps = (d) => {
    switch (d.status) {
      case "confirmed": case "paid": return [["in_kitchen", "Start"]];
      case "in_kitchen": return [["ready", "Ready"]];
      case "ready": return d.paid ? [["completed", "Hand over"]] : [["paid", "Mark paid"]];
      default: return [];
    }
  };

  const move = async (d, to, button, problem) => {
    button.disabled = true;
    problem.textContent = "";
    try {
      const r = await fetch(`/api/tenants/${encodeURIComponent(tenant)}/orders/${encodeURIComponent(d.orderId)}/status`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
        body: JSON.stringify({ to, by: "kitchen" }),
      });
      if (!r.ok) {
        const body = await r.json().catch(() => ({}));
        problem.textContent = (body.error && body.error.message) || `refused (${r.status})`;
        button.disabled = false;
      }
      // On success the board's socket brings the new card.
    } catch (_) {
      problem.textContent = "Could not reach the server; try again.";
      button.disabled = false;
    }
  };

  const render = (key, d) => {
    const card = el("article", "ticket");
    card.dataset.order = d.orderId;
    card.dataset.status = d.status;
    card.dataset.number = String(d.number);
    card.append(el("h2", null, `#${d.number}`));
    const when = d.placedAt ? new Date(d.placedAt).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }) : "";
    card.append(el("p", "meta", [label(d.status), label(d.orderType || ""), d.paid ? "paid" : "not paid", when].filter(Boolean).join(" · ")));
    const ul = el("ul");
    for (const l of d.lines || []) {
      const li = el("li", null, `${l.quantity} × ${l.name}`);
      if ((l.modifiers || []).length) li.append(el("div", "mods", l.modifiers.join(", ")));
      ul.append(li);
    }
    card.append(ul);
    const actions = el("div", "actions");
    const problem = el("p", "problem");
    for (const [to, text] of nextSteps(d)) {
      const b = el("button", null, text);
      b.type = "button";
      b.dataset.to = to;
      b.onclick = () => move(d, to, b, problem);
      actions.append(b);
    }
    card.append(actions, problem);
    const old = cards.get(key);
    if (old) old.el.replaceWith(card);
    cards.set(key, { data: d, el: card });
    // Oldest ticket first.
    const sorted = [...cards.values()].sort((a, b) => a.data.number - b.data.number);
    for (const c of sorted) list.append(c.el);
  };
  const remove = (key) => { const c = cards.get(key); if (c) c.el.remove(); cards.delete(key); };

  const apply = (msg) => {
    if (msg.type === "snapshot") {
      for (const k of [...cards.keys()]) remove(k);
      const st = msg.state || {};
      for (const [k, c] of Object.entries(st.components || {})) if (c.type === "kitchen_ticket") render(k, c.data);
      seq = msg.seq;
    } else if (msg.type === "update") {
      if (msg.seq <= seq) return;
      const u = msg.update;
      if (u.op === "remove") remove(u.key); else if (u.type === "kitchen_ticket") render(u.key, u.data);
      seq = msg.seq;
    } else if (msg.type === "reset") {
      seq = 0;
      return;
    } else {
      return;
    }
    empty.hidden = cards.size > 0;
    board.dataset.seq = String(seq);
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: "ack", seq }));
  };

  const connect = () => {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    const url = new URL(socketPath, location.href);
    url.protocol = proto;
    if (seq > 0) url.searchParams.set("since", String(seq));
    socket = new WebSocket(url);
    socket.onopen = () => { backoff = 250; setStatus("live", "live"); };
    socket.onmessage = (ev) => { try { apply(JSON.parse(ev.data)); } catch (_) { /* ignore a bad frame */ } };
    socket.onclose = (ev) => {
      if (ev.code === 4401) { open(); return; } // the board link expired: sign it again
      setStatus("offline", "reconnecting…");
      setTimeout(connect, backoff);
      backoff = Math.min(backoff * 2, 5000);
    };
  };

  const open = async () => {
    form.hidden = true;
    setStatus("offline", "connecting…");
    let r;
    try {
      r = await fetch(`/api/tenants/${encodeURIComponent(tenant)}/kitchen`, {
        method: "POST",
        headers: { authorization: `Bearer ${key}` },
      });
    } catch (_) {
      setStatus("offline", "offline");
      setTimeout(open, 2000);
      return;
    }
    if (r.status === 401 || r.status === 403) {
      sessionStorage.removeItem(stored);
      key = null;
      loginError.textContent = "That key or token is not valid for this kitchen.";
      form.hidden = false;
      setStatus("offline", "signed out");
      return;
    }
    const b = await r.json();
    socketPath = b.socketPath;
    connect();
  };

  form.onsubmit = (ev) => {
    ev.preventDefault();
    key = keyInput.value.trim();
    if (!key) return;
    sessionStorage.setItem(stored, key);
    loginError.textContent = "";
    open();
  };
  window.stonepotKitchen = { get seq() { return seq; }, get tickets() { return [...cards.values()].map((c) => c.data); } };
  if (key) open(); else { form.hidden = false; keyInput.focus(); }
})();
