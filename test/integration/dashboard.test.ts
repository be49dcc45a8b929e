/**
 * The web dashboard in a real browser: Debian's Chromium driven headless by puppeteer-core. Each
 * page is loaded and checked against data this test wrote through a Redis client; screenshots go
 * to artifacts/dashboard/ (gitignored; CI keeps them). A second server with requirepass checks that
 * the dashboard asks for the password.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import { Redis } from 'ioredis';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { startOurs, type TestServer } from '../helpers/servers.js';

const CHROMIUM = '/usr/bin/chromium';
export const SCREENSHOT_DIR = new URL('../../../artifacts/dashboard/', import.meta.url).pathname;

/** A w×h PNG of one colour, made here (no image library): signature, IHDR, one IDAT, IEND. */
export function solidPng(w: number, h: number, rgb: [number, number, number]): Buffer {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (b: Buffer): number => {
    let c = 0xffffffff;
    for (const x of b) c = crcTable[(c ^ x) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type: string, data: Buffer): Buffer => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const c = Buffer.alloc(4);
    c.writeUInt32BE(crc(td));
    return Buffer.concat([len, td, c]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // truecolour
  const row = Buffer.concat([Buffer.from([0]), Buffer.alloc(w * 3).map((_, i) => rgb[i % 3])]);
  const raw = Buffer.concat(Array.from({ length: h }, () => row));
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}

const b64 = (s: string): string => Buffer.from(s).toString('base64url');

async function launch(): Promise<{ browser: Browser; profile: string }> {
  // A fresh profile and every background fetch off: the machine has no network beyond 127.0.0.1.
  const profile = mkdtempSync(join(tmpdir(), 'blobasaur-chromium-'));
  const browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      `--user-data-dir=${profile}`,
    ],
    timeout: 30_000,
  });
  return { browser, profile };
}

async function loaded(page: Page, name: string): Promise<void> {
  await page.waitForFunction((n: string) => document.body.dataset.loaded === n || document.body.dataset.loaded === 'error', { timeout: 10_000 }, name);
  const state = await page.evaluate(() => document.body.dataset.loaded);
  if (state === 'error') assert.fail(`page ${name} failed: ${await page.evaluate(() => document.querySelector('main')?.textContent ?? '')}`);
}

async function show(page: Page, hash: string, name: string): Promise<string> {
  await page.evaluate(() => (document.body.dataset.loaded = ''));
  await page.evaluate((h: string) => (location.hash = h), hash);
  await loaded(page, name);
  const text = await page.evaluate(() => document.querySelector('main')!.innerText);
  // A value the page failed to fill in would show as a JavaScript word.
  assert.doesNotMatch(text, /\b(null|undefined|NaN)\b/);
  return text;
}

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(SCREENSHOT_DIR, `${name}.png`), fullPage: true });
}

