// The whole counter flow in headless Chromium: staff open the kitchen board, a guest
// orders at the kiosk and taps "Confirm order" on the display's quote, the ticket
// appears on the board live, staff move it to the guest's hands, and the guest's
// display follows. A second tablet signs in with a staff token (a JWT handed over in the
// address's fragment, as a sign-in page would). Usage:
// STONEPOT_URL=… STONEPOT_KEY=… STONEPOT_STAFF_TOKEN=… node kitchen.test.mjs
import { chromium } from "playwright-core";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";

const base = process.env.STONEPOT_URL;
const key = process.env.STONEPOT_KEY;
const staffToken = process.env.STONEPOT_STAFF_TOKEN;
assert.ok(base && key && staffToken, "set STONEPOT_URL, STONEPOT_KEY and STONEPOT_STAFF_TOKEN");
const artifacts = new URL("./artifacts/", import.meta.url).pathname;
mkdirSync(artifacts, { recursive: true });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});

try {
  const errors = [];
  const kitchen = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  kitchen.on("pageerror", (e) => errors.push(String(e)));
  await kitchen.goto(`${base}/kitchen/demo-restaurant`);
  // A wrong key is refused and the form says so.
  await kitchen.locator("#key").fill("sp_not_a_key");
  await kitchen.locator("#login button").click();
  await kitchen.waitForFunction(() => document.getElementById("login-error").textContent.length > 0);
  await kitchen.locator("#key").fill(key);
  await kitchen.locator("#login button").click();
  await kitchen.waitForSelector('#status[data-state="live"]');
  const before = await kitchen.evaluate(() => window.stonepotKitchen.tickets.length);

  // A second tablet signs in with a staff token handed over in the fragment: the board
  // goes live and the token leaves the address bar. A token with a broken signature is
  // refused and the form asks again (another tenant's token is refused the same way;
  // tests/access.rs covers that on the API).
  const tablet = await browser.newPage({ viewport: { width: 1024, height: 768 } });
  tablet.on("pageerror", (e) => errors.push(String(e)));
  await tablet.goto(`${base}/kitchen/demo-restaurant#token=${staffToken}`);
  await tablet.waitForSelector('#status[data-state="live"]');
  assert.equal(new URL(tablet.url()).hash, "", "the token is cleared from the address");
  const foreign = await browser.newPage();
  foreign.on("pageerror", (e) => errors.push(String(e)));
  const forged = staffToken.slice(0, -4) + (staffToken.endsWith("AAAA") ? "BBBB" : "AAAA");
  await foreign.goto(`${base}/kitchen/demo-restaurant#token=${forged}`);
  await foreign.waitForFunction(() => document.getElementById("login-error").textContent.length > 0);
  assert.equal(await foreign.locator("#login").isVisible(), true);
  await foreign.close();

  // The guest orders at the kiosk and confirms the quote with a tap on the display.
  const kiosk = await browser.newPage({ viewport: { width: 1280, height: 800 }, hasTouch: true });
  kiosk.on("pageerror", (e) => errors.push(String(e)));
  await kiosk.goto(`${base}/kiosk/demo-restaurant`);
  await kiosk.waitForSelector('#link[data-state="live"]');
  const display = kiosk.frameLocator("#display");
  await display.locator('#status[data-state="live"]').waitFor();
  await kiosk.locator("#text").fill("a funghi pizza and a tiramisu");
  await kiosk.locator("#send").tap();
  await display.locator('section[data-type="cart"]').waitFor();
  await kiosk.locator(".chip", { hasText: "That's all" }).tap();
  const quote = display.locator('section[data-type="quote"]');
  await quote.waitFor();
  assert.match(await quote.innerText(), /Shall I place the order\?/);
  await quote.locator("button.confirm").tap();
  const status = display.locator('section[data-type="order_status"]');
  await status.waitFor();
  assert.match(await status.innerText(), /confirmed/i);

  // The ticket arrives on the board without a reload.
  await kitchen.waitForFunction((n) => window.stonepotKitchen.tickets.length === n + 1, before);
  // The token-signed tablet sees the same ticket live.
  await tablet.waitForFunction((n) => window.stonepotKitchen.tickets.length === n + 1, before);
  const card = kitchen.locator(".ticket").last();
  const text = await card.innerText();
  assert.match(text, /Funghi Pizza/);
  assert.match(text, /Tiramisu/);
  await kitchen.screenshot({ path: `${artifacts}kitchen.png`, fullPage: true });

  // Staff move it along; the guest's display follows each step.
  for (const [button, shown] of [["Start", /in kitchen/i], ["Ready", /ready/i], ["Mark paid", /ready/i]]) {
    await card.locator("button", { hasText: button }).click();
    await kitchen.waitForFunction(
      ([b]) => ![...document.querySelectorAll(".ticket:last-child button")].some((x) => x.textContent === b),
      [button],
    );
    await display.locator('section[data-type="order_status"]', { hasText: shown }).waitFor();
  }
  await kitchen.locator(".ticket").last().locator("button", { hasText: "Hand over" }).click();
  await kitchen.waitForFunction((n) => window.stonepotKitchen.tickets.length === n, before);
  await display.locator('section[data-type="order_status"]', { hasText: /completed/i }).waitFor();

  assert.deepEqual(errors, [], "no script errors");
  console.log("ok  kitchen");
} finally {
  await browser.close();
}
