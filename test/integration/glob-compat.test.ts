/**
 * KEYS, SCAN MATCH and HSCAN MATCH patterns against a real redis-server: Redis' own regression
 * cases for abusive patterns, and a seeded set of random patterns over a small keyset, compared
 * answer by answer (sorted: the order of KEYS is unspecified).
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import fc from 'fast-check';
import { compareServersForSuite } from '../helpers/compare.js';

const SEED = Number(process.env.GLOB_SEED ?? 36021);
const PATTERNS = Number(process.env.GLOB_PATTERNS ?? 400);

const sortedStrings = (xs: Buffer[]): string[] => xs.map((b) => b.toString('latin1')).sort();

describe('glob patterns: same answers as redis-server', () => {
  const servers = compareServersForSuite();
  let ours: Redis;
  let redis: Redis;
  before(() => {
    ours = new Redis(servers.ports().ours, '127.0.0.1', { lazyConnect: false });
    redis = new Redis(servers.ports().redis, '127.0.0.1', { lazyConnect: false });
  });
  after(() => {
    ours.disconnect();
    redis.disconnect();
  });

  const both = async <T>(f: (c: Redis) => Promise<T>): Promise<[T, T]> => [await f(ours), await f(redis)];

  it("Redis' regression for pattern matching long nested loops (keyspace.tcl)", async () => {
    await both((c) => c.flushall());
    await both((c) => c.set('a'.repeat(40), '1'));
    const started = Date.now();
    const [a, b] = await both((c) => c.keys('a*'.repeat(20) + 'b'));
    assert.deepEqual(a, b);
    assert.deepEqual(a, []);
    assert.ok(Date.now() - started < 2000, `took ${Date.now() - started} ms`);
  });

  it("Redis' regression for pattern matching very long nested loops (50 000 × `*?`)", async () => {
    await both((c) => c.flushall());
    await both((c) => c.set('a'.repeat(50000), '1'));
    const [a, b] = await both((c) => c.keys('*?'.repeat(50000)));
    assert.deepEqual(a, b);
    assert.deepEqual(a, []);
  });

  it('more than 1000 nested stars: no match, as in Redis; 900 still match', async () => {
    await both((c) => c.flushall());
    await both((c) => c.mset('a'.repeat(1100), '1', 'a'.repeat(900), '2'));
    for (const n of [900, 1100]) {
      const [a, b] = await both((c) => c.keys('*a'.repeat(n)));
      assert.deepEqual(sortedStrings(a.map((k) => Buffer.from(k))), sortedStrings(b.map((k) => Buffer.from(k))), `${n} stars`);
    }
  });

  it(`a seeded set of ${PATTERNS} random patterns (seed ${SEED}): KEYS, SCAN MATCH and HSCAN MATCH agree`, async () => {
    const keyChar = fc.constantFrom(...'ab-^[]*?\\x');
    const patChar = fc.constantFrom(...'ab-^[]*?\\x', '*', '*', '?', '[a-b]', '[^a]');
    const keys = fc.sample(fc.string({ unit: keyChar, maxLength: 8 }), { seed: SEED, numRuns: 60 });
    const patterns = fc.sample(fc.string({ unit: patChar, minLength: 1, maxLength: 10 }), { seed: SEED + 1, numRuns: PATTERNS });
    const uniq = [...new Set(keys)];
    await both((c) => c.flushall());
    await both((c) => c.mset(...uniq.flatMap((k) => [k, 'v'])));
    await both((c) => c.hset('hash-under-test', ...uniq.flatMap((k) => [k, 'v'])));
    const fields = uniq.filter((k) => k !== 'hash-under-test');
    assert.ok(fields.length > 30, `keyset of ${fields.length}`);
    let matchedSome = 0;
    for (const p of patterns) {
      const [ka, kb] = await both((c) => c.keysBuffer(p));
      if (kb.length > 0) matchedSome++;
      assert.deepEqual(sortedStrings(ka), sortedStrings(kb), `KEYS ${JSON.stringify(p)}`);
      // COUNT larger than the keyset: one step covers everything on both servers.
      const [sa, sb] = await both((c) => c.scanBuffer('0', 'MATCH', p, 'COUNT', 1000));
      assert.equal(String(sa[0]), '0');
      assert.deepEqual(sortedStrings(sa[1]), sortedStrings(sb[1]), `SCAN 0 MATCH ${JSON.stringify(p)}`);
      const [ha, hb] = await both((c) => c.hscanBuffer('hash-under-test', '0', 'MATCH', p, 'COUNT', 1000));
      const names = (r: [Buffer, Buffer[]]): string[] => sortedStrings(r[1].filter((_, i) => i % 2 === 0));
      assert.deepEqual(names(ha), names(hb), `HSCAN MATCH ${JSON.stringify(p)}`);
    }
    // The comparison says something only if many patterns match something and many do not.
    assert.ok(matchedSome > PATTERNS / 5 && matchedSome < PATTERNS - PATTERNS / 5, `${matchedSome} of ${PATTERNS} patterns matched a key`);
    assert.ok(uniq.includes(''), 'the keyset holds the empty name');
  });
});
