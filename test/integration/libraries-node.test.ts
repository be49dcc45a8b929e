/**
 * Node.js libraries people put in front of a Redis-protocol cache or session store, each driven
 * through its normal API against a real redis-server and against ours: the observable results
 * (values read back, TTLs within a tolerance, what deletion and expiry leave, counters) must be
 * equal. keyv + @keyv/redis, cache-manager 7 (on keyv), express-session with connect-redis (an
 * express app driven with real HTTP requests), and the plain APIs of ioredis and node-redis.
 * Their MULTI/WATCH APIs are compared in transactions-clients.test.ts.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { createClient } from 'redis';
import Keyv from 'keyv';
import KeyvRedis from '@keyv/redis';
import { createCache } from 'cache-manager';
import express from 'express';
import session from 'express-session';
import { RedisStore } from 'connect-redis';
import { compareServersForSuite } from '../helpers/compare.js';

/** A remaining TTL in ms as a coarse bucket, so the two servers' runs compare despite timing. */
function ttlBucket(ms: number, expected: number): string {
  if (ms < 0) return `no ttl (${ms})`;
  return ms <= expected && ms > expected - 2000 ? `about ${expected}` : `off: ${ms} for ${expected}`;
}

async function withIoredis<T>(port: number, f: (r: Redis) => Promise<T>): Promise<T> {
  const r = new Redis({ port, host: '127.0.0.1', lazyConnect: true });
  await r.connect();
  try {
    return await f(r);
  } finally {
    r.disconnect();
  }
}

async function keyvSession(port: number): Promise<unknown[]> {
  const store = new KeyvRedis(`redis://127.0.0.1:${port}`);
  const keyv = new Keyv({ store, namespace: 'app' });
  const errors: string[] = [];
  keyv.on('error', (e: Error) => errors.push(e.message));
  try {
    const out: unknown[] = [];
    out.push(await keyv.set('a', { x: 1 }), await keyv.get('a'));
    out.push(await keyv.set('a', 'over'), await keyv.get('a'));
    out.push(await keyv.set('long', 'kept', 10_000), await keyv.set('short', 'gone', 150));
    out.push(await keyv.get('short'), await keyv.has('short'));
    out.push(await withIoredis(port, async (r) => ttlBucket(await r.pttl('app::app:long'), 10_000)));
    await keyv.setMany([
      { key: 'm1', value: 1 },
      { key: 'm2', value: [2], ttl: 10_000 },
    ]);
    out.push(await keyv.getMany(['m1', 'm2', 'nope']), await keyv.hasMany(['m1', 'nope']));
    await sleep(300);
    out.push(await keyv.get('short'), await keyv.has('short'), await keyv.get('long'));
    out.push(await keyv.delete('a'), await keyv.get('a'), await keyv.delete('a'));
    out.push(await keyv.deleteMany(['m1', 'm2']), await keyv.getMany(['m1', 'm2']));
    // clear() scans the namespace (SCAN MATCH … TYPE string) and unlinks what it finds.
    await keyv.set('z', 1);
    await withIoredis(port, (r) => r.set('other', 'untouched'));
    await keyv.clear();
    out.push(await keyv.get('z'), await keyv.get('long'), await withIoredis(port, (r) => r.get('other')));
    out.push(errors);
    return out;
  } finally {
    await store.disconnect();
  }
}

async function cacheManagerSession(port: number): Promise<unknown[]> {
  const store = new KeyvRedis(`redis://127.0.0.1:${port}`);
  const cache = createCache({ stores: [new Keyv({ store, namespace: 'cm' })], ttl: 60_000 });
  try {
    const out: unknown[] = [];
    out.push(await cache.set('a', { n: 1 }), await cache.get('a'));
    out.push(await cache.set('a', 'two', 5000), await cache.get('a'));
    const expiresAt = await cache.ttl('a');
    out.push(typeof expiresAt === 'number' ? ttlBucket(expiresAt - Date.now(), 5000) : expiresAt);
    out.push(await withIoredis(port, async (r) => ttlBucket(await r.pttl('cm::cm:a'), 5000)));
    out.push(await cache.mset([{ key: 'k1', value: 'v1' }, { key: 'k2', value: 'v2', ttl: 150 }]));
    out.push(await cache.mget(['k1', 'k2', 'k3']));
    await sleep(300);
    out.push(await cache.mget(['k1', 'k2']));
    // wrap(): computed once, then served from the store.
    let calls = 0;
    const compute = async (): Promise<{ computed: number }> => ({ computed: ++calls });
    out.push(await cache.wrap('w', compute, 10_000), await cache.wrap('w', compute, 10_000), calls);
    out.push(await cache.del('a'), await cache.get('a'));
    out.push(await cache.mdel(['k1', 'w']), await cache.get('k1'), await cache.get('w'));
    await cache.set('z', 1);
    out.push(await cache.clear(), await cache.get('z'));
    return out;
  } finally {
    await cache.disconnect();
  }
}