describe('dashboard in a real browser', () => {
  let server: TestServer;
  let redis: Redis;
  let browser: Browser;
  let profile: string;
  let page: Page;
  let base: string;
  const png = solidPng(96, 64, [220, 40, 40]);
  const text = 'Hello from the dashboard test.\nSecond line: ünïcödé ✓';
  const json = { name: 'blobasaur', shards: [0, 1, 2], nested: { ok: true } };

  before(async () => {
    rmSync(SCREENSHOT_DIR, { recursive: true, force: true });
    mkdirSync(SCREENSHOT_DIR, { recursive: true });
    server = await startOurs({ num_shards: 3, metrics: { enabled: true, addr: '127.0.0.1:0' } });
    base = `http://127.0.0.1:${server.metricsPort}/`;
    redis = new Redis({ port: server.port, host: '127.0.0.1', lazyConnect: true, connectionName: 'dash-writer' });
    await redis.connect();
    await redis.set('notes:greeting', text);
    await redis.set('notes:config.json', JSON.stringify(json));
    await redis.set('bin:blob', Buffer.from([0, 1, 2, 0xff, 0x41, 0x42]));
    await redis.set('doomed', 'delete me');
    await redis.hset('images', 'logo.png', png, 'readme.txt', 'a text field');
    for (let i = 0; i < 30; i++) await redis.set(`filler:${i}`, `v${i}`);
    ({ browser, profile } = await launch());
    page = await browser.newPage();
    await page.setViewport({ width: 1280, height: 900 });
    page.on('dialog', (d) => void d.accept());
  });

  after(async () => {
    await browser?.close();
    if (profile !== undefined) rmSync(profile, { recursive: true, force: true });
    redis?.disconnect();
    await server?.close();
  });

  it('overview: identity, shards, live charts from the server counters', async () => {
    const res = await page.goto(base, { waitUntil: 'load' });
    assert.equal(res?.status(), 200);
    await loaded(page, 'overview');
    // The sampler reads every second: wait for two samples so the charts have a line.
    await page.waitForFunction(() => document.querySelectorAll('svg.chart polyline').length >= 6, { timeout: 10_000, polling: 200 });
    const body = await page.evaluate(() => document.querySelector('main')!.innerText);
    assert.doesNotMatch(body, /\b(null|undefined|NaN)\b/);
    assert.match(body, new RegExp(`blobasaur \\d+\\.\\d+\\.\\d+ · standalone · 127\\.0\\.0\\.1:${server.port} · data ${server.dataDir}`));
    const rows = await page.$$eval('main table tbody tr', (trs) => trs.map((tr) => (tr as HTMLElement).innerText.split('\t')[0]));
    assert.deepEqual(rows, ['0', '1', '2']);
    // (Card titles are upper-cased by the style sheet.)
    for (const title of ['Operations per second', 'Command latency', 'Read cache hit ratio', 'Clients', 'Memory', 'Disk', 'Background work']) {
      assert.match(body, new RegExp(`\n${title}\n`, 'i'));
    }
    // The commands column counts what this test sent (at least the 35 writes).
    const commands = Number((await page.$$eval('.stats .card', (cs) => (cs[4] as HTMLElement).innerText.split('\n')[1])).replace(/,/g, ''));
    assert.ok(commands >= 35, `${commands} commands`);
    await shot(page, '1-overview');
  });

  it('key browser: SCAN with a pattern and a type', async () => {
    let body = await show(page, '#/keys?pattern=notes:*', 'keys');
    const keys = await page.$$eval('main table tbody a', (as) => as.map((a) => a.textContent).sort());
    assert.deepEqual(keys, ['notes:config.json', 'notes:greeting']);
    body = await show(page, '#/keys?pattern=*&type=hash', 'keys');
    assert.deepEqual(await page.$$eval('main table tbody a', (as) => as.map((a) => a.textContent)), ['images']);
    assert.match(body, /namespace/);
    await show(page, '#/keys', 'keys');
    assert.equal((await page.$$eval('main table tbody a', (as) => as.length)), 35);
    await shot(page, '2-keys');
  });

  it('a namespace: its fields with size and version', async () => {
    const body = await show(page, `#/ns?k=${b64('images')}`, 'ns');
    const fields = await page.$$eval('main table tbody tr', (trs) => trs.map((tr) => (tr as HTMLElement).innerText.split('\t').slice(0, 3).join('|')).sort());
    assert.deepEqual(fields, [`logo.png|${png.length} B|${png.length} B`, 'readme.txt|12 B|12 B']);
    assert.match(body, /^images\n/);
    await shot(page, '3-namespace');
  });

  it('an image blob is previewed as an image, with its metadata', async () => {
    const body = await show(page, `#/key?k=${b64('logo.png')}&ns=${b64('images')}`, 'key');
    await page.waitForFunction(() => (document.getElementById('preview-image') as HTMLImageElement | null)?.complete === true, { timeout: 10_000 });
    const size = await page.$eval('#preview-image', (img) => [(img as HTMLImageElement).naturalWidth, (img as HTMLImageElement).naturalHeight]);
    assert.deepEqual(size, [96, 64]);
    assert.match(body, new RegExp(`size\\s+${png.length} B \\(${png.length} bytes\\)`));
    assert.match(body, /version\s+0/);
    assert.match(body, /expires\s+never/);
    await shot(page, '4-image-blob');
  });

  it('a text blob is shown as text, JSON pretty-printed, binary as hex; a value downloads whole', async () => {
    await redis.set('notes:greeting', text); // version 1 now
    let body = await show(page, `#/key?k=${b64('notes:greeting')}`, 'key');
    assert.equal(await page.$eval('#preview-text', (e) => e.textContent), text);
    assert.match(body, /version\s+1/);
    assert.match(body, /codec\s+none/);
    await shot(page, '5-text-blob');
    await show(page, `#/key?k=${b64('notes:config.json')}`, 'key');
    assert.equal(await page.$eval('#preview-text', (e) => e.textContent), JSON.stringify(json, null, 2));
    body = await show(page, `#/key?k=${b64('bin:blob')}`, 'key');
    assert.equal(await page.$eval('#preview-hex', (e) => e.textContent), `00000000  ${'00 01 02 ff 41 42'.padEnd(47)}  ....AB`);
    const href = await page.$eval('a[download]', (a) => (a as HTMLAnchorElement).href);
    const downloaded = await page.evaluate(async (u: string) => Array.from(new Uint8Array(await (await fetch(u)).arrayBuffer())), href);
    assert.deepEqual(downloaded, [0, 1, 2, 0xff, 0x41, 0x42]);
    const disposition = await page.evaluate(async (u: string) => (await fetch(u)).headers.get('content-disposition'), href);
    assert.equal(disposition, `attachment; filename="value.bin"; filename*=UTF-8''bin%3Ablob`);
  });

  it('delete asks for confirmation and removes the key', async () => {
    await show(page, `#/key?k=${b64('doomed')}`, 'key');
    await page.evaluate(() => (document.body.dataset.loaded = ''));
    await page.click('#delete');
    await loaded(page, 'keys');
    assert.equal(await redis.exists('doomed'), 0);
    assert.equal(await redis.get('notes:greeting'), text);
  });

  it('clients: lists connections and kills one', async () => {
    const victim = new Redis({ port: server.port, host: '127.0.0.1', lazyConnect: true, connectionName: 'victim', retryStrategy: () => null });
    await victim.connect();
    await victim.ping();
    const victimId = Number(await victim.client('ID'));
    const closed = new Promise<void>((resolve) => victim.once('end', () => resolve()));
    const body = await show(page, '#/clients', 'clients');
    assert.match(body, /dash-writer/);
    assert.match(body, /victim/);
    await shot(page, '6-clients');
    const killed = await page.evaluate((id: number) => {
      const tr = [...document.querySelectorAll('main table tbody tr')].find((r) => r.firstElementChild?.textContent === String(id));
      (tr?.querySelector('button') as HTMLButtonElement | null)?.click();
      return tr !== undefined;
    }, victimId);
    assert.equal(killed, true);
    await closed;
    await page.waitForFunction((id: number) => ![...document.querySelectorAll('main table tbody tr')].some((r) => r.firstElementChild?.textContent === String(id)), { timeout: 10_000 }, victimId);
  });

  it('changes need the dashboard header: a cross-site form post is refused', async () => {
    const res = await fetch(`${base}api/delete`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: JSON.stringify({ k: b64('notes:greeting') }) });
    assert.equal(res.status, 403);
    assert.equal(await redis.exists('notes:greeting'), 1);
    // Not in cluster mode: that page is not offered.
    assert.deepEqual(await page.$$eval('nav a[hidden]', (as) => as.map((a) => a.textContent)), ['Cluster']);
  });

  it('slow log: what SLOWLOG GET holds, newest first, with secrets redacted', async () => {
    assert.equal(await redis.config('SET', 'slowlog-log-slower-than', '0'), 'OK');
    await redis.set('slow:one', 'x');
    await redis.call('AUTH', 'not-the-password').catch(() => 'refused');
    assert.equal(await redis.config('SET', 'slowlog-log-slower-than', '-1'), 'OK');
    const body = await show(page, '#/slowlog', 'slowlog');
    assert.match(body, /off \(slowlog-log-slower-than is negative\)/);
    // The cell's text as stored (innerText would fold a newline in an argument into a space: a
    // loaded machine logs earlier tests' SETs of multi-line values too).
    const commands = await page.$$eval('main table tbody tr', (trs) => trs.map((tr) => tr.children[3]?.textContent ?? ''));
    const want = (await redis.call('SLOWLOG', 'GET', '128')) as [number, number, number, string[], string, string][];
    assert.deepEqual(commands, want.map((e) => e[3].join(' ')));
    assert.ok(commands.includes('set slow:one x'), commands.join(' | '));
    assert.ok(commands.includes('AUTH (redacted)'), commands.join(' | '));
    assert.equal(body.includes('not-the-password'), false);
    await shot(page, '7-slowlog');
  });
});

