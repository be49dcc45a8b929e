/**
 * CLIENT LIST / CLIENT INFO: the flags letters and multi= (queued commands, -1 outside MULTI) for
 * MULTI, WATCH with a touched key, MONITOR, CLIENT NO-EVICT and a command held by CLIENT PAUSE,
 * compared with redis-server line for line once ids, addresses, ages and memory figures are masked.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { RawClient, resp } from '../helpers/raw.js';
import { compareServersForSuite } from '../helpers/compare.js';
import { startOurs } from '../helpers/servers.js';

/** Masks what legitimately differs between two servers; drops 7.2's lib-name/lib-ver (7.0 lacks them). */
function masked(line: string): string {
  return line
    .replace(/^\$\d+\r\n/, '')
    .trim()
    .replace(/^id=\d+/, 'id=N')
    .replace(/ (addr|laddr)=\S+/g, ' $1=A')
    .replace(/ (fd|age|idle|qbuf|qbuf-free|argv-mem|rbs|rbp|omem|tot-mem)=-?\d+/g, ' $1=N')
    .replace(/ events=\S*/, ' events=E')
    .replace(/ lib-name=\S* lib-ver=\S*$/, '');
}

async function ask(c: RawClient, ...args: string[]): Promise<string> {
  c.write(resp(...args));
  return c.reply();
}

/** The CLIENT LIST line of client `id`, as `viewer` sees it. */
async function lineOf(viewer: RawClient, id: number): Promise<string> {
  const list = await ask(viewer, 'CLIENT', 'LIST');
  return list.split('\n').find((l) => l.startsWith(`id=${id} `)) ?? `(no client ${id})`;
}

async function idOf(c: RawClient): Promise<number> {
  return Number(/^:(\d+)/.exec(await ask(c, 'CLIENT', 'ID'))![1]);
}

/** Runs the same session on one server; returns the masked lines seen along the way. */
async function session(port: number): Promise<string[]> {
  const a = await RawClient.connect(port);
  const b = await RawClient.connect(port);
  const m = await RawClient.connect(port);
  const seen: string[] = [];
  try {
    await ask(a, 'FLUSHALL');
    const id = await idOf(a);
    seen.push(masked(await ask(a, 'CLIENT', 'INFO')));
    assert.equal(await ask(a, 'WATCH', 'k'), '+OK\r\n');
    seen.push(masked(await lineOf(b, id)));
    await ask(b, 'SET', 'k', 'touched');
    seen.push(masked(await lineOf(b, id)));
    assert.equal(await ask(a, 'MULTI'), '+OK\r\n');
    seen.push(masked(await lineOf(b, id)));
    assert.equal(await ask(a, 'SET', 'k', 'v'), '+QUEUED\r\n');
    assert.equal(await ask(a, 'GET', 'k'), '+QUEUED\r\n');
    seen.push(masked(await lineOf(b, id)));
    assert.equal(await ask(a, 'EXEC'), '*-1\r\n');
    seen.push(masked(await lineOf(b, id)));
    assert.equal(await ask(a, 'MULTI'), '+OK\r\n');
    assert.equal(await ask(a, 'SET', 'k', 'abc'), '+QUEUED\r\n');
    seen.push(masked(await lineOf(b, id)));
    assert.equal(await ask(a, 'DISCARD'), '+OK\r\n');
    assert.equal(await ask(a, 'CLIENT', 'NO-EVICT', 'ON'), '+OK\r\n');
    seen.push(masked(await ask(a, 'CLIENT', 'INFO')));
    assert.equal(await ask(a, 'CLIENT', 'NO-EVICT', 'OFF'), '+OK\r\n');
    const monitorId = await idOf(m);
    assert.equal(await ask(m, 'MONITOR'), '+OK\r\n');
    seen.push(masked(await lineOf(b, monitorId)));
    // A write held by CLIENT PAUSE WRITE: the client is blocked (b) until UNPAUSE.
    assert.equal(await ask(b, 'CLIENT', 'PAUSE', '5000', 'WRITE'), '+OK\r\n');
    a.write(resp('SET', 'k', 'paused'));
    let held = '';
    for (let i = 0; i < 50 && !/ flags=\S*b/.test(held); i++) {
      await new Promise((r) => setTimeout(r, 20));
      held = await lineOf(b, id);
    }
    seen.push(masked(held));
    assert.equal(await ask(b, 'CLIENT', 'UNPAUSE'), '+OK\r\n');
    assert.equal(await a.reply(), '+OK\r\n');
    seen.push(masked(await lineOf(b, id)));
    return seen;
  } finally {
    a.destroy();
    b.destroy();
    m.destroy();
  }
}

describe('CLIENT LIST / INFO flags and multi=, against redis-server', () => {
  const servers = compareServersForSuite();

  it('the same lines as redis-server through MULTI, a touched WATCH, NO-EVICT, MONITOR and CLIENT PAUSE', async () => {
    const { ours, redis } = servers.ports();
    const expected = await session(redis);
    const actual = await session(ours);
    assert.equal(actual.length, expected.length);
    for (let i = 0; i < expected.length; i++) assert.equal(actual[i], expected[i], `line ${i}`);
    // The states are really there (not N everywhere on both sides).
    // Redis queues nothing once a watched key was touched: multi=0.
    assert.match(actual[4], / flags=xd .* multi=0 /);
    assert.match(actual[6], / flags=x .* multi=1 .* multi-mem=31 /);
    assert.match(actual[8], / flags=O /);
    assert.match(actual[9], / flags=b /);
  });

  it('CLIENT NO-TOUCH shows T (Redis 7.2; redis-server 7.0 has no NO-TOUCH)', async () => {
    const ours = await startOurs();
    const c = await RawClient.connect(ours.port);
    try {
      assert.equal(await ask(c, 'CLIENT', 'NO-TOUCH', 'ON'), '+OK\r\n');
      assert.match(await ask(c, 'CLIENT', 'INFO'), / flags=T db=0 sub=0 psub=0 ssub=0 multi=-1 /);
      assert.equal(await ask(c, 'CLIENT', 'NO-EVICT', 'ON'), '+OK\r\n');
      assert.match(await ask(c, 'CLIENT', 'INFO'), / flags=eT /);
    } finally {
      c.destroy();
      await ours.close();
    }
  });
});
