/**
 * SCAN/HSCAN cursors cannot be guessed by another connection, and what the server keeps for them
 * is bounded in bytes: many cursors over huge key names cost a bounded amount of memory. The
 * server runs as a child process so its memory can be measured.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { mib, MiB, procMemory } from '../helpers/proc.js';
import { spawnOurs, type Child } from '../helpers/servers.js';

describe('SCAN cursors', () => {
  let child: Child;
  let a: Redis;
  let b: Redis;
  before(async () => {
    child = await spawnOurs(['--data-dir', 'data']);
    a = new Redis(child.port, '127.0.0.1');
    b = new Redis(child.port, '127.0.0.1');
  });
  after(async () => {
    a.disconnect();
    b.disconnect();
    child.proc.kill('SIGTERM');
    await child.exited;
  });

  it('are random 63-bit numbers: a neighbouring cursor is unknown to every connection', async () => {
    await a.mset(...Array.from({ length: 100 }, (_, i) => [`k${i}`, 'v']).flat());
    await a.hset('h', ...Array.from({ length: 100 }, (_, i) => [`f${i}`, 'v']).flat());
    const [c1] = await a.scan('0', 'COUNT', 5);
    const [c2] = await a.scan(c1, 'COUNT', 5);
    const [h1] = await a.hscan('h', '0', 'COUNT', 5);
    for (const c of [c1, c2, h1]) {
      assert.match(c, /^[1-9][0-9]*$/);
      assert.ok(BigInt(c) < 1n << 63n, c);
    }
    assert.ok(BigInt(c2) - BigInt(c1) !== 1n && BigInt(h1) - BigInt(c2) !== 1n, `${c1} ${c2} ${h1}`);
    for (const guess of [BigInt(c2) + 1n, BigInt(c2) - 1n, 1n, 2n, 3n]) {
      await assert.rejects(b.scan(guess.toString()), { message: 'ERR invalid cursor' });
      await assert.rejects(b.hscan('h', guess.toString()), { message: 'ERR invalid cursor' });
    }
    // The cursor itself still works from any connection (clients spread scans over pools).
    const [, keys] = await b.scan(c2, 'COUNT', 5);
    assert.ok(keys.length > 0);
  });

  it('250 cursors over 8 MiB key names do not hold 250 copies of the names', async (t) => {
    const NAME = 8 * MiB;
    for (let i = 0; i < 3; i++) await a.set(Buffer.alloc(NAME, 0x61 + i), 'v');
    const pid = child.proc.pid!;
    const base = procMemory(pid);
    let cursors = 0;
    for (let i = 0; i < 250; i++) {
      // COUNT 1 stops right after one key, so the cursor holds that key's name; MATCH keeps the reply small.
      const [cursor] = await b.scan('0', 'MATCH', 'no-such-key', 'COUNT', 1);
      if (cursor !== '0') cursors++;
      if (i % 10 === 9) {
        const now = procMemory(pid);
        assert.ok(now.rss - base.rss < 400 * MiB, `after ${i + 1} cursors RSS grew by ${mib(now.rss - base.rss)}`);
      }
    }
    const end = procMemory(pid);
    t.diagnostic(`${cursors} cursors: RSS ${mib(base.rss)} -> ${mib(end.rss)}, peak ${mib(end.peak)}`);
    assert.equal(cursors, 250);
    assert.equal(await a.ping(), 'PONG');
  });
});