describe('dashboard with requirepass', () => {
  const password = 'dash-secret-pw';
  let server: TestServer;
  let browser: Browser;
  let profile: string;

  before(async () => {
    server = await startOurs({ requirepass: password, metrics: { enabled: true, addr: '127.0.0.1:0' } });
    ({ browser, profile } = await launch());
  });

  after(async () => {
    await browser?.close();
    if (profile !== undefined) rmSync(profile, { recursive: true, force: true });
    await server?.close();
  });

  it('asks for the password (HTTP Basic) and shows the dashboard once given', async () => {
    const base = `http://127.0.0.1:${server.metricsPort}/`;
    for (const path of ['', 'app.js', 'api/overview', 'api/keys']) {
      const res = await fetch(`${base}${path}`);
      assert.equal(res.status, 401, path);
      assert.equal(res.headers.get('www-authenticate'), 'Basic realm="blobasaur", charset="UTF-8"');
    }
    const wrong = await fetch(`${base}api/overview`, { headers: { authorization: `Basic ${Buffer.from('default:nope').toString('base64')}` } });
    assert.equal(wrong.status, 401);
    const otherUser = await fetch(`${base}api/overview`, { headers: { authorization: `Basic ${Buffer.from(`admin:${password}`).toString('base64')}` } });
    assert.equal(otherUser.status, 401);
    // /health stays open for health checks; it carries no data.
    assert.equal((await fetch(`${base}health`)).status, 200);

    const page = await browser.newPage();
    // Without credentials the browser is challenged, and (headless, nobody to ask) gives up.
    await assert.rejects(page.goto(base), /ERR_INVALID_AUTH_CREDENTIALS/);
    await page.authenticate({ username: 'default', password });
    const res = await page.goto(base, { waitUntil: 'load' });
    assert.equal(res?.status(), 200);
    await loaded(page, 'overview');
    assert.match(await page.evaluate(() => document.querySelector('main')!.innerText), /standalone/);
    assert.equal(page.url().includes(password), false);
    await shot(page, '9-requirepass-overview');
    await page.close();
  });
});