interface HttpResult {
  status: number;
  body: unknown;
  setCookie: boolean;
}

async function sessionAppSession(port: number): Promise<unknown[]> {
  const client = createClient({ socket: { host: '127.0.0.1', port } });
  client.on('error', () => {});
  await client.connect();
  await client.flushAll();
  const store = new RedisStore({ client, prefix: 'sess:' });
  const app = express();
  app.use(session({ store, secret: 'test-secret', resave: false, saveUninitialized: false, cookie: { maxAge: 60_000 } }));
  app.get('/count', (req, res) => {
    const s = req.session as typeof req.session & { n?: number };
    s.n = (s.n ?? 0) + 1;
    res.json({ n: s.n });
  });
  app.get('/peek', (req, res) => res.json({ n: (req.session as typeof req.session & { n?: number }).n ?? null }));
  app.get('/logout', (req, res) => req.session.destroy((err: unknown) => res.json({ destroyed: err === undefined || err === null })));
  const http = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => http.once('listening', resolve));
  const base = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  let cookie = '';
  const get = async (path: string, withCookie = true): Promise<HttpResult> => {
    const r = await fetch(base + path, { headers: withCookie && cookie !== '' ? { cookie } : {} });
    const set = r.headers.get('set-cookie');
    if (set !== null && withCookie) cookie = set.split(';')[0];
    return { status: r.status, body: await r.json(), setCookie: set !== null };
  };
  const storeCall = <T>(f: (cb: (err: unknown, v?: T) => void) => void): Promise<T> =>
    new Promise((resolve, reject) => f((err, v) => (err ? reject(err) : resolve(v as T))));
  try {
    const out: unknown[] = [];
    out.push(await get('/peek'), await get('/count'), await get('/count'), await get('/peek'));
    const keys = await client.keys('sess:*');
    out.push(keys.length, ttlBucket(await client.pTTL(keys[0]), 60_000));
    out.push((JSON.parse(String(await client.get(keys[0]))) as { n: number }).n);
    // A second browser gets its own session.
    out.push(await get('/count', false), (await client.keys('sess:*')).length);
    out.push(await storeCall<number>((cb) => store.length(cb)));
    out.push((await storeCall<string[]>((cb) => store.ids(cb))).length);
    out.push((await storeCall<{ n: number }[]>((cb) => store.all(cb))).map((s) => s.n).sort());
    // touch() re-arms the TTL (EXPIRE), as rolling sessions do.
    await client.pExpire(keys[0], 5000);
    const sid = keys[0].slice('sess:'.length);
    const stored = await storeCall<session.SessionData>((cb) => store.get(sid, cb));
    await storeCall<void>((cb) => store.touch(sid, stored, cb));
    out.push(ttlBucket(await client.pTTL(keys[0]), 60_000));
    out.push(await get('/logout'), await client.exists(keys[0]), await get('/peek'));
    out.push(await storeCall<void>((cb) => store.clear(cb)), (await client.keys('sess:*')).length);
    return out;
  } finally {
    await new Promise((resolve) => http.close(resolve));
    client.destroy();
  }
}

/** ioredis' everyday API: strings, TTLs, deletes, bulk, counters, a pipeline and a MULTI of counters. */
async function ioredisSession(port: number): Promise<unknown[]> {
  return withIoredis(port, async (r) => {
    await r.flushall();
    const out: unknown[] = [];
    out.push(await r.set('k', 'v1'), await r.get('k'), await r.set('k', 'v2'), await r.getBuffer('k'));
    out.push(await r.set('t', 'x', 'EX', 100), await r.ttl('t'), ttlBucket(await r.pttl('t'), 100_000));
    out.push(await r.set('p', 'x', 'PX', 100), await r.set('n', 'x', 'NX'), await r.set('k', 'x', 'NX'));
    await sleep(250);
    out.push(await r.get('p'), await r.exists('p', 't', 'k'), await r.persist('t'), await r.ttl('t'));
    out.push(await r.mset({ a: '1', b: '2' }), await r.mget('a', 'b', 'nope'), await r.del('a', 'b', 'nope'));
    out.push(await r.incr('c'), await r.incrby('c', 10), await r.decr('c'), await r.decrby('c', 3), await r.incrbyfloat('c', 0.5));
    out.push(await r.expire('c', 50), await r.incr('f').catch((e: Error) => e.message));
    await r.set('f', 'not a number');
    out.push(await r.incr('f').catch((e: Error) => e.message), await r.incrbyfloat('c', 1).then(() => r.ttl('c')));
    out.push(await r.hset('h', 'a', '1', 'b', '2'), await r.hincrby('h', 'a', 5), await r.hincrbyfloat('h', 'b', 1.5), await r.hgetall('h'));
    out.push(await r.pipeline().set('x', '1').incr('x').get('x').del('x').exec());
    out.push(await r.multi().incr('m').incrby('m', 4).get('m').exec());
    return out;
  });
}

