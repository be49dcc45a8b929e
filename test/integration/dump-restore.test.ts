/**
 * DUMP / RESTORE / RESTORE-ASKING / MIGRATE: replies compared byte for byte with redis-server 7.0
 * (RESP2 and RESP3, errors included), payloads round-tripped in both directions, and MIGRATE run
 * on a real redis-server into this server (with AUTH against our requirepass) and from us out.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { Redis } from 'ioredis';
import { compareServersForSuite, itMatchesRedis, type Cmd } from '../helpers/compare.js';
import { freePort, startOurs, startRedis, type RedisServer, type TestServer } from '../helpers/servers.js';
import { encodeDump } from '../../src/protocol/rdb.js';
import { Crc64 } from '../../src/protocol/crc64.js';

/** A payload with a right footer around a body, as RESTORE tests need corrupt-but-checksummed ones. */
function footed(bodyHex: string, version = 10): Buffer {
  const head = Buffer.concat([Buffer.from(bodyHex, 'hex'), Buffer.from([version, 0])]);
  return Buffer.concat([head, new Crc64().update(head).digestLE()]);
}

/** Bytes that LZF cannot shrink (a fixed xorshift sequence), so Redis dumps them raw too. */
function noise(n: number, seed = 7): Buffer {
  const out = Buffer.alloc(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

const STRING_PAYLOAD = encodeDump({ type: 'string', value: Buffer.from('hello') });
const HASH_PAYLOAD = encodeDump({ type: 'hash', fields: [[Buffer.from('f1'), Buffer.from('v1')], [Buffer.from('n'), Buffer.from('42')]] });
const BINARY = Buffer.from([0, 1, 2, 0xff, 0x0d, 0x0a, 0x80]);

const SCRIPTS: Record<string, Cmd[]> = {
  'DUMP of strings (missing, short, integers, binary, incompressible)': [
    ['DUMP', 'nokey'],
    ['SET', 'a', 'hello'],
    ['DUMP', 'a'],
    ['SET', 'i8', '-5'],
    ['DUMP', 'i8'],
    ['SET', 'i16', '1000'],
    ['DUMP', 'i16'],
    ['SET', 'i32', '-2000000000'],
    ['DUMP', 'i32'],
    ['SET', 'big', '12345678901234'],
    ['DUMP', 'big'],
    ['SET', 'bin', BINARY],
    ['DUMP', 'bin'],
    ['SET', 'noise', noise(5000)],
    ['DUMP', 'noise'],
    ['SET', 'empty', ''],
    ['DUMP', 'empty'],
  ],
  'RESTORE: values, TTLs, REPLACE, ABSTTL, IDLETIME, FREQ': [
    ['RESTORE', 'k', '0', STRING_PAYLOAD],
    ['GET', 'k'],
    ['TTL', 'k'],
    ['RESTORE', 'k', '0', STRING_PAYLOAD],
    ['SET', 'k2', 'x'],
    ['RESTORE', 'k2', '100000', STRING_PAYLOAD, 'REPLACE'],
    ['GET', 'k2'],
    ['TTL', 'k2'],
    ['RESTORE', 'k3', '4102444800000', STRING_PAYLOAD, 'ABSTTL'],
    ['EXPIRETIME', 'k3'],
    ['RESTORE', 'past', '1000', STRING_PAYLOAD, 'ABSTTL'],
    ['EXISTS', 'past'],
    ['SET', 'gone', 'x'],
    ['RESTORE', 'gone', '1000', STRING_PAYLOAD, 'ABSTTL', 'REPLACE'],
    ['EXISTS', 'gone'],
    ['RESTORE', 'idle', '0', STRING_PAYLOAD, 'IDLETIME', '100'],
    ['RESTORE', 'freq', '0', STRING_PAYLOAD, 'freq', '200'],
    ['GET', 'freq'],
    ['RESTORE', 'h', '0', HASH_PAYLOAD],
    ['TYPE', 'h'],
    ['HGET', 'h', 'f1'],
    ['HGET', 'h', 'n'],
    ['HLEN', 'h'],
    ['RESTORE', 'h', '0', STRING_PAYLOAD],
    ['RESTORE', 'h', '0', STRING_PAYLOAD, 'REPLACE'],
    ['TYPE', 'h'],
    ['EXISTS', 'h'],
    ['RESTORE-ASKING', 'ra', '0', STRING_PAYLOAD],
    ['GET', 'ra'],
  ],
  'RESTORE errors in Redis\' order': [
    ['RESTORE', 'k'],
    ['RESTORE', 'k', '0'],
    ['RESTORE', 'k', '-1', STRING_PAYLOAD],
    ['RESTORE', 'k', 'x', STRING_PAYLOAD],
    ['RESTORE', 'k', '0', 'garbage'],
    ['RESTORE', 'k', '0', ''],
    ['RESTORE', 'k', '0', STRING_PAYLOAD, 'BOGUS'],
    ['RESTORE', 'k', '0', STRING_PAYLOAD, 'IDLETIME'],
    ['RESTORE', 'k', '0', STRING_PAYLOAD, 'IDLETIME', '-1'],
    ['RESTORE', 'k', '0', STRING_PAYLOAD, 'IDLETIME', 'x'],
    ['RESTORE', 'k', '0', STRING_PAYLOAD, 'FREQ', '256'],
    ['RESTORE', 'k', '0', STRING_PAYLOAD, 'FREQ', '-1'],
    ['RESTORE', 'k', '0', STRING_PAYLOAD, 'FREQ', '1', 'IDLETIME', '1'],
    ['RESTORE', 'k', '0', STRING_PAYLOAD, 'IDLETIME', '1', 'FREQ', '1'],
    ['RESTORE', 'k', '0', footed('0003616263', 13)],
    ['RESTORE', 'k', '0', footed('0003616263', 10).subarray(1)],
    ['RESTORE', 'k', '0', footed('0009616263')],
    ['RESTORE', 'k', '0', footed('c8')],
    ['RESTORE', 'k', '0', footed('0400')],
    ['SET', 'busy', 'x'],
    ['RESTORE', 'busy', '-1', 'garbage'],
    ['RESTORE', 'busy', '0', STRING_PAYLOAD, 'BOGUS'],
    ['EXISTS', 'k'],
  ],
  'MIGRATE argument errors and NOKEY': [
    ['MIGRATE', '127.0.0.1', '1', 'nokey', '0', '1000'],
    ['MIGRATE', '127.0.0.1', '1', '', '0', '1000', 'KEYS', 'a', 'b'],
    ['MIGRATE', '127.0.0.1', '1', 'k', '0', '1000', 'KEYS', 'a'],
    ['MIGRATE', '127.0.0.1', '1', 'k', '0', '1000', 'BOGUS'],
    ['MIGRATE', '127.0.0.1', '1', 'k', '0', '1000', 'AUTH'],
    ['MIGRATE', '127.0.0.1', '1', 'k', '0', '1000', 'AUTH2', 'u'],
    ['MIGRATE', '127.0.0.1', '1', 'k', '0', 'x'],
    ['MIGRATE', '127.0.0.1', '1', 'k', 'x', '1000'],
    ['MIGRATE', '127.0.0.1', '1', 'k', '0'],
  ],
};

describe('DUMP / RESTORE / MIGRATE replies, compared with redis-server', () => {
  const servers = compareServersForSuite();
  itMatchesRedis(servers.ports, SCRIPTS);
  const resp3: Record<string, Cmd[]> = {};
  for (const [name, cmds] of Object.entries(SCRIPTS)) resp3[`${name} (RESP3)`] = [['HELLO', '3'], ...cmds];
  itMatchesRedis(servers.ports, resp3);
});

/** Every key of a client's keyspace with its value (string or sorted hash pairs) and a TTL bucket. */
async function snapshot(c: Redis, keys: string[]): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  for (const k of keys) {
    const type = await c.type(k);
    const pttl = await c.pttl(k);
    const ttl = pttl < 0 ? pttl : Math.round(pttl / 10_000);
    if (type === 'string') out[k] = { type, value: (await c.getBuffer(k))!.toString('hex'), ttl };
    else if (type === 'hash') {
      const h = await c.hgetallBuffer(k);
      // No TTL compared: a namespace has none of its own here (PTTL answers -2), only its fields do.
      out[k] = { type, value: Object.entries(h).map(([f, v]) => `${Buffer.from(f, 'latin1').toString('hex')}=${v.toString('hex')}`).sort() };
    } else out[k] = { type };
  }
  return out;
}

describe('DUMP and RESTORE between redis-server 7.0 and this server', () => {
  let ours: TestServer;
  let redis: RedisServer;
  let o: Redis;
  let r: Redis;
  before(async () => {
    ours = await startOurs();
    redis = await startRedis();
    o = new Redis({ port: ours.port, host: '127.0.0.1', lazyConnect: false });
    r = new Redis({ port: redis.port, host: '127.0.0.1' });
  });
  after(async () => {
    o.disconnect();
    r.disconnect();
    await ours.close();
    await redis.stop();
  });

  /** Values covering every encoding redis-server 7.0 dumps for strings and hashes. */
  async function fill(c: Redis): Promise<string[]> {
    await c.set('raw', 'hello world');
    await c.set('int', '-12345');
    await c.set('lzf', 'compress me '.repeat(1000)); // LZF-compressed by Redis
    await c.set(Buffer.from([0xff, 0, 0x0d]), BINARY);
    await c.set('noise', noise(100_000));
    await c.hset('small', 'a', '1', 'b', 'two', 'c', '-70000', 'd', '9223372036854775807', 'e', ''); // listpack
    await c.hset('wide', 'big', 'v'.repeat(100), 'x', '1'); // value > 64 bytes: hashtable
    const many: string[] = [];
    for (let i = 0; i < 600; i++) many.push(`f${i}`, i % 2 === 0 ? String(i) : `v${i}`); // > 512 fields: hashtable
    await c.hset('many', ...many);
    await c.hset('lzfhash', 'blob', 'repeat '.repeat(2000), 'n', '5'); // a listpack big enough to be LZF-compressed
    await c.pexpire('raw', 500_000);
    return ['raw', 'int', 'lzf', Buffer.from([0xff, 0, 0x0d]).toString('latin1'), 'noise', 'small', 'wide', 'many', 'lzfhash'];
  }

  it('every DUMP from redis-server restores here with the same value and TTL', async () => {
    await r.flushall();
    await o.flushall();
    const keys = (await fill(r)).map((k) => Buffer.from(k, 'latin1'));
    for (const k of keys) {
      const payload = await r.dumpBuffer(k);
      const pttl = await r.pttl(k);
      assert.equal(await o.restore(k, Math.max(0, pttl), payload!), 'OK', k.toString('hex'));
    }
    const names = keys.map((k) => k.toString('latin1'));
    assert.deepEqual(await snapshot(o, names), await snapshot(r, names));
  });

  it('every DUMP from this server restores on redis-server with the same value', async () => {
    await r.flushall();
    await o.flushall();
    const keys = (await fill(o)).map((k) => Buffer.from(k, 'latin1'));
    for (const k of keys) {
      const payload = await o.dumpBuffer(k);
      const pttl = await o.pttl(k);
      assert.equal(await r.restore(k, Math.max(0, pttl), payload!), 'OK', k.toString('hex'));
    }
    const names = keys.map((k) => k.toString('latin1'));
    assert.deepEqual(await snapshot(r, names), await snapshot(o, names));
  });

  it('payloads of RDB version 11 and 12 (Redis 7.2, 7.4/8.0) restore here; 13 does not', async () => {
    await o.flushall();
    assert.equal(await o.restore('v11', 0, footed('0003616263', 11)), 'OK');
    assert.equal(await o.restore('v12', 0, footed('0003616263', 12)), 'OK');
    assert.deepEqual(await o.mget('v11', 'v12'), ['abc', 'abc']);
    await assert.rejects(o.restore('v13', 0, footed('0003616263', 13)), /^ReplyError: ERR DUMP payload version or checksum are wrong$/);
  });

  it('a name that is both a blob and a namespace dumps as its blob (TYPE answers string)', async () => {
    await o.flushall();
    await o.set('both', 'blob');
    await o.hset('both', 'f', 'v');
    const payload = await o.dumpBuffer('both');
    await r.flushall();
    await r.restore('both', 0, payload!);
    assert.equal(await r.type('both'), 'string');
    assert.equal(await r.get('both'), 'blob');
  });

  it('a restored hash\'s TTL goes to every field, and the namespace reports it back through DUMP and MIGRATE', async () => {
    await r.flushall();
    await o.flushall();
    await r.hset('h', 'a', '1', 'b', '2');
    await o.restore('h', 300_000, (await r.dumpBuffer('h'))!);
    const fieldTtls = (await o.call('HPTTL', 'h', 'FIELDS', '2', 'a', 'b')) as number[];
    for (const t of fieldTtls) assert.ok(t > 290_000 && t <= 300_000, String(t));
    assert.equal(await o.migrate('127.0.0.1', redis.port, 'h', 0, 5000, 'REPLACE'), 'OK');
    const pttl = await r.pttl('h');
    assert.ok(pttl > 290_000 && pttl <= 300_000, String(pttl));
    assert.equal(await o.exists('h'), 0);
  });
});

describe('MIGRATE from redis-server 7.0 into this server', () => {
  let ours: TestServer;
  let redis: RedisServer;
  let o: Redis;
  let r: Redis;
  before(async () => {
    ours = await startOurs({ requirepass: 'sesame' });
    redis = await startRedis();
    o = new Redis({ port: ours.port, host: '127.0.0.1', password: 'sesame' });
    r = new Redis({ port: redis.port, host: '127.0.0.1' });
  });
  after(async () => {
    o.disconnect();
    r.disconnect();
    await ours.close();
    await redis.stop();
  });

  // First, while redis-server has no cached connection to us: a failed AUTH leaves it unauthenticated.
  it('reports our errors as redis-server reports a target\'s: wrong password, no password, busy key', async () => {
    await r.set('x', '1');
    await assert.rejects(r.migrate('127.0.0.1', ours.port, 'x', 0, 5000, 'AUTH', 'wrong'), /Target instance replied with error: WRONGPASS/);
    await assert.rejects(r.migrate('127.0.0.1', ours.port, 'x', 0, 5000), /Target instance replied with error: NOAUTH/);
    await o.set('x', 'mine');
    await assert.rejects(r.migrate('127.0.0.1', ours.port, 'x', 0, 5000, 'AUTH', 'sesame'), /Target instance replied with error: BUSYKEY Target key name already exists\./);
    assert.equal(await r.get('x'), '1');
    assert.equal(await o.get('x'), 'mine');
    await r.del('x');
    await o.del('x');
  });

  it('moves strings and hashes with their TTLs, with AUTH and AUTH2 against our requirepass', async () => {
    await r.set('s', 'value');
    await r.set('t', 'ttl', 'PX', 400_000);
    await r.hset('h', 'f', 'v', 'n', '7');
    assert.equal(await r.migrate('127.0.0.1', ours.port, '', 0, 5000, 'AUTH', 'sesame', 'KEYS', 's', 't', 'h'), 'OK');
    assert.equal(await r.exists('s', 't', 'h'), 0);
    assert.equal(await o.get('s'), 'value');
    const pttl = await o.pttl('t');
    assert.ok(pttl > 390_000 && pttl <= 400_000, String(pttl));
    assert.deepEqual(await o.hgetall('h'), { f: 'v', n: '7' });
    await r.set('s', 'newer');
    assert.equal(await r.migrate('127.0.0.1', ours.port, 's', 0, 5000, 'COPY', 'REPLACE', 'AUTH2', 'default', 'sesame'), 'OK');
    assert.equal(await r.get('s'), 'newer');
    assert.equal(await o.get('s'), 'newer');
  });
});

describe('MIGRATE from this server', () => {
  let ours: TestServer;
  let other: TestServer;
  let redis: RedisServer;
  let o: Redis;
  let p: Redis;
  let r: Redis;
  let silent: Server;
  const held: Socket[] = [];
  before(async () => {
    ours = await startOurs();
    other = await startOurs({ requirepass: 'pw2' });
    redis = await startRedis(['--requirepass', 'rpw']);
    o = new Redis({ port: ours.port, host: '127.0.0.1' });
    p = new Redis({ port: other.port, host: '127.0.0.1', password: 'pw2' });
    r = new Redis({ port: redis.port, host: '127.0.0.1', password: 'rpw' });
    // A server that accepts connections and never answers: MIGRATE's timeout must end the wait.
    silent = createServer((s) => held.push(s));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  });
  after(async () => {
    o.disconnect();
    p.disconnect();
    r.disconnect();
    for (const s of held) s.destroy();
    await new Promise((resolve) => silent.close(resolve));
    await ours.close();
    await other.close();
    await redis.stop();
  });

  it('moves keys to redis-server (AUTH, KEYS, TTL, binary names) and deletes them here', async () => {
    const bin = Buffer.from([0xfe, 0x00, 0x41]);
    await o.set(bin, BINARY);
    await o.set('t', 'ttl', 'PX', 300_000);
    await o.hset('h', 'a', '1', 'b', 'x'.repeat(200));
    assert.equal(await o.migrate('127.0.0.1', redis.port, '', 0, 5000, 'AUTH', 'rpw', 'KEYS', bin, 't', 'h', 'missing'), 'OK');
    assert.equal(await o.exists(bin, 't', 'h'), 0);
    assert.deepEqual(await r.getBuffer(bin), BINARY);
    const pttl = await r.pttl('t');
    assert.ok(pttl > 290_000 && pttl <= 300_000, String(pttl));
    assert.deepEqual(await r.hgetall('h'), { a: '1', b: 'x'.repeat(200) });
  });

  it('COPY keeps the key; REPLACE overwrites; a target error is reported and keeps the key', async () => {
    await o.set('c', 'one');
    assert.equal(await o.migrate('127.0.0.1', redis.port, 'c', 0, 5000, 'COPY', 'AUTH', 'rpw'), 'OK');
    assert.equal(await o.get('c'), 'one');
    await assert.rejects(o.migrate('127.0.0.1', redis.port, 'c', 0, 5000, 'AUTH', 'rpw'), /^ReplyError: ERR Target instance replied with error: BUSYKEY Target key name already exists\.$/);
    assert.equal(await o.get('c'), 'one');
    await o.set('c', 'two');
    assert.equal(await o.migrate('127.0.0.1', redis.port, 'c', 0, 5000, 'REPLACE', 'AUTH2', 'default', 'rpw'), 'OK');
    assert.equal(await r.get('c'), 'two');
    assert.equal(await o.exists('c'), 0);
    await o.set('c', 'three');
    await assert.rejects(o.migrate('127.0.0.1', redis.port, 'c', 0, 5000), /Target instance replied with error: NOAUTH Authentication required\./);
    assert.equal(await o.get('c'), 'three');
  });

  it('moves keys from us to us', async () => {
    await o.set('u', 'to-us');
    await o.hset('uh', 'f', 'v');
    assert.equal(await o.migrate('127.0.0.1', other.port, '', 0, 5000, 'AUTH', 'pw2', 'KEYS', 'u', 'uh'), 'OK');
    assert.equal(await p.get('u'), 'to-us');
    assert.deepEqual(await p.hgetall('uh'), { f: 'v' });
    assert.equal(await o.exists('u', 'uh'), 0);
  });

  it('answers IOERR for a closed port and for a target that never replies, within the timeout', async () => {
    await o.set('io', 'x');
    const closed = await freePort();
    await assert.rejects(o.migrate('127.0.0.1', closed, 'io', 0, 1000), /^ReplyError: IOERR error or timeout connecting to the client$/);
    const addr = silent.address();
    const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
    const started = Date.now();
    await assert.rejects(o.migrate('127.0.0.1', port, 'io', 0, 300), /^ReplyError: IOERR error or timeout reading to target instance$/);
    assert.ok(Date.now() - started < 3000);
    assert.equal(await o.get('io'), 'x');
  });
});
