/**
 * Keyspace, batch, size/range and whole-namespace commands, compared with a real redis-server
 * wherever Redis defines the reply, plus the cases where a blob and a namespace share a name.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { compareServersForSuite, itMatchesRedis, type Cmd } from '../helpers/compare.js';
import { RawClient, resp } from '../helpers/raw.js';
import { startOurs } from '../helpers/servers.js';

const BIN = Buffer.from([0, 255, 13, 10, 42]);

const SCRIPTS: Record<string, Cmd[]> = {
  'mget, mset, msetnx': [
    ['MSET', 'a', '1', 'b', '2', 'c', BIN],
    ['MGET', 'a', 'nope', 'c', 'b'],
    ['MSETNX', 'x', '1', 'a', '9'],
    ['MGET', 'x', 'a'],
    ['MSETNX', 'x', '1', 'y', '2'],
    ['MGET', 'x', 'y'],
    ['MSET', 'a'],
    ['MSET', 'a', '1', 'b'],
    ['MSETNX', 'a', '1', 'b'],
    ['MGET'],
  ],
  'strlen, getrange, setrange, append': [
    ['SET', 's', 'Hello World'],
    ['STRLEN', 's'],
    ['STRLEN', 'nope'],
    ['GETRANGE', 's', '0', '4'],
    ['GETRANGE', 's', '-5', '-1'],
    ['GETRANGE', 's', '-1', '-5'],
    ['GETRANGE', 's', '5', '2'],
    ['GETRANGE', 's', '0', '-100'],
    ['GETRANGE', 's', '-100', '100'],
    ['GETRANGE', 's', '20', '30'],
    ['GETRANGE', 'nope', '0', '-1'],
    ['GETRANGE', 's', 'a', '1'],
    ['SETRANGE', 's', '6', 'Redis'],
    ['GET', 's'],
    ['SETRANGE', 'pad', '5', 'xy'],
    ['GET', 'pad'],
    ['SETRANGE', 'pad', '1', ''],
    ['SETRANGE', 'none', '3', ''],
    ['EXISTS', 'none'],
    ['SETRANGE', 's', '-1', 'x'],
    ['SETRANGE', 's', '536870911', 'xx'],
    ['APPEND', 'ap', 'abc'],
    ['APPEND', 'ap', BIN],
    ['GET', 'ap'],
    ['STRLEN', 'ap'],
    ['APPEND', 'ap', ''],
  ],
  'whole-namespace reads': [
    ['HSET', 'h', 'f1', 'v1', 'f2', 'v2', 'f3', BIN],
    ['HLEN', 'h'],
    ['HLEN', 'nope'],
    ['HKEYS', 'h'],
    ['HVALS', 'h'],
    ['HGETALL', 'h'],
    ['HGETALL', 'nope'],
    ['HMGET', 'h', 'f1', 'zz', 'f3'],
    ['HMSET', 'h', 'f4', 'v4', 'f1', 'V1'],
    ['HMSET', 'h', 'f4'],
    ['HSETNX', 'h', 'f4', 'no'],
    ['HSETNX', 'h', 'f5', 'yes'],
    ['HGET', 'h', 'f5'],
    ['HSTRLEN', 'h', 'f3'],
    ['HSTRLEN', 'h', 'zz'],
    ['HRANDFIELD', 'nope'],
    ['HRANDFIELD', 'nope', '3'],
    ['HRANDFIELD', 'h', '0'],
    ['HRANDFIELD', 'h', 'x'],
    ['HRANDFIELD', 'h', '1', 'WITHVALUES', 'x'],
    ['HDEL', 'h', 'f1', 'f2', 'f3', 'f4', 'f5'],
    ['HLEN', 'h'],
    ['EXISTS', 'h'],
  ],
  'keys, type, touch, unlink, rename': [
    ['MSET', 'k1', 'a', 'k2', 'b', 'other', 'c', 'k[x]', 'd', 'k*', 'e'],
    ['HSET', 'kh', 'f', 'v'],
    ['KEYS', '*'],
    ['KEYS', 'k?'],
    ['KEYS', 'k[12]'],
    ['KEYS', 'k[^1]'],
    ['KEYS', 'k[a-z]'],
    ['KEYS', 'k\\[x\\]'],
    ['KEYS', 'k\\*'],
    ['KEYS', 'nomatch*'],
    ['TYPE', 'k1'],
    ['TYPE', 'kh'],
    ['TYPE', 'nope'],
    ['TOUCH', 'k1', 'kh', 'nope'],
    ['UNLINK', 'k1', 'kh', 'nope'],
    ['EXISTS', 'k1', 'kh'],
    ['RENAME', 'k2', 'k9'],
    ['GET', 'k9'],
    ['EXISTS', 'k2'],
    ['RENAME', 'nope', 'x'],
    ['RENAME', 'k9', 'k9'],
    ['RENAMENX', 'k9', 'other'],
    ['RENAMENX', 'k9', 'k9'],
    ['RENAMENX', 'k9', 'fresh'],
    ['MGET', 'k9', 'fresh'],
    ['RENAME', 'fresh', 'other'],
    ['GET', 'other'],
    ['DBSIZE'],
  ],
  'random and empty': [
    ['RANDOMKEY'],
    ['SET', 'only', '1'],
    ['RANDOMKEY'],
    ['SCAN', '0', 'COUNT', '100'],
    ['SCAN', '0', 'COUNT', '0'],
    ['SCAN', '0', 'BOGUS', '1'],
    ['SCAN', '0', 'COUNT', 'x'],
    ['HSCAN', 'nope', '0'],
  ],
};

const UNORDERED = new Set(['keys', 'hkeys', 'hvals', 'hgetall']);

describe('keyspace commands', () => {
  const servers = compareServersForSuite();

  itMatchesRedis(servers.ports, SCRIPTS, UNORDERED);

  it('HGETALL is a map in RESP3, HRANDFIELD counts behave as in Redis', async () => {
    for (const port of [servers.ours.port, servers.redis.port]) {
      const r = new Redis({ port, host: '127.0.0.1' });
      try {
        await r.flushall();
        await r.hset('h', 'a', '1', 'b', '2', 'c', '3');
        assert.equal(((await r.hrandfield('h', 5)) as string[]).length, 3);
        assert.equal(new Set((await r.hrandfield('h', 3)) as string[]).size, 3);
        assert.equal(((await r.hrandfield('h', -7)) as string[]).length, 7);
        assert.equal(((await r.hrandfield('h', 2, 'WITHVALUES')) as string[]).length, 4);
        assert.ok(['a', 'b', 'c'].includes((await r.hrandfield('h')) as string));
        const raw = await RawClient.connect(port);
        raw.write(Buffer.concat([resp('HELLO', '3'), resp('HGETALL', 'h')]));
        const [, map] = await raw.replies(2);
        raw.destroy();
        assert.match(map, /^%3\r\n/);
        for (const pair of ['$1\r\na\r\n$1\r\n1\r\n', '$1\r\nb\r\n$1\r\n2\r\n', '$1\r\nc\r\n$1\r\n3\r\n']) {
          assert.ok(map.includes(pair), `${JSON.stringify(map)} has ${JSON.stringify(pair)}`);
        }
      } finally {
        r.disconnect();
      }
    }
  });

  it('a blob and a namespace of one name: DEL deletes both and counts each; EXISTS counts each; TYPE is string', async () => {
    const r = new Redis({ port: servers.ours.port, host: '127.0.0.1' });
    try {
      await r.flushall();
      await r.set('x', 'blob');
      await r.hset('x', 'f', 'v', 'g', 'w');
      assert.equal(await r.exists('x'), 2);
      assert.equal(await r.type('x'), 'string');
      assert.deepEqual((await r.keys('*')).sort(), ['x']);
      assert.equal(await r.del('x'), 2);
      assert.equal(await r.exists('x'), 0);
      assert.equal(await r.hget('x', 'f'), null);
      assert.equal(await r.hlen('x'), 0);
      assert.equal(await r.type('x'), 'none');
      await r.hset('x', 'again', '1');
      assert.equal(await r.type('x'), 'hash');
      assert.equal(await r.hget('x', 'again'), '1', 'a namespace written after DEL is new');
    } finally {
      r.disconnect();
    }
  });

  it('SCAN and HSCAN walk everything, with MATCH, TYPE, NOVALUES and huge COUNT', async () => {
    const r = new Redis({ port: servers.ours.port, host: '127.0.0.1' });
    try {
      await r.flushall();
      const p = r.pipeline();
      for (let i = 0; i < 500; i++) p.set(`s:${i}`, 'v');
      for (let i = 0; i < 300; i++) p.hset('bigns', `f:${i}`, `v${i}`);
      p.hset('otherns', 'x', 'y');
      await p.exec();
      const scanAll = async (...opts: string[]): Promise<string[]> => {
        const seen = new Set<string>();
        let cursor = '0';
        do {
          const [next, keys] = (await r.call('SCAN', cursor, ...opts)) as [string, string[]];
          keys.forEach((k) => seen.add(k));
          cursor = next;
        } while (cursor !== '0');
        return [...seen].sort();
      };
      assert.equal((await scanAll()).length, 502);
      assert.equal((await scanAll('COUNT', '1000000')).length, 502);
      assert.deepEqual(await scanAll('TYPE', 'hash'), ['bigns', 'otherns']);
      assert.deepEqual(await scanAll('MATCH', 's:1?', 'COUNT', '7'), Array.from({ length: 10 }, (_, i) => `s:1${i}`).sort());
      assert.deepEqual(await scanAll('TYPE', 'list'), []);
      const fields = new Map<string, string>();
      let cursor = '0';
      do {
        const [next, flat] = (await r.call('HSCAN', 'bigns', cursor, 'COUNT', '13')) as [string, string[]];
        for (let i = 0; i < flat.length; i += 2) fields.set(flat[i], flat[i + 1]);
        cursor = next;
      } while (cursor !== '0');
      assert.equal(fields.size, 300);
      assert.equal(fields.get('f:299'), 'v299');
      const [, names] = (await r.call('HSCAN', 'bigns', '0', 'COUNT', '1000', 'NOVALUES', 'MATCH', 'f:29?')) as [string, string[]];
      assert.deepEqual(names.sort(), Array.from({ length: 10 }, (_, i) => `f:29${i}`).sort());
      await assert.rejects(r.call('SCAN', '987654321'), /ERR invalid cursor/);
    } finally {
      r.disconnect();
    }
  });

  it('a SCAN over 100,000 keys while another client writes and deletes returns every key that existed throughout', async () => {
    const s = await startOurs({ async_write: true, batch_size: 500, batch_timeout_ms: 2 });
    const r = new Redis({ port: s.port, host: '127.0.0.1' });
    const churn = new Redis({ port: s.port, host: '127.0.0.1' });
    try {
      for (let base = 0; base < 100_000; base += 10_000) {
        const p = r.pipeline();
        for (let i = base; i < base + 10_000; i++) p.set(`stable:${i}`, 'v');
        await p.exec();
      }
      let stop = false;
      const writer = (async () => {
        for (let round = 0; !stop && round < 10_000; round++) {
          const p = churn.pipeline();
          for (let i = 0; i < 50; i++) p.set(`churn:${round}:${i}`, 'x');
          for (let i = 0; i < 50; i++) if (round > 0) p.del(`churn:${round - 1}:${i}`);
          await p.exec();
        }
      })();
      const seen = new Set<string>();
      let cursor = '0';
      do {
        const [next, keys] = (await r.call('SCAN', cursor, 'COUNT', '1000')) as [string, string[]];
        keys.forEach((k) => seen.add(k));
        cursor = next;
      } while (cursor !== '0');
      stop = true;
      await writer;
      for (let i = 0; i < 100_000; i++) assert.ok(seen.has(`stable:${i}`), `stable:${i} was not returned`);
    } finally {
      r.disconnect();
      churn.disconnect();
      await s.close();
    }
  });
});

describe('keyspace commands see pending writes and honour expiry', () => {
  it('whole-namespace reads, SCAN and DEL of a namespace see writes not yet committed', async () => {
    const s = await startOurs({ async_write: true, batch_size: 10_000, batch_timeout_ms: 300 });
    const w = new Redis({ port: s.port, host: '127.0.0.1' });
    const r = new Redis({ port: s.port, host: '127.0.0.1' });
    try {
      await w.hset('pns', 'a', '1', 'b', '2');
      await w.set('pkey', 'v');
      assert.ok(s.store.inflightOps > 0, 'the writes are still pending');
      assert.equal(await r.hlen('pns'), 2);
      assert.deepEqual(await r.hgetall('pns'), { a: '1', b: '2' });
      assert.deepEqual((await r.keys('p*')).sort(), ['pkey', 'pns']);
      const [, scanned] = (await r.call('SCAN', '0', 'COUNT', '1000')) as [string, string[]];
      assert.deepEqual(scanned.sort(), ['pkey', 'pns']);
      await s.store.drain();
      assert.equal(await w.del('pns'), 1);
      assert.ok(s.store.inflightOps > 0, 'the namespace delete is still pending');
      assert.equal(await r.exists('pns'), 0);
      assert.equal(await r.hget('pns', 'a'), null);
      assert.deepEqual(await r.hgetall('pns'), {});
      await w.hset('pns', 'c', '3');
      assert.deepEqual(await r.hgetall('pns'), { c: '3' }, 'a field written after the pending delete survives it');
      await s.store.drain();
      assert.deepEqual(await r.hgetall('pns'), { c: '3' });
      assert.equal(await r.rename('pkey', 'pkey2'), 'OK');
      assert.equal(await r.get('pkey2'), 'v');
      assert.equal(await r.get('pkey'), null);
    } finally {
      w.disconnect();
      r.disconnect();
      await s.close();
    }
  });

  it('expired rows are absent to every keyspace read', async () => {
    const { default: Database } = await import('better-sqlite3');
    const { registerSlotFunction, shardPath } = await import('../../src/storage/schema.js');
    let s = await startOurs({ num_shards: 1 });
    const dataDir = s.dataDir;
    let r = new Redis({ port: s.port, host: '127.0.0.1' });
    await r.mset('live', '1', 'dead', '2');
    await r.hset('ns', 'live', '1', 'dead', '2');
    await r.hset('deadns', 'only', '1');
    r.disconnect();
    await s.close();
    const db = new Database(shardPath(dataDir, 0));
    registerSlotFunction(db); // rows of tables with a slot index (schema 4) are written with it
    db.prepare("UPDATE blobs SET expires_at = 1 WHERE key = CAST('dead' AS BLOB)").run();
    db.prepare("UPDATE ns_blobs SET expires_at = 1 WHERE key = CAST('dead' AS BLOB) OR namespace = CAST('deadns' AS BLOB)").run();
    db.close();
    s = await startOurs({ num_shards: 1, data_dir: dataDir });
    r = new Redis({ port: s.port, host: '127.0.0.1' });
    try {
      assert.deepEqual((await r.keys('*')).sort(), ['live', 'ns']);
      assert.equal(await r.exists('dead', 'deadns'), 0);
      assert.equal(await r.dbsize(), 2);
      assert.deepEqual(await r.hgetall('ns'), { live: '1' });
      assert.equal(await r.hlen('ns'), 1);
      assert.equal(await r.type('deadns'), 'none');
      assert.deepEqual(await r.mget('live', 'dead'), ['1', null]);
      assert.equal(await r.strlen('dead'), 0);
      await assert.rejects(r.rename('dead', 'x'), /ERR no such key/);
      assert.equal(await r.randomkey(), 'live');
    } finally {
      r.disconnect();
      await s.close();
    }
  });
});

describe('multi-key commands under cluster routing', () => {
  it('keys of one command must share a slot (CROSSSLOT), hash tags make them', async () => {
    const { freePort } = await import('../helpers/servers.js');
    const s = await startOurs({
      cluster: { enabled: true, node_id: 'solo', port: await freePort(), slot_ranges: [{ start: 0, end: 16383 }] },
    });
    const raw = await RawClient.connect(s.port);
    const ask = async (...args: string[]): Promise<string> => {
      raw.write(resp(...args));
      return raw.reply();
    };
    const CROSS = "-CROSSSLOT Keys in request don't hash to the same slot\r\n";
    try {
      assert.equal(await ask('MSET', 'a', '1', 'b', '2'), CROSS);
      assert.equal(await ask('MSETNX', 'a', '1', 'b', '2'), CROSS);
      assert.equal(await ask('MGET', 'a', 'b'), CROSS);
      assert.equal(await ask('RENAME', 'a', 'b'), CROSS);
      assert.equal(await ask('EXISTS', 'a', 'b'), CROSS);
      assert.equal(await ask('DEL', 'a', 'b'), CROSS);
      assert.equal(await ask('MSET', '{u}a', '1', '{u}b', '2'), '+OK\r\n');
      assert.equal(await ask('MGET', '{u}a', '{u}b'), '*2\r\n$1\r\n1\r\n$1\r\n2\r\n');
      assert.equal(await ask('RENAME', '{u}a', '{u}c'), '+OK\r\n');
      assert.equal(await ask('EXISTS', '{u}a', '{u}b', '{u}c'), ':2\r\n');
      assert.equal(await ask('SCAN', '0', 'COUNT', '100').then((r) => r.startsWith('*2\r\n$1\r\n0\r\n*2\r\n')), true);
    } finally {
      raw.destroy();
      await s.close();
    }
  });
});
