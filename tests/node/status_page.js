// Drives Debian's chromium (headless, through playwright-core; no browser
// is downloaded) against a real `evolive serve` that
// tests/web/status_page_test.cc started and filled. Prints what it checked;
// exits 1 at the first check that fails. Screenshots go to $SCREENSHOTS.
//
//   node status_page.js open    URL: list, live progress, an evaluation, search, comparison, hostile data
//   node status_page.js token   URL: the login, a refused token, a good one kept, forgetting it
// Fingerprints and the token come in the environment (see the test).
'use strict';
const { chromium } = require('playwright-core');
const fs = require('fs');
const os = require('os');
const path = require('path');

const [mode, url] = process.argv.slice(2);
const env = process.env;
const shots = env.SCREENSHOTS;
fs.mkdirSync(shots, { recursive: true });

function check(condition, what) {
  if (!condition) throw new Error('check failed: ' + what);
  console.log('ok: ' + what);
}

async function until(what, fn, timeoutMs = 30000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value) { console.log('ok: ' + what); return value; }
    if (Date.now() > deadline) throw new Error('timed out waiting: ' + what);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const text = (page, selector) => page.$eval(selector, (n) => n.textContent).catch(() => null);

async function nothingRan(page, where) {
  const state = await page.evaluate(() => ({
    pwned: window.__pwned,
    injected: document.querySelectorAll('#pwned, main img, main svg, main script, main iframe, main b').length,
    scripts: document.scripts.length,
  }));
  check(state.pwned === undefined, where + ': no injected script ran (window.__pwned unset)');
  check(state.injected === 0, where + ': no injected element exists');
  check(state.scripts === 1, where + ': the only script is the page\'s own');
}

async function openMode(page) {
  const { OLD, NEW, HOSTILE, RUNNING } = env;
  await page.goto(url);
  await page.waitForSelector(`#evaluations tr[data-fingerprint="${OLD}"]`);
  const order = await page.$$eval('#evaluations tr[data-fingerprint]', (rows) => rows.map((r) => r.dataset.fingerprint));
  check(order.indexOf(HOSTILE) < order.indexOf(NEW) && order.indexOf(NEW) < order.indexOf(OLD), 'stored evaluations are listed newest first');
  const newRow = `#evaluations tr[data-fingerprint="${NEW}"]`;
  await until('a stored evaluation shows its inputs and counts', async () =>
    (await text(page, newRow + ' td:nth-child(4)') || '').includes('version = 2') && (await text(page, newRow + ' td:nth-child(5)')) === '12');

  // Live progress of the running evaluation, moving.
  const card = `section[data-testid=progress][data-fingerprint="${RUNNING}"]`;
  await page.waitForSelector(card);
  const jobsAt = async () => Number(((await text(page, card + ' [data-field=jobs]')) || '0').replace(/,/g, '')) || 0;
  const first = await until('the running evaluation shows jobs found', jobsAt);
  await until(`the jobs found go up from ${first}`, async () => (await jobsAt()) > first);
  check((await text(page, card + ' [data-field=workers]')) === '1', 'the running evaluation shows its workers');
  await until('the running evaluation shows jobs per second', async () => Number(await text(page, card + ' [data-field=rate]')) > 0);
  check(/\d/.test(await text(page, card + ' [data-field=elapsed]')), 'the running evaluation shows the elapsed time');
  check((await text(page, card + ' [data-field=push]')) === 'not pushing', 'the running evaluation shows its push progress');
  await until('the metrics are drawn over time', async () => (await page.$('#chart-rate polyline')) && (await page.$('#chart-queue polyline')));
  await page.screenshot({ path: path.join(shots, 'home.png'), fullPage: true });

  // One evaluation: its facts, a search, the comparison with the previous one.
  await page.click(`${newRow} a`);
  await page.waitForSelector('#inputs');
  check((await text(page, '#inputs')).includes('version'), 'the evaluation shows its inputs');
  await until('the jobs are listed', async () => (await page.$$('#job-rows tr')).length === 12);
  await page.fill('#job-search', 'armCh');
  await until('a search finds the one job', async () => {
    const attrs = await page.$$eval('#job-rows td[data-attr]', (cells) => cells.map((c) => c.textContent));
    return attrs.length === 1 && attrs[0] === 'armChanged';
  });
  check((await text(page, '#job-count')).includes('of 1 matching'), 'the search says how many match');
  await page.fill('#job-search', '');
  await page.check('#errors-only');
  await until('errors only shows the failing jobs with their errors in full', async () => {
    const errors = await page.$$eval('#job-rows pre.error', (p) => p.map((n) => n.textContent));
    return errors.length === 2 && errors.some((e) => e.includes('breaks in version 2'));
  });
  await until('the comparison with the previous evaluation is shown', async () =>
    (await text(page, '#diff-systems tr[data-system="x86_64-linux"] td[data-count="rebuilds"]')) === '4');
  check((await page.$eval('#compare-with', (s) => s.value)) === OLD, 'it compares with the previous evaluation of the same jobset');
  check((await text(page, '#diff-systems tr[data-system="all"] td[data-count="added"]')) === '3', 'the comparison counts added jobs');
  check((await text(page, '#diff-systems tr[data-system="aarch64-linux"] td[data-count="changed"]')) === '1', 'the comparison counts per system');
  check((await text(page, '#diff')).includes('10.rebuild-linux: 1-10'), 'the comparison shows the rebuild labels');
  await page.click('details[data-list="rebuilds"] summary');
  await page.screenshot({ path: path.join(shots, 'evaluation.png'), fullPage: true });

  // Hostile data stays text.
  await page.goto(url + '#/evaluations/' + HOSTILE);
  await until('the hostile evaluation lists its jobs', async () => (await page.$$('#job-rows tr')).length === 4);
  const attrs = await page.$$eval('#job-rows td[data-attr]', (cells) => cells.map((c) => c.textContent));
  // Names that need quoting are quoted, as nix-eval-jobs writes them.
  check(attrs.includes('"<img src=x onerror=\\"window.__pwned=1\\">"'), 'an attribute name with HTML shows as text');
  check(attrs.includes('"<script>window.__pwned=2</script>"'), 'an attribute name with a script shows as text');
  check((await text(page, '#job-rows')).includes('<script>window.__pwned=4</script><img id="pwned"'), 'an error with HTML shows as text');
  check((await text(page, '#job-rows')).includes('<b id="pwned">bold</b><script>window.__pwned=3</script>'), 'meta with HTML shows as text');
  check((await text(page, '#inputs')).includes('<img src=x onerror=window.__pwned=7>'), 'an input value with HTML shows as text');
  await page.fill('#compare-fingerprint', OLD);
  await page.click('#comparison button');
  await until('a comparison picked by fingerprint is shown', async () => (await page.$('#diff-systems')) !== null);
  check((await page.$$eval('#diff-systems tr[data-system]', (rows) => rows.map((r) => r.dataset.system))).includes('<svg id=pwned onload=window.__pwned=6>'),
    'a system with HTML shows as text');
  await page.click('details[data-list="added"] summary');
  check((await text(page, 'details[data-list="added"]')).includes('<img src=x onerror=\\"window.__pwned=1\\">'), 'listed names with HTML show as text');
  await page.screenshot({ path: path.join(shots, 'hostile.png'), fullPage: true });
  await nothingRan(page, 'the hostile evaluation');
  await page.goto(url);
  await page.waitForSelector(`#evaluations tr[data-fingerprint="${HOSTILE}"]`);
  await until('the list shows the hostile input as text', async () =>
    ((await text(page, `#evaluations tr[data-fingerprint="${HOSTILE}"]`)) || '').includes('<img src=x'));
  await nothingRan(page, 'the list');
}

