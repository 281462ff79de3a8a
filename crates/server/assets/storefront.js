// Stonepot storefront: dietary filters, a cart kept on the server (the same cart the
// agent edits), chat with the agent, checkout (quote → read-back → confirm), and the
// session's live display feed for cart changes, order status and menu changes (an 86'd
// dish greys out without a reload).
(() => {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const menuEl = $("menu");
  const tenant = menuEl.dataset.tenant;
  const currency = menuEl.dataset.currency;
  let version = Number(menuEl.dataset.version);
  const storeKey = `stonepot.storefront.${tenant}`;
  const filters = new Set();
  let session = null;
  let quote = null;
  let events = null;
  let cartSig = "";

  const el = (tag, cls, text) => {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  };
  const exponent = (code) => ({ JPY: 0, KRW: 0, VND: 0, CLP: 0, ISK: 0, KWD: 3, BHD: 3, JOD: 3, OMR: 3, TND: 3 }[code] ?? 2);
  const money = (minor) => {
    const value = minor / 10 ** exponent(currency);
    try { return new Intl.NumberFormat("en-US", { style: "currency", currency }).format(value); } catch (_) { return `${value.toFixed(exponent(currency))} ${currency}`; }
  };
  const show = (node, text) => { node.textContent = text || ""; node.hidden = !text; };

  // ---- the API, authorized with the session's signed token ----------------------------
  async function api(method, path, body) {
    const headers = { Authorization: `Bearer ${session.token}` };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    let data = null;
    try { data = await res.json(); } catch (_) { data = null; }
    const message = data && data.error ? data.error.message : res.ok ? "" : `request failed (${res.status})`;
    return { ok: res.ok, status: res.status, data, message };
  }
  const conv = (rest) => `/api/conversations/${encodeURIComponent(session.sessionId)}${rest}`;

  async function startSession() {
    try {
      const kept = JSON.parse(localStorage.getItem(storeKey) || "null");
      if (kept && Date.parse(kept.tokenExpiresAt) - Date.now() > 10 * 60 * 1000) {
        session = kept;
        const r = await api("GET", conv("/cart"));
        if (r.ok) { renderCart(r.data); return; }
      }
    } catch (_) { /* a bad stored value: start afresh */ }
    const res = await fetch(`/s/${encodeURIComponent(tenant)}/session`, { method: "POST" });
    if (!res.ok) throw new Error(`could not start a session (${res.status})`);
    session = await res.json();
    try { localStorage.setItem(storeKey, JSON.stringify(session)); } catch (_) { /* private mode */ }
    const r = await api("GET", conv("/cart"));
    if (r.ok) renderCart(r.data);
  }

  // ---- dietary filters -----------------------------------------------------------------
  function applyFilters() {
    let any = false;
    for (const sec of menuEl.querySelectorAll(".menu-section")) {
      let visible = 0;
      for (const li of sec.querySelectorAll(".item")) {
        const tags = (li.dataset.dietary || "").split(" ");
        li.hidden = ![...filters].every((t) => tags.includes(t));
        if (!li.hidden) visible += 1;
      }
      sec.hidden = visible === 0;
      if (visible) any = true;
    }
    $("no-match").hidden = any;
  }
  for (const chip of document.querySelectorAll(".chip")) {
    chip.addEventListener("click", () => {
      const on = chip.getAttribute("aria-pressed") !== "true";
      chip.setAttribute("aria-pressed", String(on));
      if (on) filters.add(chip.dataset.tag); else filters.delete(chip.dataset.tag);
      applyFilters();
    });
  }

  // ---- the menu, live --------------------------------------------------------------------
  function setAvailable(itemId, available) {
    const li = [...menuEl.querySelectorAll(".item")].find((x) => x.dataset.item === itemId);
    if (!li) return;
    li.dataset.available = String(available);
    li.classList.toggle("off", !available);
    const b = li.querySelector(".add");
    b.disabled = !available;
    b.textContent = available ? "Add" : "Sold out";
  }
  async function refreshMenu() {
    const res = await fetch(`/s/${encodeURIComponent(tenant)}/menu?since=${version}`);
    if (res.status === 204 || !res.ok) return;
    menuEl.innerHTML = await res.text();
    version = Number(res.headers.get("x-menu-version") || version);
    menuEl.dataset.version = String(version);
    applyFilters();
  }
  function onMenu(m) {
    if (m.reload) { refreshMenu(); return; }
    for (const i of m.items || []) setAvailable(i.itemId, i.available && !i.removed);
    if (typeof m.version === "number") { version = m.version; menuEl.dataset.version = String(version); }
  }

  // ---- adding, with the modifier dialog ---------------------------------------------------
  const options = $("options");
  let choosing = null;
  function openOptions(li) {
    const groups = JSON.parse(li.dataset.groups);
    choosing = li.dataset.item;
    $("options-title").textContent = li.dataset.name;
    const box = $("options-groups");
    box.replaceChildren();
    for (const g of groups) {
      const fs = el("fieldset");
      const rule = g.max === 1 ? (g.min === 1 ? "choose 1" : "optional") : g.min > 0 ? `choose ${g.min} to ${g.max}` : `up to ${g.max}`;
      fs.append(el("legend", null, `${g.name} (${rule})`));
      for (const m of g.modifiers) {
        const label = el("label", "option");
        const input = el("input");
        input.type = g.max === 1 && g.min === 1 ? "radio" : "checkbox";
        input.name = g.id;
        input.value = m.id;
        input.checked = m.default;
        label.append(input, el("span", null, m.name + (m.delta ? ` ${m.delta}` : "")));
        fs.append(label);
      }
      // A group allows at most `max` choices: a new tick beyond that drops the oldest.
      const picked = [...fs.querySelectorAll("input:checked")];
      fs.addEventListener("change", (e) => {
        const input = e.target;
        if (input.type !== "checkbox") return;
        if (input.checked) picked.push(input); else picked.splice(picked.indexOf(input), 1);
        while (picked.length > g.max) picked.shift().checked = false;
      });
      box.append(fs);
    }
    $("options-qty").value = "1";
    show($("options-error"), "");
    options.showModal();
  }
  $("options-cancel").addEventListener("click", () => options.close());
  $("options-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const mods = [...$("options-groups").querySelectorAll("input:checked")].map((i) => i.value);
    const r = await addLine(choosing, Number($("options-qty").value), mods);
    if (r.ok) options.close(); else show($("options-error"), r.message);
  });
  menuEl.addEventListener("click", async (e) => {
    const b = e.target.closest(".add");
    if (!b) return;
    const li = b.closest(".item");
    if (li.dataset.groups) { openOptions(li); return; }
    b.disabled = true;
    const r = await addLine(li.dataset.item, 1, []);
    b.disabled = li.dataset.available !== "true";
    if (!r.ok) { show($("cart-error"), r.message); openCart(); }
  });
  async function addLine(itemId, quantity, modifiers) {
    const r = await api("POST", conv("/cart/lines"), { itemId, quantity, modifiers });
    if (r.ok) renderCart(r.data);
    return r;
  }

  // ---- the cart drawer --------------------------------------------------------------------
  const cartDialog = $("cart");
  function openCart() { if (!cartDialog.open) cartDialog.showModal(); }
  $("cart-open").addEventListener("click", openCart);
  $("cart-close").addEventListener("click", () => cartDialog.close());
  function renderCart(c) {
    $("cart-count").textContent = String(c.itemCount);
    const list = $("cart-lines");
    list.replaceChildren();
    for (const l of c.lines) {
      const li = el("li", "line");
      li.dataset.line = l.lineId;
      li.append(el("span", "name", l.name), el("span", "money", money(l.lineTotal)));
      if (l.modifiers.length) li.append(el("p", "mods", l.modifiers.map((m) => m.name).join(", ")));
      const step = el("div", "stepper");
      const minus = el("button", "secondary", "−");
      minus.type = "button";
      minus.setAttribute("aria-label", `One less ${l.name}`);
      const qty = el("span", "qty", l.quantity);
      qty.setAttribute("aria-label", `${l.quantity} × ${l.name}`);
      const plus = el("button", "secondary", "+");
      plus.type = "button";
      plus.setAttribute("aria-label", `One more ${l.name}`);
      const remove = el("button", "secondary", "Remove");
      remove.type = "button";
      remove.setAttribute("aria-label", `Remove ${l.name}`);
      minus.addEventListener("click", () => l.quantity > 1 ? changeLine(l.lineId, l.quantity - 1) : removeLine(l.lineId));
      plus.addEventListener("click", () => changeLine(l.lineId, l.quantity + 1));
      remove.addEventListener("click", () => removeLine(l.lineId));
      step.append(minus, qty, plus, remove);
      li.append(step);
      list.append(li);
    }
    $("cart-empty").hidden = c.lines.length > 0;
    $("cart-subtotal").textContent = money(c.subtotal);
    $("checkout").disabled = c.lines.length === 0;
    // A quote is for the cart it was made from: hide it once the cart differs.
    const sig = JSON.stringify(c.lines);
    if (quote && sig !== cartSig) { quote = null; $("quote").hidden = true; }
    cartSig = sig;
  }
  async function refreshCart() {
    const r = await api("GET", conv("/cart"));
    if (r.ok) renderCart(r.data);
  }
  async function changeLine(lineId, quantity) {
    const r = await api("PATCH", conv(`/cart/lines/${encodeURIComponent(lineId)}`), { quantity });
    if (r.ok) { show($("cart-error"), ""); renderCart(r.data); } else show($("cart-error"), r.message);
  }
  async function removeLine(lineId) {
    const r = await api("DELETE", conv(`/cart/lines/${encodeURIComponent(lineId)}`));
    if (r.ok) { show($("cart-error"), ""); renderCart(r.data); } else show($("cart-error"), r.message);
  }

  // ---- checkout ------------------------------------------------------------------------------
  async function askQuote() {
    const r = await api("POST", conv("/quote"), {});
    if (!r.ok) { show($("cart-error"), r.message); return; }
    show($("cart-error"), "");
    quote = r.data;
    $("quote-readback").textContent = quote.readBack;
    const t = $("quote-totals");
    t.replaceChildren();
    const row = (label, minor, cls) => {
      const tr = t.insertRow();
      if (cls) tr.className = cls;
      tr.append(el("td", null, label), el("td", "n", money(minor)));
    };
    row("Subtotal", quote.subtotal);
    if (quote.tax) row("Tax", quote.tax);
    if (quote.serviceCharge) row("Service", quote.serviceCharge);
    if (quote.tip) row("Tip", quote.tip);
    row("Total", quote.total, "total");
    $("quote").hidden = false;
    $("confirm").focus();
  }
  $("checkout").addEventListener("click", askQuote);
  $("confirm").addEventListener("click", async () => {
    if (!quote) return;
    const b = $("confirm");
    b.disabled = true;
    const r = await api("POST", conv("/confirm"), { quoteHash: quote.hash, orderType: $("order-type").value });
    b.disabled = false;
    if (r.ok) {
      quote = null;
      $("quote").hidden = true;
      showOrder(r.data.id, r.data.status);
      refreshCart();
    } else if (r.status === 409) {
      // The cart or the menu moved since the quote: show the new one to confirm.
      show($("cart-error"), r.message);
      await askQuote();
    } else {
      show($("cart-error"), r.message);
    }
  });
  function showOrder(id, status) {
    if (!id) return;
    const words = String(status || "").replace(/_/g, " ");
    $("order").hidden = false;
    $("order-id").textContent = id;
    $("order-status").textContent = words;
    show($("order-banner"), `Order ${id}: ${words}`);
  }

  // ---- the session's live display feed --------------------------------------------------------
  function connectFeed() {
    events = new EventSource(session.eventsPath);
    events.addEventListener("snapshot", (e) => {
      const m = JSON.parse(e.data);
      const s = (m.state && m.state.components) || {};
      if (s.order && s.order.type === "order_status") showOrder(s.order.data.orderId, s.order.data.status);
      refreshCart();
      refreshMenu(); // changes made while we were away (204 when none)
    });
    events.addEventListener("update", (e) => {
      const u = JSON.parse(e.data).update || {};
      if (u.type === "cart") refreshCart();
      if (u.type === "order_status") showOrder(u.data.orderId, u.data.status);
    });
    events.addEventListener("menu", (e) => onMenu(JSON.parse(e.data)));
  }

  // ---- chat with the agent (the kiosk's socket protocol) ----------------------------------------
  const log = $("log");
  const form = $("composer");
  const input = $("text");
  const send = $("send");
  const link = $("link");
  let socket = null;
  let backoff = 250;
  let current = null;
  const pending = [];
  const add = (cls, text) => { const li = el("li", cls, text); log.append(li); log.scrollTop = log.scrollHeight; return li; };
  const state = (s, label) => { link.dataset.state = s; link.textContent = label; };
  function onEvent(ev) {
    switch (ev.type) {
      case "assistant_delta":
        if (!current) current = add("msg assistant", "");
        current.textContent += ev.text;
        log.scrollTop = log.scrollHeight;
        break;
      case "tool_result":
        if (!ev.ok) add("tool", "✗ " + ((ev.result && ev.result.error && ev.result.error.message) || "refused"));
        break;
      case "assistant_done":
        if (!current && ev.text) add("msg assistant", ev.text);
        current = null;
        send.disabled = false;
        refreshCart();
        break;
      case "error":
        add("msg error", ev.message || "Something went wrong.");
        current = null;
        send.disabled = false;
        break;
      default: break;
    }
  }
  function connectChat() {
    state("connecting", "connecting…");
    const url = new URL(session.socketPath, location.href);
    url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
    socket = new WebSocket(url);
    socket.onopen = () => {
      backoff = 250;
      state("live", "live");
      while (pending.length && socket.readyState === WebSocket.OPEN) socket.send(pending.shift());
    };
    socket.onmessage = (m) => { try { onEvent(JSON.parse(m.data)); } catch (_) { /* ignore a bad frame */ } };
    socket.onclose = () => {
      state("offline", "reconnecting…");
      current = null;
      send.disabled = false;
      setTimeout(connectChat, backoff);
      backoff = Math.min(backoff * 2, 5000);
    };
  }
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const text = input.value.trim();
    if (!text || !session) return;
    add("msg user", text);
    current = null;
    input.value = "";
    const frame = JSON.stringify({ type: "user_text", text });
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(frame); else pending.push(frame);
  });

  startSession()
    .then(() => { connectFeed(); connectChat(); document.body.dataset.ready = "true"; })
    .catch((e) => { state("offline", "could not connect"); add("msg error", String(e.message || e)); });
})();
