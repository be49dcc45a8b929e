/**
 * HRANDFIELD of a large namespace (issue 17 point 4) is sampled in bounded steps, not read whole:
 * the replies have redis-server's shape and semantics (distinct fields for a positive count, at
 * most the hash's size; repeats for a negative one; pairs with WITHVALUES, an array of pairs in
 * RESP3), checked against a real redis-server holding the same hash.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { RawClient, resp } from '../helpers/raw.js';
import { compareServersForSuite } from '../helpers/compare.js';
import { STREAMED_NAMESPACE_FIELDS } from '../../src/storage/keyspace.js';

const FIELDS = STREAMED_NAMESPACE_FIELDS * 6;
const value = (field: string): string => `value-of-${field}`;

async function fillHash(r: Redis, ns: string, n: number): Promise<void> {
  for (let i = 0; i < n; i += 500) {
    const args: string[] = [];
    for (let j = i; j < Math.min(n, i + 500); j++) args.push(`f:${j}`, value(`f:${j}`));
    await r.hset(ns, ...args);
  }
}

describe('HRANDFIELD of a large hash against redis-server', () => {
  const servers = compareServersForSuite();

  it('counts, distinctness, values and RESP3 shape are those of redis-server', async () => {
    for (const port of [servers.redis.port, servers.ours.port]) {
      const r = new Redis({ port, host: '127.0.0.1' });
      const where = `port ${port === servers.ours.port ? 'ours' : 'redis'}`;
      const member = (f: string): boolean => /^f:\d+$/.test(f) && Number(f.slice(2)) < FIELDS;
      try {
        await r.flushall();
        await fillHash(r, 'big', FIELDS);
        assert.ok(member((await r.hrandfield('big')) as string), where);
        assert.equal(await r.hrandfield('missing'), null);
        assert.deepEqual(await r.hrandfield('big', 0), []);
        const ten = (await r.hrandfield('big', 10)) as string[];
        assert.equal(ten.length, 10, where);
        assert.equal(new Set(ten).size, 10, where);
        assert.ok(ten.every(member), where);
        const repeats = (await r.hrandfield('big', -50)) as string[];
        assert.equal(repeats.length, 50, where);
        assert.ok(repeats.every(member), where);
        const pairs = (await r.hrandfield('big', 20, 'WITHVALUES')) as string[];
        assert.equal(pairs.length, 40, where);
        for (let i = 0; i < pairs.length; i += 2) assert.equal(pairs[i + 1], value(pairs[i]), where);
        const negPairs = (await r.hrandfield('big', -30, 'WITHVALUES')) as string[];
        assert.equal(negPairs.length, 60, where);
        for (let i = 0; i < negPairs.length; i += 2) assert.equal(negPairs[i + 1], value(negPairs[i]), where);
        // More than half the hash, and more than all of it.
        const most = (await r.hrandfield('big', Math.floor(FIELDS * 0.7))) as string[];
        assert.equal(new Set(most).size, Math.floor(FIELDS * 0.7), where);
        const all = (await r.hrandfield('big', FIELDS * 2)) as string[];
        assert.equal(all.length, FIELDS, where);
        assert.equal(new Set(all).size, FIELDS, where);
        // Deleted fields never come back; inside MULTI the reply is one element of EXEC's.
        const gone: string[] = [];
        for (let i = 0; i < FIELDS; i += 3) gone.push(`f:${i}`);
        await r.hdel('big', ...gone);
        const left = FIELDS - gone.length;
        const afterDel = (await r.hrandfield('big', -2000)) as string[];
        assert.ok(afterDel.every((f) => member(f) && Number(f.slice(2)) % 3 !== 0), where);
        const distinctAfterDel = (await r.hrandfield('big', 100)) as string[];
        assert.equal(new Set(distinctAfterDel).size, 100, where);
        assert.ok(distinctAfterDel.every((f) => Number(f.slice(2)) % 3 !== 0), where);
        const [[err, inTx]] = (await r.multi().hrandfield('big', 7).exec())!;
        assert.equal(err, null);
        assert.equal(new Set(inTx as string[]).size, 7, where);
        assert.equal(((await r.hrandfield('big', left + 5)) as string[]).length, left, where);

        const raw = await RawClient.connect(port);
        try {
          raw.write(Buffer.concat([resp('HELLO', '3'), resp('HRANDFIELD', 'big', '3', 'WITHVALUES'), resp('HRANDFIELD', 'big', '-2', 'WITHVALUES')]));
          const [, three, two] = await raw.replies(3);
          assert.match(three, /^\*3\r\n\*2\r\n\$\d+\r\nf:\d+\r\n\$\d+\r\nvalue-of-f:\d+\r\n\*2\r\n/, where);
          assert.match(two, /^\*2\r\n\*2\r\n\$\d+\r\nf:\d+\r\n/, where);
        } finally {
          raw.destroy();
        }
      } finally {
        r.disconnect();
      }
    }
  });

  it('picks from the whole hash, not from a corner of it', async () => {
    const r = new Redis({ port: servers.ours.port, host: '127.0.0.1' });
    try {
      await r.flushall();
      await fillHash(r, 'big', FIELDS);
      const picks = (await r.hrandfield('big', -FIELDS)) as string[];
      const distinct = new Set(picks).size;
      // Uniform picks give 1 - 1/e ≈ 63% of the fields (σ ≈ 0.5%); picks from the keys after the
      // widest gaps of key space (the first design) gave 5%.
      assert.ok(distinct > FIELDS * 0.55, `${distinct} distinct fields in ${FIELDS} picks`);
      const thirds = [0, 0, 0];
      for (const f of picks) thirds[Math.min(2, Math.floor((Number(f.slice(2)) * 3) / FIELDS))]++;
      assert.ok(thirds.every((n) => n > 0), `picks per third of the fields: ${thirds.join(', ')}`);
    } finally {
      r.disconnect();
    }
  });
});