/** node-redis' everyday API, the same scenario in its own idiom. */
async function nodeRedisSession(port: number): Promise<unknown[]> {
  const c = createClient({ socket: { port, host: '127.0.0.1' } });
  c.on('error', () => {});
  await c.connect();
  try {
    await c.flushAll();
    const out: unknown[] = [];
    out.push(await c.set('k', 'v1'), await c.get('k'), await c.set('k', 'v2', { GET: true }));
    out.push(await c.set('t', 'x', { EX: 100 }), await c.ttl('t'), ttlBucket(await c.pTTL('t'), 100_000));
    out.push(await c.set('p', 'x', { PX: 100 }), await c.setNX('k', 'x'), await c.getEx('k', { PX: 1_000_000 }).then(() => c.pTTL('k')).then((ms) => ttlBucket(ms, 1_000_000)));
    await sleep(250);
    out.push(await c.get('p'), await c.exists(['p', 't', 'k']), await c.persist('t'), await c.ttl('t'));
    out.push(await c.mSet({ a: '1', b: '2' }), await c.mGet(['a', 'b', 'nope']), await c.del(['a', 'b', 'nope']));
    out.push(await c.incr('c'), await c.incrBy('c', 10), await c.decr('c'), await c.decrBy('c', 3), await c.incrByFloat('c', 0.5));
    out.push(await c.hSet('h', { a: '1', b: '2' }), await c.hIncrBy('h', 'a', 5), await c.hIncrByFloat('h', 'b', 1.5), await c.hGetAll('h'));
    out.push(await c.multi().incr('m').incrBy('m', 4).get('m').exec());
    return out;
  } finally {
    c.destroy();
  }
}

describe('Node.js libraries: same results against redis-server and ours', () => {
  const servers = compareServersForSuite();

  it('keyv + @keyv/redis: set/get/overwrite, TTL, has, setMany/getMany, delete, clear', async () => {
    const { ours, redis } = servers.ports();
    const expected = await keyvSession(redis);
    assert.deepEqual(await keyvSession(ours), expected);
    // The scenario says something: values came back, the short TTL expired, the long one held.
    assert.deepEqual(expected.slice(0, 4), [true, { x: 1 }, true, 'over']);
    assert.deepEqual(expected.slice(11, 14), [undefined, false, 'kept']);
    assert.equal(expected[8], 'about 10000');
  });

  it('cache-manager 7 on keyv: set/get, ttl, mset/mget, wrap, del/mdel, clear', async () => {
    const { ours, redis } = servers.ports();
    const expected = await cacheManagerSession(redis);
    assert.deepEqual(await cacheManagerSession(ours), expected);
    assert.deepEqual(expected.slice(4, 6), ['about 5000', 'about 5000']);
    assert.deepEqual(expected[8], ['v1', undefined]);
  });

  it('express-session with connect-redis: a session over real HTTP requests', async () => {
    const { ours, redis } = servers.ports();
    const expected = await sessionAppSession(redis);
    assert.deepEqual(await sessionAppSession(ours), expected);
    assert.deepEqual((expected[3] as HttpResult).body, { n: 2 });
    assert.equal(expected[5], 'about 60000');
  });

  it('ioredis: strings, TTLs, deletes, bulk, counters, pipeline, multi', async () => {
    const { ours, redis } = servers.ports();
    const expected = await ioredisSession(redis);
    assert.deepEqual(await ioredisSession(ours), expected);
    assert.deepEqual(expected[expected.length - 1], [[null, 1], [null, 5], [null, '5']]);
  });

  it('node-redis: strings, TTLs, deletes, bulk, counters, multi', async () => {
    const { ours, redis } = servers.ports();
    const expected = await nodeRedisSession(redis);
    assert.deepEqual(await nodeRedisSession(ours), expected);
    assert.deepEqual(expected[expected.length - 1], [1, 5, '5']);
  });
});
