// The storefront on a phone, end to end in headless Chromium: filter by a dietary tag,
// add dishes (one through the options dialog), see an 86 grey a dish out live, order one
// more dish by chat, check out (quote → read-back → confirm) and watch the order's
// status move live. Usage:
//   STONEPOT_URL=http://127.0.0.1:PORT STONEPOT_KEY=<demo key> node storefront.test.mjs
import { chromium } from "playwright-core";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";

const base = process.env.STONEPOT_URL;
const key = process.env.STONEPOT_KEY;
assert.ok(base, "set STONEPOT_URL");
assert.ok(key, "set STONEPOT_KEY (the demo tenant's key, to 86 a dish and move the order)");
const tenant = "demo-restaurant";
const artifacts = new URL("./artifacts/", import.meta.url).pathname;
mkdirSync(artifacts, { recursive: true });

const asStaff = (method, path, body) =>
  fetch(`${base}${path}`, {
    method,
    headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json" },
    body: JSON.stringify(body),
  }).then(async (r) => {
    const text = await r.text();
    assert.ok(r.ok, `${method} ${path}: ${r.status} ${text}`);
    return JSON.parse(text);
  });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});

try {
  const context = await browser.newContext({
    viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true, reducedMotion: "reduce",
  });
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(`${base}/s/${tenant}`);
  await page.waitForSelector('body[data-ready="true"]');
  await page.waitForSelector('#link[data-state="live"]');

  // The page fits the phone: nothing wider than the viewport.
  const overflow = await page.evaluate(() => Math.max(
    document.documentElement.scrollWidth - window.innerWidth,
    ...[...document.querySelectorAll(".item, .chat")].map((e) => e.getBoundingClientRect().right - window.innerWidth)));
  assert.ok(overflow <= 0, `no sideways scrolling on a phone (overflow ${overflow}px)`);

  // Filter by "vegan": only vegan dishes stay, the pepperoni pizza goes.
  await page.locator('.chip[data-tag="vegan"]').tap();
  assert.equal(await page.locator('.chip[data-tag="vegan"]').getAttribute("aria-pressed"), "true");
  const shown = await page.$$eval(".item:not([hidden])", (els) => els.map((e) => e.dataset.dietary));
  assert.ok(shown.length > 0, "some vegan dishes");
  for (const tags of shown) assert.match(tags, /\bvegan\b/);
  assert.equal(await page.locator('.item[data-item="pepperoni"]').isHidden(), true);
  // Add the first vegan dish.
  const vegan = page.locator(".item:not([hidden])").first();
  const veganName = await vegan.getAttribute("data-name");
  await vegan.locator(".add").tap();
  if (await page.locator("#options").isVisible()) await page.locator("#options-add").tap();
  await page.waitForFunction(() => document.getElementById("cart-count").textContent === "1");
  await page.locator('.chip[data-tag="vegan"]').tap();

  // A margherita without basil, through the options dialog.
  await page.locator('.item[data-item="margherita"] .add').tap();
  await page.locator("#options").waitFor({ state: "visible" });
  await page.locator("#options label", { hasText: "No basil" }).tap();
  await page.locator("#options-add").tap();
  await page.locator("#options").waitFor({ state: "hidden" });
  await page.waitForFunction(() => document.getElementById("cart-count").textContent === "2");

  // The kitchen 86es the tiramisu: it greys out without a reload, then comes back.
  const tiramisu = page.locator('.item[data-item="tiramisu"]');
  assert.equal(await tiramisu.locator(".add").isEnabled(), true);
  await asStaff("POST", `/api/tenants/${tenant}/menu/items/tiramisu/availability`, { available: false });
  await page.waitForSelector('.item[data-item="tiramisu"].off .add:disabled');
  assert.equal(await tiramisu.locator(".add").innerText(), "Sold out");
  await asStaff("POST", `/api/tenants/${tenant}/menu/items/tiramisu/availability`, { available: true });
  await page.waitForSelector('.item[data-item="tiramisu"]:not(.off) .add:enabled');

  // One message to the agent adds a tiramisu to the same cart.
  await page.locator("#text").fill("one tiramisu please");
  await page.locator("#send").tap();
  await page.waitForFunction(() => {
    const a = [...document.querySelectorAll(".msg.assistant")];
    return a.length >= 2 && a[a.length - 1].textContent.trim().length > 0;
  });
  await page.waitForFunction(() => document.getElementById("cart-count").textContent === "3");

  // Checkout: the quote's read-back, then confirm.
  await page.locator("#cart-open").tap();
  await page.locator("#cart").waitFor({ state: "visible" });
  const lines = await page.locator("#cart-lines").innerText();
  assert.match(lines, /Margherita Pizza/);
  assert.match(lines, /No basil/);
  assert.match(lines, /Tiramisu/);
  assert.match(lines, new RegExp(veganName));
  await page.locator("#checkout").tap();
  await page.locator("#quote").waitFor({ state: "visible" });
  const readBack = await page.locator("#quote-readback").innerText();
  assert.match(readBack, /Margherita Pizza/, readBack);
  assert.match(await page.locator("#quote-totals").innerText(), /Total/);
  await page.locator("#order-type").selectOption("pickup");
  await page.locator("#confirm").tap();
  await page.locator("#order").waitFor({ state: "visible" });
  const orderId = await page.locator("#order-id").innerText();
  assert.match(orderId, /^ord-/);
  await page.waitForFunction(() => document.getElementById("cart-count").textContent === "0");

  // Staff move the order: the page follows live.
  await asStaff("POST", `/api/tenants/${tenant}/orders/${orderId}/status`, { to: "in_kitchen" });
  await page.waitForFunction(() => /in kitchen/.test(document.getElementById("order-status").textContent));
  assert.match(await page.locator("#order-banner").innerText(), /in kitchen/);

  await page.screenshot({ path: `${artifacts}storefront.png`, fullPage: true });
  assert.deepEqual(errors, [], "no script errors");
  console.log("ok  storefront");
} finally {
  await browser.close();
}
