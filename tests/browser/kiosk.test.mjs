// Opens the kiosk in headless Chromium, types an order on the touch keyboard's input,
// and checks the reply streams into the chat while the cart appears on the live display
// (the iframe beside it). Usage: STONEPOT_URL=http://127.0.0.1:PORT node kiosk.test.mjs
import { chromium } from "playwright-core";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";

const base = process.env.STONEPOT_URL;
assert.ok(base, "set STONEPOT_URL");
const artifacts = new URL("./artifacts/", import.meta.url).pathname;
mkdirSync(artifacts, { recursive: true });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});

try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 }, hasTouch: true, reducedMotion: "reduce" });
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(`${base}/kiosk/demo-restaurant`);
  await page.waitForSelector('#link[data-state="live"]');
  const display = page.frameLocator("#display");
  await display.locator('#status[data-state="live"]').waitFor();

  // Type an order and send it with the on-screen button (a tap).
  await page.locator("#text").fill("two margherita pizzas, one without basil");
  await page.locator("#send").tap();
  await page.waitForSelector(".msg.user");
  // The reply streams in ...
  await page.waitForFunction(() => {
    const a = [...document.querySelectorAll(".msg.assistant")];
    return a.length >= 2 && a[a.length - 1].textContent.trim().length > 0;
  });
  // ... and the display beside it shows both pizzas in the cart.
  const cart = display.locator('section[data-type="cart"]');
  await cart.waitFor();
  const text = await cart.innerText();
  assert.match(text, /Margherita Pizza/);
  assert.match(text, /No basil/);
  assert.match(text, /25\.98/, `two pizzas at 12.99: ${text}`);

  // A suggestion chip works as a tap too.
  await page.locator(".chip", { hasText: "What's in my cart?" }).tap();
  await page.waitForFunction(() => document.querySelectorAll(".msg.user").length >= 2);
  await page.waitForFunction(() => document.querySelectorAll(".msg.assistant").length >= 3);

  await page.screenshot({ path: `${artifacts}kiosk.png`, fullPage: true });
  assert.deepEqual(errors, [], "no script errors");
  console.log("ok  kiosk");
} finally {
  await browser.close();
}
