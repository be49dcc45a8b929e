/**
 * The value cache through a real client, for large values (read_cache_mb) and small ones
 * (value_cache_mb): hits are counted, and no write path — overwrite, APPEND, SETRANGE, expiry, DEL,
 * namespace DEL, RENAME, FLUSHALL, MULTI/EXEC, a script — can leave an old value to be served, in
 * sync and async mode, with and without compression (async decoding).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { startOurs } from '../helpers/servers.js';

const KIB = 1024;
const sizes = [
  ['large', 300 * KIB, 'read_cache_hits'],
  ['small', KIB, 'value_cache_hits'],
] as const;

const modes = [
  ['sync', {}],
  ['async', { async_write: true, batch_timeout_ms: 5, batch_size: 50 }],
  ['zstd, sync', { storage_compression: { enabled: true, algorithm: 'zstd' } }],
] as const;

describe('value cache', () => {
  for (const [mode, overrides] of modes) for (const [label, size, counter] of sizes) {
    const big = (c: string, n: number = size): Buffer => Buffer.alloc(n, c);
    const hits = async (r: Redis): Promise<number> => Number(new RegExp(`${counter}:(\\d+)`).exec(await r.info('blobasaur'))?.[1]);
    it(`(${mode}, ${label} values) serves repeated GETs from memory and never an old value`, async () => {
      const s = await startOurs({ num_shards: 2, ...overrides });
      const r = new Redis({ port: s.port, host: '127.0.0.1' });
      try {
        await r.set('k', big('a'));
        await s.store.drain();
        assert.equal((await r.getBuffer('k'))?.equals(big('a')), true);
        // A compressed value is decoded off the event loop; it is cached once that is done.
        await new Promise((res) => setTimeout(res, 20));
        const before = await hits(r);
        for (let i = 0; i < 3; i++) assert.equal((await r.getBuffer('k'))?.equals(big('a')), true);
        assert.equal((await hits(r)) - before, 3, 'three GETs answered by the cache');

        await r.set('k', big('b'));
        assert.equal((await r.getBuffer('k'))?.equals(big('b')), true, 'overwrite');
        await s.store.drain();
        await r.getBuffer('k');
        await r.append('k', 'tail');
        assert.equal((await r.getBuffer('k'))?.equals(Buffer.concat([big('b'), Buffer.from('tail')])), true, 'APPEND');
        await s.store.drain();
        await r.getBuffer('k');
        await r.setrange('k', 0, 'HEAD');
        assert.equal((await r.getrange('k', 0, 3)), 'HEAD', 'SETRANGE');
        assert.equal((await r.getBuffer('k'))?.subarray(0, 5).toString(), 'HEADb');
        await s.store.drain();
        await r.getBuffer('k');
        await r.rename('k', 'k2');
        assert.equal(await r.getBuffer('k'), null, 'RENAME source');
        assert.equal((await r.getBuffer('k2'))?.length, size + 4);
        await s.store.drain();
        await r.getBuffer('k2');
        await r.pexpire('k2', 50);
        await new Promise((res) => setTimeout(res, 80));
        assert.equal(await r.getBuffer('k2'), null, 'expired');

        await r.set('d', big('d'));
        await s.store.drain();
        await r.getBuffer('d');
        await r.del('d');
        assert.equal(await r.getBuffer('d'), null, 'DEL');

        await r.hset('ns', 'f', big('h'));
        await s.store.drain();
        assert.equal((await r.hgetBuffer('ns', 'f'))?.equals(big('h')), true);
        await r.hset('ns', 'f', big('i'));
        assert.equal((await r.hgetBuffer('ns', 'f'))?.equals(big('i')), true, 'HSET overwrite');
        await s.store.drain();
        await r.hgetBuffer('ns', 'f');
        await r.del('ns');
        assert.equal(await r.hgetBuffer('ns', 'f'), null, 'namespace DEL');

        // MULTI/EXEC and a script write through the same path.
        await r.set('t', big('t'));
        await s.store.drain();
        await r.getBuffer('t');
        const execd = await r.multi().set('t', big('u')).getBuffer('t').exec();
        assert.equal((execd?.[1]?.[1] as Buffer).equals(big('u')), true, 'GET inside EXEC');
        assert.equal((await r.getBuffer('t'))?.equals(big('u')), true, 'after EXEC');
        await s.store.drain();
        await r.getBuffer('t');
        await r.eval("redis.call('SET', KEYS[1], ARGV[1]); return 1", 1, 't', big('v'));
        assert.equal((await r.getBuffer('t'))?.equals(big('v')), true, 'after a script');
        await s.store.drain();
        assert.equal(((await r.eval("return redis.call('GET', KEYS[1])", 1, 't')) as string).length, size, 'GET inside a script');
        // WATCH sees a write to a cached key.
        const w = new Redis({ port: s.port, host: '127.0.0.1' });
        try {
          await w.watch('t');
          await r.set('t', big('w'));
          assert.equal(await w.multi().get('t').exec(), null, 'EXEC after a watched key changed');
        } finally {
          w.disconnect();
        }

        await r.set('z', big('z'));
        await s.store.drain();
        await r.getBuffer('z');
        await r.flushall();
        assert.equal(await r.getBuffer('z'), null, 'FLUSHALL');
        await s.store.drain();
        assert.equal(await r.getBuffer('z'), null, 'FLUSHALL, committed');
      } finally {
        r.disconnect();
        await s.close();
      }
    });
  }

  it('read_cache_mb = 0 and value_cache_mb = 0 turn it off', async () => {
    const s = await startOurs({ read_cache_mb: 0, value_cache_mb: 0 });
    const r = new Redis({ port: s.port, host: '127.0.0.1' });
    try {
      await r.set('k', Buffer.alloc(300 * KIB, 'a'));
      await r.set('small', 'x'.repeat(1000));
      for (let i = 0; i < 3; i++) {
        await r.getBuffer('k');
        await r.get('small');
      }
      assert.match(await r.info('blobasaur'), /read_cache_hits:0\r\n[^]*read_cache_entries:0\r\nvalue_cache_hits:0\r\n[^]*value_cache_entries:0\r\n/);
    } finally {
      r.disconnect();
      await s.close();
    }
  });
});
