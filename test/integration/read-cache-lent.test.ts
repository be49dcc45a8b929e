/**
 * GET of a large value in the read cache is written from the cache's own memory, lent until the
 * socket has taken it (storage/read-cache.ts pin(), protocol/reply.ts PinnedBulk). A client that
 * does not read holds its replies in the server's output buffer while other clients overwrite the
 * key, delete it, flush everything and push every entry out of a small cache: its replies must
 * still be exactly the value at the time each GET ran, as with redis-server.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { Redis } from 'ioredis';
import { startOurs, startRedis } from '../helpers/servers.js';

const SIZE = 400 * 1024;
const GETS = 30;

/** Distinct bytes per seed, so a reply built from another value's (or a reused) block shows. */
function value(seed: number): Buffer {
  const out = Buffer.allocUnsafe(SIZE);
  for (let i = 0; i < SIZE; i++) out[i] = (i * 13 + seed * 101 + (i >> 12)) & 0xff;
  return out;
}

async function commandsProcessed(r: Redis): Promise<number> {
  return Number(/total_commands_processed:(\d+)/.exec(await r.info('stats'))![1]);
}

/** Runs the scenario against a server on `port`; returns what the client that did not read got. */
async function slowReaderScenario(port: number): Promise<Buffer> {
  const r = new Redis({ port, host: '127.0.0.1' });
  const slow = net.connect({ port, host: '127.0.0.1' });
  slow.pause();
  try {
    await new Promise((res) => slow.once('connect', res));
    for (let i = 0; i < 8; i++) await r.set(`k${i}`, value(i));
    assert.equal((await r.getBuffer('k0'))?.equals(value(0)), true);
    const received: Buffer[] = [];
    slow.on('data', (d: Buffer) => received.push(d));
    const before = await commandsProcessed(r);
    slow.write('GET k0\r\n'.repeat(GETS));
    // Wait until the server has run all of them (INFO itself counts one per call).
    for (let polls = 1; (await commandsProcessed(r)) - before - polls < GETS; polls++) {
      await new Promise((res) => setTimeout(res, 10));
      assert.ok(polls < 1000, 'the slow client\'s GETs were not processed');
    }
    // Meanwhile: overwrite, churn the cache through every other key, delete, flush, refill.
    await r.set('k0', value(100));
    for (let round = 0; round < 2; round++) {
      for (let i = 1; i < 8; i++) assert.equal((await r.getBuffer(`k${i}`))?.equals(value(i)), true, `k${i}`);
    }
    assert.equal((await r.getBuffer('k0'))?.equals(value(100)), true);
    await r.del('k0');
    await r.flushall();
    for (let i = 0; i < 8; i++) await r.set(`n${i}`, value(200 + i));
    for (let i = 0; i < 8; i++) assert.equal((await r.getBuffer(`n${i}`))?.equals(value(200 + i)), true, `n${i}`);
    const expected = GETS * (`$${SIZE}\r\n`.length + SIZE + 2);
    const done = new Promise<void>((res) => slow.on('data', () => received.reduce((n, b) => n + b.length, 0) >= expected && res()));
    slow.resume();
    await done;
    return Buffer.concat(received);
  } finally {
    slow.destroy();
    r.disconnect();
  }
}

describe('large values lent from the read cache', () => {
  it('a client that does not read gets exactly the value each GET saw, while others overwrite, delete, flush and churn the cache (same bytes as redis-server)', async () => {
    const one = Buffer.concat([Buffer.from(`$${SIZE}\r\n`), value(0), Buffer.from('\r\n')]);
    const expected = Buffer.concat(Array.from({ length: GETS }, () => one));
    // One shard with a 2 MiB cache: four values of 400 KiB fit, so the churn evicts everything.
    const ours = await startOurs({ num_shards: 1, read_cache_mb: 2 });
    const redis = await startRedis();
    try {
      const probe = new Redis({ port: ours.port, host: '127.0.0.1' });
      const hitsOf = async (): Promise<number> => Number(/read_cache_hits:(\d+)/.exec(await probe.info('blobasaur'))![1]);
      const hitsBefore = await hitsOf();
      const gotOurs = await slowReaderScenario(ours.port);
      const hits = (await hitsOf()) - hitsBefore;
      probe.disconnect();
      assert.ok(hits >= GETS, `the slow client's GETs were answered from the cache (${hits} hits)`);
      const gotRedis = await slowReaderScenario(redis.port);
      assert.equal(gotRedis.equals(expected), true, 'redis-server');
      assert.equal(gotOurs.length, expected.length);
      assert.equal(gotOurs.equals(expected), true, 'ours: byte for byte');
    } finally {
      await ours.close();
      await redis.stop();
    }
  });
});