async function tokenMode(page) {
  const { TOKEN, STORED } = env;
  await page.goto(url);
  await page.waitForSelector('#login');
  check(await page.$('#evaluations') === null, 'without a token nothing but the login is shown');
  check(await page.$eval('#metrics', (m) => m.hidden), 'without a token no metrics are shown');
  await page.screenshot({ path: path.join(shots, 'login.png'), fullPage: true });
  await page.fill('#token', 'a-wrong-token-of-enough-length');
  await page.click('#login button');
  await until('a wrong token is refused', async () => (await text(page, '#login-message')) === 'The token was refused.');
  check(await page.$('#evaluations') === null, 'after a refused token still nothing is shown');
  await page.fill('#token', TOKEN);
  await page.click('#login button');
  await page.waitForSelector(`#evaluations tr[data-fingerprint="${STORED}"]`);
  console.log('ok: with the token the evaluations are shown');
  check((await page.evaluate(() => localStorage.getItem('evolive.token'))) === TOKEN, 'the token is kept in the browser');
  await page.reload();
  await page.waitForSelector(`#evaluations tr[data-fingerprint="${STORED}"]`);
  console.log('ok: after a reload the kept token is used');
  await page.click('#logout');
  await page.waitForSelector('#login');
  check((await page.evaluate(() => localStorage.getItem('evolive.token'))) === null, 'forgetting the token removes it');
}

(async () => {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'evolive-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
           '--disable-component-update', '--disable-sync'],
    viewport: { width: 1280, height: 900 },
  });
  let failed = false;
  try {
    const page = context.pages()[0] || (await context.newPage());
    page.on('dialog', (d) => { failed = true; console.log('an injected dialog opened: ' + d.message()); d.dismiss(); });
    page.on('pageerror', (e) => { failed = true; console.log('page error: ' + e.message); });
    await (mode === 'token' ? tokenMode(page) : openMode(page));
    if (failed) throw new Error('the page raised an error or opened a dialog');
  } finally {
    await context.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
})().then(() => console.log('status page: all checks passed'), (e) => {
  console.log(e.stack || String(e));
  process.exit(1);
});
