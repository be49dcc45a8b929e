/**
 * Count arguments cannot make a reply (or a step's working set) grow past the output limits:
 * HRANDFIELD with a huge negative count is refused with Redis' range error, and one HSCAN step
 * reads a bounded number of values whatever COUNT says. The server runs as a child process so
 * its memory can be measured.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { mib, MiB, procMemory } from '../helpers/proc.js';
import { spawnOurs, type Child } from '../helpers/servers.js';

describe('count arguments are bounded', () => {
  let child: Child;
  let c: Redis;
  before(async () => {
    child = await spawnOurs(['--data-dir', 'data']);
    c = new Redis(child.port, '127.0.0.1');
    await c.hset('ns', 'f1', 'v1', 'f2', 'v2', 'f3', 'v3');
  });
  after(async () => {
    c.disconnect();
    child.proc.kill('SIGTERM');
    await child.exited;
  });

  it('HRANDFIELD ns -600000000 / -100000000 answer "ERR value is out of range" at once; memory stays flat', async (t) => {
    const pid = child.proc.pid!;
    const before = procMemory(pid);
    for (const n of ['-600000000', '-100000000', '-100001']) {
      for (const extra of [[], ['WITHVALUES']]) {
        const started = Date.now();
        await assert.rejects(c.call('HRANDFIELD', 'ns', n, ...extra), { message: 'ERR value is out of range' }, `HRANDFIELD ns ${n}`);
        assert.ok(Date.now() - started < 1000, `HRANDFIELD ns ${n} took ${Date.now() - started} ms`);
      }
    }
    const peak = procMemory(pid).peak;
    t.diagnostic(`peak RSS ${mib(before.peak)} -> ${mib(peak)}`);
    assert.ok(peak - before.peak < 64 * MiB, `peak grew by ${mib(peak - before.peak)}`);
    assert.equal(await c.ping(), 'PONG');
  });

  it('HRANDFIELD within the bound still answers as Redis does', async () => {
    const many = (await c.hrandfield('ns', -100000)) as string[];
    assert.equal(many.length, 100000);
    assert.ok(many.every((f) => ['f1', 'f2', 'f3'].includes(f)));
    assert.deepEqual(((await c.hrandfield('ns', 600000000)) as string[]).sort(), ['f1', 'f2', 'f3'], 'a positive count is capped by the hash');
    assert.equal(((await c.hrandfield('ns', -4, 'WITHVALUES')) as string[]).length, 8);
    assert.deepEqual(await c.hrandfield('ns', 0), []);
  });

  it('HSCAN COUNT 100000 returns at most 1000 field/value pairs per step, and every field over the whole scan', async () => {
    const N = 2500;
    const args: string[] = [];
    for (let i = 0; i < N; i++) args.push(`field:${i}`, `value:${i}`);
    await c.hset('big', ...args);
    let cursor = '0';
    const seen = new Set<string>();
    let steps = 0;
    do {
      const [next, flat] = await c.hscan('big', cursor, 'COUNT', 100000);
      assert.ok(flat.length / 2 <= 1000, `one step returned ${flat.length / 2} pairs`);
      for (let i = 0; i < flat.length; i += 2) {
        assert.equal(flat[i + 1], flat[i].replace('field', 'value'));
        seen.add(flat[i]);
      }
      cursor = next;
      steps++;
    } while (cursor !== '0' && steps < 100);
    assert.equal(seen.size, N);
    // Names alone are small: NOVALUES keeps the large step.
    const [, names] = await c.call('HSCAN', 'big', '0', 'COUNT', '100000', 'NOVALUES') as [string, string[]];
    assert.equal(names.length, N);
  });
});
