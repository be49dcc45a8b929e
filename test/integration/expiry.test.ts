/** SET options and the TTL family, compared byte for byte with redis-server where Redis fixes the reply. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { compareServersForSuite, itMatchesRedis, type Cmd } from '../helpers/compare.js';
import { startOurs } from '../helpers/servers.js';

const FAR = '4102444800'; // 2100-01-01, seconds
const FAR_MS = '4102444800123';

const SCRIPTS: Record<string, Cmd[]> = {
  'SET options': [
    ['SET', 'k', 'v', 'EXAT', FAR],
    ['EXPIRETIME', 'k'],
    ['SET', 'k', 'v2', 'KEEPTTL'],
    ['EXPIRETIME', 'k'],
    ['SET', 'k', 'v3'],
    ['EXPIRETIME', 'k'],
    ['SET', 'k', 'v4', 'PXAT', FAR_MS, 'GET'],
    ['PEXPIRETIME', 'k'],
    ['SET', 'n', '1', 'NX'],
    ['SET', 'n', '2', 'NX'],
    ['SET', 'n', '3', 'XX', 'GET'],
    ['SET', 'nope', '3', 'XX'],
    ['SET', 'nope', '3', 'XX', 'GET'],
    ['SET', 'n', '4', 'NX', 'GET'],
    ['GET', 'n'],
    ['SET', 'k', 'v', 'NX', 'XX'],
    ['SET', 'k', 'v', 'EX', '10', 'PX', '100'],
    ['SET', 'k', 'v', 'EX', '10', 'KEEPTTL'],
    ['SET', 'k', 'v', 'EX'],
    ['SET', 'k', 'v', 'EX', '0'],
    ['SET', 'k', 'v', 'EX', '-5'],
    ['SET', 'k', 'v', 'EX', 'abc'],
    ['SET', 'k', 'v', 'PX', '9223372036854775807'],
    ['SET', 'k', 'v', 'EXAT', '0'],
    ['SET', 'k', 'v', 'BOGUS'],
    ['SET', 'k', 'v', 'ex', '100', 'get'],
    ['TTL', 'k'],
  ],
  'SETEX, PSETEX, SETNX, GETDEL, GETEX': [
    ['SETEX', 's', '100', 'v'],
    ['TTL', 's'],
    ['SETEX', 's', '0', 'v'],
    ['SETEX', 's', 'x', 'v'],
    ['PSETEX', 'p', '0', 'v'],
    ['SETNX', 'nx', '1'],
    ['SETNX', 'nx', '2'],
    ['GET', 'nx'],
    ['GETDEL', 'nx'],
    ['GETDEL', 'nx'],
    ['EXISTS', 'nx'],
    ['SET', 'g', 'v'],
    ['GETEX', 'g', 'EXAT', FAR],
    ['EXPIRETIME', 'g'],
    ['GETEX', 'g', 'PERSIST'],
    ['TTL', 'g'],
    ['GETEX', 'g'],
    ['GETEX', 'nope', 'EX', '10'],
    ['GETEX', 'g', 'EX', '0'],
    ['GETEX', 'g', 'EX', '10', 'PERSIST'],
    ['GETEX', 'g', 'FOO'],
  ],
  'EXPIRE family': [
    ['SET', 'k', 'v'],
    ['EXPIRE', 'nope', '10'],
    ['TTL', 'nope'],
    ['PTTL', 'nope'],
    ['EXPIRETIME', 'nope'],
    ['TTL', 'k'],
    ['PEXPIRETIME', 'k'],
    ['EXPIREAT', 'k', FAR, 'XX'],
    ['EXPIREAT', 'k', FAR, 'NX'],
    ['EXPIREAT', 'k', FAR, 'GT'],
    ['EXPIREAT', 'k', FAR, 'LT'],
    ['EXPIRETIME', 'k'],
    ['PEXPIREAT', 'k', FAR_MS, 'GT'],
    ['PEXPIRETIME', 'k'],
    ['PEXPIREAT', 'k', '4102444800000', 'LT'],
    ['PEXPIRETIME', 'k'],
    ['EXPIREAT', 'k', '4102444801', 'NX'],
    ['PERSIST', 'k'],
    ['PERSIST', 'k'],
    ['EXPIREAT', 'k', FAR, 'GT'],
    ['EXPIREAT', 'k', FAR, 'LT'],
    ['EXPIRETIME', 'k'],
    ['EXPIRE', 'k', '10', 'NX', 'XX'],
    ['EXPIRE', 'k', '10', 'GT', 'LT'],
    ['EXPIRE', 'k', '10', 'NX', 'GT'],
    ['EXPIRE', 'k', '10', 'FOO'],
    ['EXPIRE', 'k', 'abc'],
    ['EXPIRE', 'k', '9223372036854775807'],
    ['EXPIRE', 'k', '99999999999999999999'],
    ['EXPIRE', 'k'],
    ['EXPIRE', 'k', '-1'],
    ['EXISTS', 'k'],
    ['SET', 'k', 'v'],
    ['EXPIREAT', 'k', '1'],
    ['GET', 'k'],
    ['SET', 'k', 'v'],
    ['PEXPIRE', 'k', '0'],
    ['EXISTS', 'k'],
  ],
};

describe('expiry', () => {
  const servers = compareServersForSuite();

  itMatchesRedis(servers.ports, SCRIPTS);

  for (const async_write of [false, true]) {
    it(`${async_write ? 'async' : 'sync'}: an entry is absent from the millisecond it expires, pending or committed`, async () => {
      const s = await startOurs({ async_write, batch_size: 1000, batch_timeout_ms: async_write ? 200 : 0 });
      const r = new Redis({ port: s.port, host: '127.0.0.1' });
      try {
        // Wide enough that a loaded machine still reads the key before it expires.
        const at = Date.now() + 1000;
        await r.set('soon', 'v', 'PXAT', at);
        await r.set('later', 'v', 'PX', 60_000);
        assert.equal(await r.get('soon'), 'v');
        const ttl = await r.pttl('soon');
        assert.ok(ttl > 0 && ttl <= 1000, `pttl ${ttl}`);
        await new Promise((resolve) => setTimeout(resolve, Math.max(0, at - Date.now()) + 5));
        assert.equal(await r.get('soon'), null);
        assert.equal(await r.exists('soon'), 0);
        assert.equal(await r.ttl('soon'), -2);
        assert.deepEqual(await r.keys('*'), ['later']);
        assert.equal(await r.dbsize(), 1);
        const ttlLater = await r.ttl('later');
        assert.ok(ttlLater > 58 && ttlLater <= 60, `ttl ${ttlLater}`);
        assert.equal(await r.set('soon', 'again'), 'OK', 'an expired key can be written anew');
        assert.equal(await r.ttl('soon'), -1);
      } finally {
        r.disconnect();
        await s.close();
      }
    });
  }

  it('metadata: version +1 per overwrite, updated_at moves, created_at stays; expiry changes keep version', async () => {
    const s = await startOurs({ num_shards: 1 });
    const r = new Redis({ port: s.port, host: '127.0.0.1' });
    try {
      await r.set('m', 'v1');
      await s.store.drain();
      const shard = s.store.queues[0].shard;
      const first = shard.meta(Buffer.from('m'))!;
      assert.equal(first.version, 0);
      await new Promise((resolve) => setTimeout(resolve, 5));
      await r.set('m', 'v2');
      await r.set('m', 'v3', 'EX', 100);
      await s.store.drain();
      const third = shard.meta(Buffer.from('m'))!;
      assert.equal(third.version, 2);
      assert.equal(third.created_at, first.created_at);
      assert.ok(third.updated_at > first.updated_at);
      assert.ok(third.expires_at! > Date.now());
      await r.persist('m');
      await s.store.drain();
      const persisted = shard.meta(Buffer.from('m'))!;
      assert.equal(persisted.version, 2, 'PERSIST does not overwrite the value');
      assert.equal(persisted.expires_at, null);
      await r.set('m', 'v4', 'PX', 1);
      await new Promise((resolve) => setTimeout(resolve, 10));
      await r.set('m', 'reborn');
      await s.store.drain();
      const reborn = shard.meta(Buffer.from('m'))!;
      assert.equal(reborn.version, 0, 'writing over an expired row starts a new life');
      assert.ok(reborn.created_at > first.created_at);
    } finally {
      r.disconnect();
      await s.close();
    }
  });

  it('TTLs survive a restart', async () => {
    const s1 = await startOurs({ num_shards: 2 });
    const dataDir = s1.dataDir;
    let r = new Redis({ port: s1.port, host: '127.0.0.1' });
    await r.set('t', 'v', 'EXAT', FAR);
    r.disconnect();
    await s1.close();
    const s2 = await startOurs({ num_shards: 2, data_dir: dataDir });
    r = new Redis({ port: s2.port, host: '127.0.0.1' });
    try {
      assert.equal(await r.expiretime('t'), Number(FAR));
    } finally {
      r.disconnect();
      await s2.close();
    }
  });
});

describe('expired rows are swept', () => {
  // By default sweep steps run in the maintenance worker; with an exclusive lock no second
  // connection can open the files, so they run inline in the commit. Both must behave the same.
  const modes = [
    ['in the maintenance worker', {}, '1'],
    ['inline (locking_mode EXCLUSIVE)', { sqlite: { locking_mode: 'EXCLUSIVE' } }, '0'],
  ] as const;
  for (const [mode, overrides, worker] of modes) it(`the sweeper (${mode}) deletes expired rows in bounded steps, keeps live ones, and honours order with pending writes`, async () => {
    const s = await startOurs({ num_shards: 2, ...overrides });
    const r = new Redis({ port: s.port, host: '127.0.0.1' });
    try {
      for (let base = 0; base < 6000; base += 2000) {
        const p = r.pipeline();
        for (let i = base; i < base + 2000; i++) p.set(`gone:${i}`, 'x'.repeat(100), 'PX', 50);
        await p.exec();
      }
      await r.hset('ns', 'keep', '1');
      await r.set('live', 'v', 'EX', 100);
      await r.set('persistent', 'v');
      // A key whose TTL is extended just before it would expire must survive the sweep.
      await r.set('extended', 'v', 'PX', 60);
      await r.pexpire('extended', 60_000);
      const deadline = Date.now() + 10_000;
      while (s.store.sweptRows < 6000 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
      assert.equal(s.store.sweptRows, 6000);
      assert.equal(s.store.byteTotals().rows, 4, 'only the live rows remain on disk');
      assert.deepEqual((await r.keys('*')).sort(), ['extended', 'live', 'ns', 'persistent']);
      assert.ok((await r.pttl('extended')) > 50_000);
      assert.match(await r.info('persistence'), new RegExp(`wal_checkpoint_worker:${worker}\r\n`));
    } finally {
      r.disconnect();
      await s.close();
    }
  });
});

describe('hash-field expiry (Redis 7.4 commands, HSETEX as in Redis 8)', () => {
  it('per-field codes, conditions, TTL reads, persist and expiry in time', async () => {
    const s = await startOurs();
    const r = new Redis({ port: s.port, host: '127.0.0.1' });
    const call = (...a: (string | number)[]): Promise<unknown> => r.call(String(a[0]), ...a.slice(1).map(String));
    try {
      await r.hset('h', 'a', '1', 'b', '2', 'c', '3');
      assert.deepEqual(await call('HEXPIREAT', 'h', FAR, 'FIELDS', 3, 'a', 'b', 'zz'), [1, 1, -2]);
      assert.deepEqual(await call('HEXPIRETIME', 'h', 'FIELDS', 3, 'a', 'c', 'zz'), [Number(FAR), -1, -2]);
      assert.deepEqual(await call('HPEXPIRETIME', 'h', 'FIELDS', 1, 'a'), [Number(FAR) * 1000]);
      assert.deepEqual(await call('HEXPIREAT', 'h', FAR, 'NX', 'FIELDS', 2, 'a', 'c'), [0, 1]);
      assert.deepEqual(await call('HEXPIREAT', 'h', '4102444900', 'XX', 'FIELDS', 1, 'a'), [1]);
      assert.deepEqual(await call('HEXPIREAT', 'h', FAR, 'GT', 'FIELDS', 1, 'a'), [0]);
      assert.deepEqual(await call('HEXPIREAT', 'h', FAR, 'LT', 'FIELDS', 1, 'a'), [1]);
      assert.deepEqual(await call('HPERSIST', 'h', 'FIELDS', 3, 'a', 'a', 'zz'), [1, -1, -2]);
      const [noTtl, secondsLeft] = (await call('HTTL', 'h', 'FIELDS', 2, 'a', 'b')) as number[];
      assert.equal(noTtl, -1);
      assert.ok(Math.abs(secondsLeft - (Number(FAR) - Date.now() / 1000)) <= 1, `httl ${secondsLeft}`);
      const pttl = (await call('HPEXPIRE', 'h', 100_000, 'FIELDS', 1, 'c')) as number[];
      assert.deepEqual(pttl, [1]);
      const [left] = (await call('HPTTL', 'h', 'FIELDS', 1, 'c')) as number[];
      assert.ok(left > 99_000 && left <= 100_000, `hpttl ${left}`);
      assert.deepEqual(await call('HEXPIRE', 'h', 0, 'FIELDS', 1, 'c'), [2], 'a time already past deletes the field');
      assert.equal(await r.hexists('h', 'c'), 0);
      assert.deepEqual(await call('HEXPIRE', 'nokey', 10, 'FIELDS', 2, 'a', 'b'), [-2, -2]);
      await call('HPEXPIRE', 'h', 80, 'FIELDS', 1, 'b');
      await new Promise((resolve) => setTimeout(resolve, 120));
      assert.equal(await r.hget('h', 'b'), null);
      assert.deepEqual(await r.hgetall('h'), { a: '1' });
      assert.equal(await r.hset('h', 'a', 'new'), 0);
      assert.deepEqual(await call('HTTL', 'h', 'FIELDS', 1, 'a'), [-1], 'HSET clears a field TTL');
      // Argument errors with Redis 7.4's texts.
      await assert.rejects(call('HEXPIRE', 'h', 10, 'FIELDS', 2, 'a'), /ERR The `numfields` parameter must match the number of arguments/);
      await assert.rejects(call('HEXPIRE', 'h', 10, 'a', 'b', 'c'), /ERR Mandatory argument FIELDS is missing or not at the right position/);
      await assert.rejects(call('HEXPIRE', 'h', 10, 'FIELDS', 0, 'a'), /ERR Number of fields must be a positive integer/);
      await assert.rejects(call('HEXPIRE', 'h', -1, 'FIELDS', 1, 'a'), /ERR invalid expire time, must be >= 0/);
      await assert.rejects(call('HEXPIRE', 'h', 'x', 'FIELDS', 1, 'a'), /ERR value is not an integer or out of range/);
      await assert.rejects(call('HTTL', 'h', 'FIELDS', 1), /wrong number of arguments/);
    } finally {
      r.disconnect();
      await s.close();
    }
  });

  it('HSETEX sets fields with an expiry, honours FNX/FXX and KEEPTTL', async () => {
    const s = await startOurs();
    const r = new Redis({ port: s.port, host: '127.0.0.1' });
    const call = (...a: (string | number)[]): Promise<unknown> => r.call(String(a[0]), ...a.slice(1).map(String));
    try {
      assert.equal(await call('HSETEX', 'h', 'EXAT', FAR, 'FIELDS', 2, 'a', '1', 'b', '2'), 1);
      assert.deepEqual(await call('HEXPIRETIME', 'h', 'FIELDS', 2, 'a', 'b'), [Number(FAR), Number(FAR)]);
      assert.equal(await call('HSETEX', 'h', 'FNX', 'FIELDS', 2, 'a', 'x', 'c', '3'), 0);
      assert.equal(await call('HSETEX', 'h', 'FXX', 'FIELDS', 2, 'a', 'x', 'c', '3'), 0);
      assert.equal(await call('HSETEX', 'h', 'FXX', 'KEEPTTL', 'FIELDS', 1, 'a', 'kept'), 1);
      assert.deepEqual(await call('HEXPIRETIME', 'h', 'FIELDS', 1, 'a'), [Number(FAR)]);
      assert.equal(await r.hget('h', 'a'), 'kept');
      assert.equal(await call('HSETEX', 'h', 'FIELDS', 1, 'b', 'plain'), 1);
      assert.deepEqual(await call('HTTL', 'h', 'FIELDS', 1, 'b'), [-1]);
      assert.equal(await call('HSETEX', 'h', 'PX', 60, 'FIELDS', 1, 'short', 'x'), 1);
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.equal(await r.hexists('h', 'short'), 0);
      await assert.rejects(call('HSETEX', 'h', 'EX', 10, 'KEEPTTL', 'FIELDS', 1, 'a', 'b'), /ERR syntax error/);
      await assert.rejects(call('HSETEX', 'h', 'FIELDS', 2, 'a', 'b'), /ERR The `numfields` parameter must match the number of arguments/);
    } finally {
      r.disconnect();
      await s.close();
    }
  });
});

describe('sweeping returns space', () => {
  it('a mass expiry shrinks the shard files', async () => {
    const { statSync } = await import('node:fs');
    const { shardPath } = await import('../../src/storage/schema.js');
    const s = await startOurs({ num_shards: 1 });
    const r = new Redis({ port: s.port, host: '127.0.0.1' });
    const file = shardPath(s.dataDir, 0);
    // The maintenance thread may be checkpointing too; a complete TRUNCATE is what the sizes need.
    const checkpointed = async (): Promise<void> => {
      while (!s.store.queues[0].shard.checkpoint()) await new Promise((resolve) => setTimeout(resolve, 10));
    };
    try {
      const value = Buffer.alloc(4096, 7);
      for (let base = 0; base < 3000; base += 1000) {
        const p = r.pipeline();
        for (let i = base; i < base + 1000; i++) p.set(`big:${i}`, value, 'EX', 3600);
        await p.exec();
      }
      await s.store.drain();
      // Measured before anything expires, however slow the machine; then all expire at once.
      const soon = r.pipeline();
      for (let i = 0; i < 3000; i++) soon.pexpire(`big:${i}`, 50);
      await checkpointed();
      const before = statSync(file).size;
      assert.ok(before > 10 * 1024 * 1024, `file is ${before} bytes`);
      await soon.exec();
      const deadline = Date.now() + 15_000;
      while (s.store.sweptRows < 3000 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
      assert.equal(s.store.sweptRows, 3000);
      await checkpointed();
      const after = statSync(file).size;
      assert.ok(after < before / 3, `file went from ${before} to ${after} bytes`);
    } finally {
      r.disconnect();
      await s.close();
    }
  });
});

describe('INFO reports expiry', () => {
  it('keyspace counts keys with an expiry; stats counts swept keys', async () => {
    const s = await startOurs();
    const r = new Redis({ port: s.port, host: '127.0.0.1' });
    try {
      await r.set('a', '1', 'EX', 100);
      await r.set('b', '1');
      await r.set('c', '1', 'PX', 30);
      await new Promise((resolve) => setTimeout(resolve, 400));
      assert.match(await r.info('keyspace'), /\r\ndb0:keys=2,expires=1,avg_ttl=0\r\n/);
      assert.match(await r.info('stats'), /\r\nexpired_keys:1\r\n/);
    } finally {
      r.disconnect();
      await s.close();
    }
  });
});
