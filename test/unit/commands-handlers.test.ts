/**
 * Command handlers through the dispatcher, without sockets, in every write mode (sync/async,
 * with and without compression). The clock is the harness's: each command reads it once.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Harness, WRITE_MODES } from '../helpers/harness.js';

for (const mode of WRITE_MODES) {
  describe(`handlers (${mode.name})`, () => {
    let h: Harness;
    before(() => {
      h = Harness.open(mode.opts);
    });
    after(async () => {
      assert.deepEqual(h.failures, []);
      await h.close();
    });

    it('APPEND and SETRANGE keep the key\'s TTL, as in Redis', async () => {
      assert.equal(await h.resp('SET', 'k', 'v', 'EX', 100), '+OK\r\n');
      assert.equal(await h.resp('APPEND', 'k', 'x'), ':2\r\n');
      assert.equal(await h.resp('TTL', 'k'), ':100\r\n');
      assert.equal(await h.resp('SETRANGE', 'k', 0, 'y'), ':2\r\n');
      assert.equal(await h.resp('PTTL', 'k'), ':100000\r\n');
      assert.equal(await h.resp('GET', 'k'), '$2\r\nyx\r\n');
      // A new key made by APPEND has no TTL.
      assert.equal(await h.resp('APPEND', 'fresh', 'abc'), ':3\r\n');
      assert.equal(await h.resp('TTL', 'fresh'), ':-1\r\n');
    });

    it('SET clears the TTL unless KEEPTTL; KEEPTTL on a new key sets none', async () => {
      await h.run('SET', 'a', '1', 'PX', 5000);
      assert.equal(await h.resp('SET', 'a', '2', 'KEEPTTL'), '+OK\r\n');
      assert.equal(await h.resp('PTTL', 'a'), ':5000\r\n');
      assert.equal(await h.resp('SET', 'a', '3'), '+OK\r\n');
      assert.equal(await h.resp('PTTL', 'a'), ':-1\r\n');
      assert.equal(await h.resp('SET', 'b', '1', 'KEEPTTL'), '+OK\r\n');
      assert.equal(await h.resp('TTL', 'b'), ':-1\r\n');
    });

    it('a key is gone from the millisecond it expires, by the command\'s own clock', async () => {
      await h.run('SET', 'e', 'v', 'PX', 1000);
      h.now += 999;
      assert.equal(await h.resp('PTTL', 'e'), ':1\r\n');
      assert.equal(await h.resp('GET', 'e'), '$1\r\nv\r\n');
      h.now += 1;
      assert.equal(await h.resp('GET', 'e'), '$-1\r\n');
      assert.equal(await h.resp('TTL', 'e'), ':-2\r\n');
      assert.equal(await h.resp('EXISTS', 'e'), ':0\r\n');
    });

    it('EXPIRE options, PERSIST, GETEX, and a time in the past deletes', async () => {
      await h.run('SET', 'x', 'v');
      assert.equal(await h.resp('EXPIRE', 'x', 100, 'XX'), ':0\r\n');
      assert.equal(await h.resp('EXPIRE', 'x', 100, 'NX'), ':1\r\n');
      assert.equal(await h.resp('EXPIRE', 'x', 50, 'GT'), ':0\r\n');
      assert.equal(await h.resp('EXPIRE', 'x', 50, 'LT'), ':1\r\n');
      assert.equal(await h.resp('TTL', 'x'), ':50\r\n');
      assert.equal(await h.resp('GETEX', 'x', 'PERSIST'), '$1\r\nv\r\n');
      assert.equal(await h.resp('TTL', 'x'), ':-1\r\n');
      assert.equal(await h.resp('GETEX', 'x', 'EXAT', Math.floor(h.now / 1000) + 10), '$1\r\nv\r\n');
      assert.equal(await h.resp('TTL', 'x'), ':10\r\n');
      assert.equal(await h.resp('PEXPIREAT', 'x', h.now - 1), ':1\r\n');
      assert.equal(await h.resp('GET', 'x'), '$-1\r\n');
    });

    it('RENAME moves the value and its TTL; RENAMENX refuses an existing target', async () => {
      await h.run('SET', 'src', 'value', 'EX', 30);
      await h.run('SET', 'other', 'o');
      assert.equal(await h.resp('RENAMENX', 'src', 'other'), ':0\r\n');
      assert.equal(await h.resp('RENAME', 'src', 'dst'), '+OK\r\n');
      assert.equal(await h.resp('GET', 'src'), '$-1\r\n');
      assert.equal(await h.resp('GET', 'dst'), '$5\r\nvalue\r\n');
      assert.equal(await h.resp('TTL', 'dst'), ':30\r\n');
      assert.equal(await h.resp('RENAME', 'nope', 'x'), '-ERR no such key\r\n');
    });

    it('namespaces: HSET clears a field\'s TTL, HSETEX sets it, HPERSIST removes it', async () => {
      assert.equal(await h.resp('HSETEX', 'ns', 'EX', 60, 'FIELDS', 2, 'f', '1', 'g', '2'), ':1\r\n');
      assert.equal(await h.resp('HTTL', 'ns', 'FIELDS', 3, 'f', 'g', 'zz'), '*3\r\n:60\r\n:60\r\n:-2\r\n');
      assert.equal(await h.resp('HSET', 'ns', 'f', 'one'), ':0\r\n');
      assert.equal(await h.resp('HTTL', 'ns', 'FIELDS', 1, 'f'), '*1\r\n:-1\r\n');
      assert.equal(await h.resp('HPERSIST', 'ns', 'FIELDS', 1, 'g'), '*1\r\n:1\r\n');
      assert.equal(await h.resp('HGET', 'ns', 'f'), '$3\r\none\r\n');
      assert.equal(await h.resp('HLEN', 'ns'), ':2\r\n');
      assert.equal(await h.resp('HDEL', 'ns', 'f', 'f', 'zz'), ':1\r\n');
      assert.equal(await h.resp('HEXPIRE', 'ns', 0, 'FIELDS', 1, 'g'), '*1\r\n:2\r\n');
      assert.equal(await h.resp('EXISTS', 'ns'), ':0\r\n');
    });

    it('argument errors use Redis\' texts', async () => {
      assert.equal(await h.resp('SET', 'k', 'v', 'EX', 0), "-ERR invalid expire time in 'set' command\r\n");
      assert.equal(await h.resp('SET', 'k', 'v', 'EX', 'abc'), '-ERR value is not an integer or out of range\r\n');
      assert.equal(await h.resp('SET', 'k', 'v', 'EX', 10, 'PX', 10), '-ERR syntax error\r\n');
      assert.equal(await h.resp('SET', 'k', 'v', 'EX'), '-ERR syntax error\r\n');
      assert.equal(await h.resp('GETEX', 'k', 'PERSIST', 'EX', 5), '-ERR syntax error\r\n');
      assert.equal(await h.resp('GETRANGE', 'k', 'a', 1), '-ERR value is not an integer or out of range\r\n');
      assert.equal(await h.resp('SCAN', 0, 'COUNT', 0), '-ERR syntax error\r\n');
      assert.equal(await h.resp('HSETEX', 'ns', 'EX', 5, 'EX', 5, 'FIELDS', 1, 'f', 'v'), '-ERR syntax error\r\n');
      assert.equal(await h.resp('GET'), "-ERR wrong number of arguments for 'get' command\r\n");
    });

    it('MSETNX is all or nothing; MGET sees every write before it', async () => {
      assert.equal(await h.resp('MSETNX', 'm1', 'a', 'm2', 'b'), ':1\r\n');
      assert.equal(await h.resp('MSETNX', 'm2', 'x', 'm3', 'y'), ':0\r\n');
      assert.equal(await h.resp('MGET', 'm1', 'm2', 'm3'), '*3\r\n$1\r\na\r\n$1\r\nb\r\n$-1\r\n');
    });
  });
}

describe('keyspace metadata', () => {
  it('size, stored size, codec, times and version of a key and of a namespace field', async () => {
    const h = Harness.open({ compression: { algorithm: 'zstd', level: 3 } });
    try {
      const { Keyspace } = await import('../../src/storage/keyspace.js');
      const ks = new Keyspace(h.store);
      const t0 = h.now;
      await h.run('SET', 'doc', 'x'.repeat(10_000), 'PXAT', t0 + 60_000);
      const m = await ks.meta(null, Buffer.from('doc'), h.now);
      assert.ok(m !== null);
      assert.equal(m.size, 10_000);
      assert.equal(m.codec, 'zstd');
      assert.ok(m.storedSize < 1000, `zstd stores 10,000 x's in ${m.storedSize} bytes`);
      assert.equal(m.expiresAt, t0 + 60_000);
      assert.equal(m.version, 0);
      assert.equal(m.createdAt, t0);
      h.now += 5;
      await h.run('SET', 'doc', 'y', 'KEEPTTL');
      const m2 = await ks.meta(null, Buffer.from('doc'), h.now);
      assert.deepEqual([m2?.version, m2?.createdAt, m2?.updatedAt, m2?.size, m2?.expiresAt], [1, t0, t0 + 5, 1, t0 + 60_000]);
      await h.run('HSET', 'ns', 'f', 'value');
      const f = await ks.meta(Buffer.from('ns'), Buffer.from('f'), h.now);
      assert.deepEqual([f?.size, f?.expiresAt, f?.version], [5, null, 0]);
      assert.equal(await ks.meta(null, Buffer.from('nope'), h.now), null);
      h.now += 60_000;
      assert.equal(await ks.meta(null, Buffer.from('doc'), h.now), null, 'expired keys have no metadata');
    } finally {
      await h.close();
    }
  });
});
