// Stonepot display client: applies the snapshot and updates in seq order, resumes with
// ?since= after a drop, and acknowledges what it rendered (display receipts).
(() => {
  "use strict";
  const stage = document.getElementById("stage");
  const statusEl = document.getElementById("status");
  const empty = document.getElementById("empty");
  const { session, token, currency } = stage.dataset;
  const components = new Map(); // key -> element
  let seq = 0;
  let socket = null;
  let backoff = 250;

  const el = (tag, cls, text) => {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  };
  const exponent = (code) => ({ JPY: 0, KRW: 0, VND: 0, CLP: 0, ISK: 0, KWD: 3, BHD: 3, JOD: 3, OMR: 3, TND: 3 }[code] ?? 2);
  const money = (m) => {
    if (!m || typeof m.minor !== "number") return "";
    const code = m.currency || currency;
    const value = m.minor / 10 ** exponent(code);
    try {
      return new Intl.NumberFormat(undefined, { style: "currency", currency: code }).format(value);
    } catch (_) {
      return `${value.toFixed(exponent(code))} ${code}`;
    }
  };
  const tags = (d) => {
    const box = el("div", "tags");
    for (const t of d.dietary || []) box.append(el("span", "tag", t.replace(/_/g, " ")));
    for (const t of d.allergens || []) box.append(el("span", "tag allergen", "contains " + t.replace(/_/g, " ")));
    return box;
  };
  const linesTable = (d) => {
    const t = el("table");
    for (const l of d.lines || []) {
      const r = t.insertRow();
      r.append(el("td", "n", `${l.quantity}×`));
      const name = el("td", null, l.name);
      if (l.modifiers && l.modifiers.length) name.append(el("div", "muted", l.modifiers.join(", ")));
      r.append(name, el("td", "n money", money(l.lineTotal || l.unitPrice)));
    }
    const row = (label, m, cls) => {
      if (!m) return;
      const r = t.insertRow();
      if (cls) r.className = cls;
      r.append(el("td"), el("td", null, label), el("td", "n money", money(m)));
    };
    row("Subtotal", d.subtotal);
    row("Tax", d.tax);
    if (d.tip && d.tip.minor) row("Tip", d.tip);
    row("Total", d.total, "total");
    return t;
  };

  const renderers = {
    dish_card(d, c) {
      if (d.imageUrl) c.append(Object.assign(el("img"), { src: d.imageUrl, alt: "" }));
      c.append(el("h2", null, d.name));
      if (d.description) c.append(el("p", "desc", d.description));
      c.append(el("div", "price", money(d.price)));
      c.append(tags(d));
      if (d.available === false) { c.classList.add("unavailable"); c.append(el("p", "muted", "Currently unavailable")); }
    },
    menu_section(d, c) {
      c.append(el("h2", null, d.title));
      const t = el("table");
      for (const i of d.items || []) {
        const r = t.insertRow();
        if (i.available === false) r.className = "unavailable";
        r.append(el("td", null, i.name), el("td", "n money", money(i.price)));
      }
      c.append(t);
    },
    cart(d, c) { c.append(el("h2", null, "Your order")); c.append(linesTable(d)); },
    order_summary(d, c) { c.append(el("h2", null, d.orderId ? `Order ${d.orderId}` : "Order")); c.append(linesTable(d)); if (d.status) c.append(el("p", "muted", d.status)); },
    quote(d, c) {
      c.append(el("h2", null, "Please confirm"));
      if (d.readBack) c.append(el("p", null, d.readBack));
      c.append(linesTable(d));
      if (d.expiresAt) c.append(el("p", "muted", "Price held until " + new Date(d.expiresAt).toLocaleTimeString()));
      if (d.hash) {
        // A tap confirms exactly this quote (by its hash); a stale one is refused and
        // the server shows a fresh quote in its place.
        const b = el("button", "confirm", "Confirm order");
        b.type = "button";
        const note = el("p", "muted");
        b.onclick = async () => {
          b.disabled = true;
          note.textContent = "Placing your order…";
          try {
            const r = await fetch(`/api/conversations/${encodeURIComponent(session)}/confirm`, {
              method: "POST",
              headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
              body: JSON.stringify({ quoteHash: d.hash }),
            });
            const body = await r.json().catch(() => ({}));
            note.textContent = r.ok ? "Order placed." : (body.error && body.error.message) || "Could not place the order.";
            if (!r.ok) b.disabled = false;
          } catch (_) {
            note.textContent = "Could not reach the server; try again.";
            b.disabled = false;
          }
        };
        c.append(b, note);
      }
    },
    kitchen_ticket(d, c) {
      c.append(el("h2", null, `#${d.number} · ${String(d.status).replace(/_/g, " ")}`));
      const ul = el("ul");
      for (const l of d.lines || []) ul.append(el("li", null, `${l.quantity} × ${l.name}${(l.modifiers || []).length ? " (" + l.modifiers.join(", ") + ")" : ""}`));
      c.append(ul);
    },
    order_status(d, c) {
      c.append(el("h2", null, `Order ${d.orderId}`));
      c.append(el("div", "state", String(d.status).replace(/_/g, " ")));
      if (d.etaMinutes !== undefined && d.etaMinutes !== null) c.append(el("p", null, `About ${d.etaMinutes} min`));
      if (d.message) c.append(el("p", "muted", d.message));
    },
    message(d, c) { c.classList.add("tone-" + (d.tone || "info")); c.append(el("p", null, d.text)); },
    account_card(d, c) {
      c.append(el("h2", null, d.name));
      if (d.kind) c.append(el("div", "muted", d.kind));
      const b = el("div", "price", money(d.balance));
      if (d.balance && d.balance.minor < 0) b.classList.add("neg");
      c.append(b);
      if (d.maskedNumber) c.append(el("div", "muted", d.maskedNumber));
    },
    transaction_list(d, c) {
      c.append(el("h2", null, d.title || "Transactions"));
      const t = el("table");
      for (const x of d.transactions || []) {
        const r = t.insertRow();
        const amt = el("td", "n money", money(x.amount));
        if (x.amount && x.amount.minor < 0) amt.classList.add("neg");
        r.append(el("td", "muted", x.date), el("td", null, x.description), amt);
      }
      c.append(t);
    },
    comparison_table(d, c) {
      if (d.title) c.append(el("h2", null, d.title));
      const t = el("table");
      const h = t.createTHead().insertRow();
      h.append(el("th"));
      for (const col of d.columns || []) h.append(el("th", null, col));
      const body = t.createTBody();
      for (const row of d.rows || []) {
        const r = body.insertRow();
        r.append(el("th", null, row.label));
        for (const v of row.values || []) r.append(el("td", null, v));
      }
      c.append(t);
    },
    chart(d, c) {
      if (d.title) c.append(el("h2", null, d.title));
      for (const s of d.series || []) {
        c.append(el("div", "muted", s.name));
        const bars = el("div", "bars");
        const pts = s.points || [];
        const max = Math.max(1, ...pts.map((p) => Math.abs(p.y)));
        for (const p of pts) {
          const b = el("div");
          b.style.height = `${(Math.abs(p.y) / max) * 100}%`;
          b.title = `${p.x}: ${p.y}`;
          bars.append(b);
        }
        c.append(bars);
      }
    },
    card(d, c) {
      if (d.imageUrl) c.append(Object.assign(el("img"), { src: d.imageUrl, alt: "" }));
      c.append(el("h2", null, d.title));
      if (d.body) c.append(el("p", null, d.body));
      if (d.fields && d.fields.length) {
        const t = el("table");
        for (const f of d.fields) { const r = t.insertRow(); r.append(el("th", null, f.label), el("td", null, f.value)); }
        c.append(t);
      }
    },
  };

  const render = (key, env) => {
    const c = el("section", "c " + env.type);
    c.dataset.key = key;
    c.dataset.type = env.type;
    const r = renderers[env.type] || renderers.card;
    try { r(env.data || {}, c); } catch (e) { c.append(el("p", "muted", "Could not show this item")); }
    const old = components.get(key);
    if (old) old.replaceWith(c); else stage.append(c);
    components.set(key, c);
  };
  const remove = (key) => { const old = components.get(key); if (old) old.remove(); components.delete(key); };
  const refreshEmpty = () => { empty.hidden = components.size > 0; };

  const apply = (msg) => {
    if (msg.type === "snapshot") {
      for (const k of [...components.keys()]) remove(k);
      const st = msg.state || {};
      for (const k of st.order || Object.keys(st.components || {})) render(k, st.components[k]);
      seq = msg.seq;
    } else if (msg.type === "update") {
      if (msg.seq <= seq) return; // already shown
      const u = msg.update;
      if (u.op === "remove") remove(u.key); else render(u.key, u);
      seq = msg.seq;
    } else if (msg.type === "reset") {
      seq = 0;
      return;
    } else {
      return;
    }
    refreshEmpty();
    stage.dataset.seq = String(seq);
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: "ack", seq }));
  };

  const setStatus = (state, text) => { statusEl.dataset.state = state; statusEl.textContent = text; };

  const connect = () => {
    const proto = location.protocol === "https:" ? "wss" : "ws";
    let url = `${proto}://${location.host}/conversation/${encodeURIComponent(session)}/display?token=${encodeURIComponent(token)}`;
    if (seq > 0) url += `&since=${seq}`;
    socket = new WebSocket(url);
    socket.onopen = () => { backoff = 250; setStatus("live", "live"); };
    socket.onmessage = (ev) => { try { apply(JSON.parse(ev.data)); } catch (_) { /* ignore a bad frame */ } };
    socket.onclose = (ev) => {
      if (ev.code === 4401 || ev.code === 4404) { setStatus("offline", ev.code === 4401 ? "link expired" : "no such session"); return; }
      setStatus("offline", "reconnecting…");
      setTimeout(connect, backoff);
      backoff = Math.min(backoff * 2, 5000);
    };
  };
  window.stonepotDisplay = { get seq() { return seq; }, get socket() { return socket; } };
  connect();
})();
