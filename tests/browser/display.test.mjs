// Opens the themed display page in headless Chromium, posts updates over HTTP, and checks
// the DOM follows — in the tenant's theme — including catching up after the socket is cut.
// Usage: STONEPOT_URL=http://127.0.0.1:PORT STONEPOT_KEY=… node display.test.mjs
import { chromium } from "playwright-core";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";

const base = process.env.STONEPOT_URL;
const key = process.env.STONEPOT_KEY;
assert.ok(base && key, "set STONEPOT_URL and STONEPOT_KEY");
const artifacts = new URL("./artifacts/", import.meta.url).pathname;
mkdirSync(artifacts, { recursive: true });

const api = async (path, body) => {
  const res = await fetch(base + path, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
    body: JSON.stringify(body),
  });
  const json = await res.json();
  assert.equal(res.status, 200, `${path}: ${JSON.stringify(json)}`);
  return json;
};

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});

async function scenario(category, tenant, steps) {
  const id = `browser-${category}-${Date.now()}`;
  const init = await api(`/conversation/${id}/init`, { tenantId: tenant, category });
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 }, reducedMotion: "reduce" });
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(init.displayUrl);
  await page.waitForSelector('#status[data-state="live"]');
  await steps({ id, page, post: (body) => api(`/conversation/${id}/update`, body) });
  await page.screenshot({ path: `${artifacts}${category}.png`, fullPage: true });
  assert.deepEqual(errors, [], "no script errors");
  await page.close();
  console.log(`ok  ${category}`);
}

const waitSeq = (page, seq) =>
  page.waitForFunction((n) => Number(document.getElementById("stage").dataset.seq) >= n, seq);

await scenario("restaurant", "demo-restaurant", async ({ page, post }) => {
  // The theme is applied as CSS custom properties from the tenant's record.
  const primary = await page.evaluate(() =>
    getComputedStyle(document.documentElement).getPropertyValue("--primary").trim());
  assert.equal(primary, "#b3261e");
  await post({ type: "dish_card", data: { name: "Margherita Pizza", description: "Classic pizza", price: 12.99, dietary: ["vegetarian"] } });
  await waitSeq(page, 1);
  const card = page.locator('section[data-type="dish_card"]');
  assert.match(await card.innerText(), /Margherita Pizza/);
  assert.match(await card.innerText(), /12\.99/);
  await post({ type: "cart", data: { lines: [{ name: "Margherita Pizza", quantity: 2, unitPrice: 12.99, modifiers: ["No basil"] }] } });
  await waitSeq(page, 2);
  assert.match(await page.locator('section[data-type="cart"]').innerText(), /25\.98/);

  // Cut the socket; post while it is down; the page resumes with ?since= and catches up.
  await page.evaluate(() => window.stonepotDisplay.socket.close());
  await post({ type: "message", key: "greeting", data: { text: "Anything to drink?" } });
  await post({ type: "cart", data: { lines: [{ name: "Margherita Pizza", quantity: 3, unitPrice: 12.99 }] } });
  await waitSeq(page, 4);
  assert.match(await page.locator('section[data-type="message"]').innerText(), /Anything to drink/);
  assert.match(await page.locator('section[data-type="cart"]').innerText(), /38\.97/);
  assert.equal(await page.locator('section[data-type="cart"]').count(), 1, "the cart replaced itself");
  await post({ op: "remove", key: "greeting" });
  await waitSeq(page, 5);
  assert.equal(await page.locator('section[data-type="message"]').count(), 0);
  await post({ type: "order_status", data: { orderId: "A-17", status: "in_kitchen", etaMinutes: 12 } });
  await waitSeq(page, 6);
  assert.match(await page.locator('section[data-type="order_status"]').innerText(), /in kitchen/i);
});

await scenario("financial", "demo-finance", async ({ page, post }) => {
  await post({ type: "account_card", data: { name: "Everyday Checking", kind: "checking", balance: 4823.17 } });
  await post({ type: "transaction_list", data: { title: "Recent", transactions: [
    { date: "2026-11-20", description: "Grocery store", amount: -84.12, category: "food" },
    { date: "2026-11-19", description: "Salary", amount: 3200, category: "income" } ] } });
  await post({ type: "comparison_table", data: { title: "Savings options", columns: ["Rate", "Minimum"],
    rows: [{ label: "High-Yield Savings", values: ["4.10%", "$0"] }, { label: "12-month CD", values: ["4.60%", "$1,000"] }] } });
  await waitSeq(page, 3);
  assert.match(await page.locator('section[data-type="account_card"]').innerText(), /4,823\.17/);
  assert.match(await page.locator('section[data-type="transaction_list"]').innerText(), /Grocery store/);
  assert.equal(await page.locator('section[data-type="comparison_table"] tbody tr').count(), 2);
});

// A phone: the same page, one column, still legible.
{
  const id = `browser-phone-${Date.now()}`;
  const init = await api(`/conversation/${id}/init`, { tenantId: "demo-restaurant", category: "restaurant" });
  const page = await browser.newPage({ viewport: { width: 390, height: 844 }, reducedMotion: "reduce" });
  await page.goto(init.displayUrl);
  await page.waitForSelector('#status[data-state="live"]');
  await api(`/conversation/${id}/update`, { type: "dish_card", data: { name: "Tiramisu", price: 7.5, dietary: ["vegetarian"], allergens: ["eggs", "milk"] } });
  await api(`/conversation/${id}/update`, { type: "cart", data: { lines: [{ name: "Tiramisu", quantity: 1, unitPrice: 7.5 }] } });
  await waitSeq(page, 2);
  const fits = await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth);
  assert.ok(fits, "no horizontal scrolling on a phone");
  const size = await page.evaluate(() => parseFloat(getComputedStyle(document.querySelector(".c h2")).fontSize));
  assert.ok(size >= 18, `headings stay legible (${size}px)`);
  await page.screenshot({ path: `${artifacts}restaurant-phone.png`, fullPage: true });
  await page.close();
  console.log("ok  phone");
}

await browser.close();
console.log("browser tests passed; screenshots in tests/browser/artifacts/");
