// Signs in to a Gatehouse-protected app the way a person does, in Debian's
// headless Chromium driven by playwright-core (which never downloads a
// browser of its own):
//
//   node login.mjs <app-url> <username> <password> <screenshot-path> [<after-screenshot-path>]
//
// It opens the app URL, expects to be sent to the issuer's sign-in page,
// takes a screenshot of it, fills in the form fields `login` and `password`,
// submits, and waits until it is back on the app or the sign-in page shows an
// error. It prints one JSON object on stdout:
//
//   {loginURL, finalURL, status, hops, title, bodyText, error, cookies: [{name, domain, path, httpOnly, sameSite}]}
//
// hops lists the navigation responses after submitting ("302 POST <url>", ...).
//
// cookies lists names only, never values. Anything else goes to stderr; the
// exit code is 0 whenever that JSON was printed.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const [appURL, username, password, shot, afterShot] = process.argv.slice(2);
if (!appURL || !username || !password || !shot) {
  console.error('usage: node login.mjs <app-url> <username> <password> <screenshot-path> [<after-screenshot-path>]');
  process.exit(2);
}
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
const app = new URL(appURL);
const profile = mkdtempSync(join(tmpdir(), 'gatehouse-chromium-'));

let context;
try {
  context = await chromium.launchPersistentContext(profile, {
    executablePath,
    headless: true,
    // Without the background-networking flags Chromium keeps trying hosts
    // this machine cannot reach.
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 800, height: 600 },
  });
  context.setDefaultTimeout(20_000);
  const page = context.pages()[0] ?? await context.newPage();

  // The protected page sends a browser without a session to the issuer.
  await page.goto(appURL, { waitUntil: 'load' });
  const form = page.locator('form input[name="login"]');
  await form.waitFor({ state: 'visible' });
  const loginURL = page.url();
  await page.screenshot({ path: shot, fullPage: true });

  await page.fill('input[name="login"]', username);
  await page.fill('input[name="password"]', password);
  // Submitting the form is one navigation through redirects; it ends with
  // the first main-frame response that is not a redirect, or fails (a CSP
  // violation, say, shows as net::ERR_ABORTED and a console error).
  const consoleErrors = [];
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
  const isNav = (req) => req.isNavigationRequest() && req.frame() === page.mainFrame();
  const hops = [];
  const landed = new Promise((resolve, reject) => {
    page.on('response', (r) => {
      if (!isNav(r.request())) return;
      hops.push(`${r.status()} ${r.request().method()} ${r.url()}`);
      if (r.status() < 300 || r.status() >= 400) resolve(r);
    });
    page.on('requestfailed', (req) => {
      if (!isNav(req)) return;
      // The console error that says why comes a moment after the failure.
      setTimeout(() => reject(new Error(`submitting the sign-in form failed at ${req.method()} ${req.url()}: ${req.failure()?.errorText}` +
        `\nhops: ${hops.join(' -> ') || 'none'}\nconsole errors: ${consoleErrors.join(' | ') || 'none'}`)), 500);
    });
  });
  landed.catch(() => {}); // handled below, after the click
  await page.click('form button[type="submit"]:not([name="cancel"])');
  let timer;
  const final = await Promise.race([landed, new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no page after submitting the sign-in form within 20s; hops: ${hops.join(' -> ') || 'none'}`)), 20_000);
  })]).finally(() => clearTimeout(timer));
  await page.waitForURL(final.url(), { waitUntil: 'load' });
  if (afterShot) await page.screenshot({ path: afterShot, fullPage: true });

  const alert = page.locator('[role="alert"]');
  const result = {
    loginURL,
    finalURL: page.url(),
    status: final.status(), // of the page now shown, the last hop of the redirects
    hops,
    title: await page.title(),
    bodyText: await page.locator('body').innerText(),
    error: (await alert.count()) ? await alert.first().innerText() : '',
    cookies: (await context.cookies()).map(({ name, domain, path, httpOnly, sameSite }) => ({ name, domain, path, httpOnly, sameSite })),
  };
  process.stdout.write(JSON.stringify(result) + '\n');
} catch (e) {
  console.error(`login.mjs: ${e && e.message ? e.message : e}`);
  try { // the page's text, not its HTML: hidden fields carry CSRF tokens
    const page = context?.pages()[0];
    if (page) console.error(`login.mjs: the browser was at ${page.url()}, showing:\n${(await page.locator('body').innerText()).slice(0, 2000)}`);
  } catch { /* nothing more to say */ }
  process.exitCode = 1;
} finally {
  await context?.close().catch(() => {});
  rmSync(profile, { recursive: true, force: true });
}
