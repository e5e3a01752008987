// Walks through Gatehouse's pages the way a person does, in Debian's
// headless Chromium driven by playwright-core, following a plan of steps:
//
//   node pages.mjs '<plan JSON>'
//
// The plan is a list of steps, run in order in one fresh browser profile:
//
//   {"goto": "<url>"}                          open a URL (typed: Sec-Fetch-Site none)
//   {"signIn": ["<username>", "<password>"]}   fill in and submit the issuer's sign-in form
//   {"cancel": true}                           press Cancel on the issuer's sign-in form
//   {"click": "<link or button text>"}         follow a link or press a button on the page
//   {"dropCookies": "<name prefix>"}           delete cookies, as a browser does when they expire
//   {"capture": "<name>", "shot": "<path>"}    record the page now shown and take a screenshot
//
// Every step that navigates waits until the browser shows a page that is
// not a redirect. It prints one JSON object on stdout:
//
//   {captures: [{name, url, status, lang, title, h1, text, links: [{text, href}], buttons}], hops}
//
// hops lists every main-frame navigation response ("302 GET <url>", ...).
// Page text only, never HTML or cookie values (hidden fields carry CSRF
// tokens). Anything else goes to stderr; the exit code is 0 whenever that
// JSON was printed.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const plan = JSON.parse(process.argv[2] ?? 'null');
if (!Array.isArray(plan)) {
  console.error("usage: node pages.mjs '<plan JSON: a list of steps>'");
  process.exit(2);
}
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
const profile = mkdtempSync(join(tmpdir(), 'gatehouse-chromium-'));

let context;
try {
  context = await chromium.launchPersistentContext(profile, {
    executablePath,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 800, height: 600 },
  });
  context.setDefaultTimeout(20_000);
  const page = context.pages()[0] ?? await context.newPage();
  const consoleErrors = [];
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
  const isNav = (req) => req.isNavigationRequest() && req.frame() === page.mainFrame();
  const hops = [];
  let last; // the last main-frame response that was not a redirect
  let waiters = [];
  page.on('response', (r) => {
    if (!isNav(r.request())) return;
    hops.push(`${r.status()} ${r.request().method()} ${r.url()}`);
    if (r.status() < 300 || r.status() >= 400) {
      last = r;
      for (const w of waiters) w.resolve(r);
      waiters = [];
    }
  });
  page.on('requestfailed', (req) => {
    if (!isNav(req)) return;
    const err = `navigation failed at ${req.method()} ${req.url()}: ${req.failure()?.errorText}`;
    // The console error that says why comes a moment after the failure.
    setTimeout(() => {
      for (const w of waiters) w.reject(new Error(`${err}\nhops: ${hops.join(' -> ')}\nconsole errors: ${consoleErrors.join(' | ') || 'none'}`));
      waiters = [];
    }, 500);
  });

  // navigate runs action and waits for the page it leads to.
  const navigate = async (what, action) => {
    const landed = new Promise((resolve, reject) => waiters.push({ resolve, reject }));
    landed.catch(() => {});
    await action();
    let timer;
    const r = await Promise.race([landed, new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no page within 20s; hops: ${hops.join(' -> ') || 'none'}`)), 20_000);
    })]).finally(() => clearTimeout(timer));
    await page.waitForURL(r.url(), { waitUntil: 'load' });
  };

  const captures = [];
  for (const step of plan) {
    if (step.goto) {
      await navigate(`goto ${step.goto}`, () => page.goto(step.goto, { waitUntil: 'commit' }));
    } else if (step.signIn) {
      const [username, password] = step.signIn;
      await page.locator('form input[name="login"]').waitFor({ state: 'visible' });
      await page.fill('input[name="login"]', username);
      await page.fill('input[name="password"]', password);
      await navigate(`signing in as ${username}`, () => page.click('form button[type="submit"]:not([name="cancel"])'));
    } else if (step.cancel) {
      await navigate('cancel', () => page.click('form button[name="cancel"]'));
    } else if (step.click) {
      const target = page.getByRole('link', { name: step.click, exact: true })
        .or(page.getByRole('button', { name: step.click, exact: true }));
      await navigate(`click ${step.click}`, () => target.click());
    } else if (step.dropCookies) {
      for (const c of await context.cookies()) {
        if (c.name.startsWith(step.dropCookies)) await context.clearCookies({ name: c.name, domain: c.domain, path: c.path });
      }
    } else if (step.capture) {
      if (step.shot) await page.screenshot({ path: step.shot, fullPage: true });
      const h1 = page.locator('h1');
      captures.push({
        name: step.capture,
        url: page.url(),
        status: last ? last.status() : 0,
        lang: await page.locator('html').getAttribute('lang'),
        title: await page.title(),
        h1: (await h1.count()) ? await h1.first().innerText() : '',
        text: await page.locator('body').innerText(),
        links: await page.locator('a[href]').evaluateAll((as) => as.map((a) => ({ text: a.innerText, href: a.getAttribute('href') }))),
        buttons: await page.locator('button').allInnerTexts(),
      });
    } else {
      throw new Error(`unknown step ${JSON.stringify(step)}`);
    }
  }
  process.stdout.write(JSON.stringify({ captures, hops }) + '\n');
} catch (e) {
  console.error(`pages.mjs: ${e && e.message ? e.message : e}`);
  try {
    const page = context?.pages()[0];
    if (page) console.error(`pages.mjs: the browser was at ${page.url()}, showing:\n${(await page.locator('body').innerText()).slice(0, 2000)}`);
  } catch { /* nothing more to say */ }
  process.exitCode = 1;
} finally {
  await context?.close().catch(() => {});
  rmSync(profile, { recursive: true, force: true });
}