describe('dashboard in cluster mode', () => {
  let server: TestServer;
  let browser: Browser;
  let profile: string;

  before(async () => {
    server = await startOurs({
      cluster: { enabled: true, node_id: 'dash-node', port: 0, slot_ranges: [{ start: 0, end: 8191 }] },
      metrics: { enabled: true, addr: '127.0.0.1:0' },
    });
    ({ browser, profile } = await launch());
  });

  after(async () => {
    await browser?.close();
    if (profile !== undefined) rmSync(profile, { recursive: true, force: true });
    await server?.close();
  });

  it('shows the slot map and the node with its slots and state', async () => {
    const page = await browser.newPage();
    await page.setViewport({ width: 1280, height: 700 });
    await page.goto(`http://127.0.0.1:${server.metricsPort}/#/cluster`, { waitUntil: 'load' });
    await loaded(page, 'cluster');
    const body = await page.evaluate(() => document.querySelector('main')!.innerText);
    assert.doesNotMatch(body, /\b(null|undefined|NaN)\b/);
    // Half the slots: the cluster is not ok, as CLUSTER INFO would say.
    assert.match(body, /cluster_state: fail +8192 of 16384 slots assigned, 0 possibly failing, 0 failed, 1 nodes with slots/);
    const row = await page.$eval('main table tbody tr', (tr) => (tr as HTMLElement).innerText.split('\t').slice(1, 5));
    assert.deepEqual(row, ['dash-node (this node)', `127.0.0.1:${server.port}`, '0-8191', 'ok']);
    // The bar: one segment for the node's half, one unassigned.
    const segments = await page.$$eval('.slotmap div', (ds) => ds.map((d) => d.getAttribute('title')));
    assert.deepEqual(segments, ['0-8191 dash-node', '8192-16383 unassigned']);
    assert.equal(await page.$eval('nav a[data-page=cluster]', (a) => (a as HTMLElement).hidden), false);
    await shot(page, '8-cluster');
    await page.close();
  });
});
