/**
 * The transaction APIs of real client libraries — ioredis multi()/exec() and watch(), node-redis
 * multi().exec() and WATCH, redis-py's default pipeline() (transaction=True) and watch() — give the
 * same results against our server as against redis-server.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { createClient } from 'redis';
import { python } from '../helpers/cli.js';
import { compareServersForSuite } from '../helpers/compare.js';

async function ioredisSession(port: number): Promise<unknown[]> {
  const r = new Redis({ port, host: '127.0.0.1', lazyConnect: true });
  const other = new Redis({ port, host: '127.0.0.1', lazyConnect: true });
  await r.connect();
  await other.connect();
  try {
    await r.flushall();
    const out: unknown[] = [];
    out.push(await r.multi().set('io:a', '1').get('io:a').append('io:a', 'x').hset('io:h', 'f', 'v').exec());
    // A runtime error is one element of the result; the others ran.
    out.push(await r.multi().set('io:b', '2').expire('io:b', 'soon' as unknown as number).get('io:b').exec());
    // A queuing error rejects exec() with EXECABORT.
    const aborted = await r.multi().set('io:c', '3').call('NOSUCH').exec().catch((e: Error) => e.message);
    out.push(aborted, await r.get('io:c'));
    // WATCH: a write by another client makes exec() answer null.
    await r.watch('io:a');
    await other.set('io:a', 'theirs');
    out.push(await r.multi().set('io:a', 'mine').exec(), await r.get('io:a'));
    await r.watch('io:a');
    out.push(await r.multi().set('io:a', 'mine').exec(), await r.get('io:a'));
    // A large transaction (more than one commit's cap of writes) is all there afterwards.
    const big = r.multi();
    for (let i = 0; i < 5000; i++) big.set(`io:big:${i}`, String(i));
    const results = await big.exec();
    out.push(results!.length, results!.every(([err, v]) => err === null && v === 'OK'), await r.get('io:big:4999'));
    out.push(await r.dbsize());
    return out;
  } finally {
    r.disconnect();
    other.disconnect();
  }
}

async function nodeRedisSession(port: number, RESP: 2 | 3): Promise<unknown[]> {
  const c = createClient({ socket: { port, host: '127.0.0.1' }, RESP });
  const other = createClient({ socket: { port, host: '127.0.0.1' }, RESP });
  c.on('error', () => {});
  other.on('error', () => {});
  await c.connect();
  await other.connect();
  try {
    await c.flushAll();
    const out: unknown[] = [];
    out.push(await c.multi().set('nr:a', '1').get('nr:a').hSet('nr:h', { f: 'v' }).hGetAll('nr:h').exec());
    // A runtime error inside EXEC rejects exec() with the replies attached.
    out.push(await c.multi().set('nr:b', '2').sendCommand(['EXPIRE', 'nr:b', 'soon']).get('nr:b').exec().catch((e: Error & { replies?: unknown; errorIndexes?: unknown }) => [e.constructor.name, e.replies, e.errorIndexes]));
    out.push(await c.multi().set('nr:c', '3').addCommand(['NOSUCH']).exec().catch((e: Error) => e.message));
    // WATCH: another client's write makes exec() fail with WatchError.
    await c.watch('nr:a');
    await other.set('nr:a', 'theirs');
    out.push(await c.multi().set('nr:a', 'mine').exec().catch((e: Error) => e.constructor.name), await c.get('nr:a'));
    out.push(await c.multi().set('nr:d', '4').get('nr:d').execAsPipeline());
    return out;
  } finally {
    c.destroy();
    other.destroy();
  }
}

const PY = `
import redis, sys
r = redis.Redis(host='127.0.0.1', port=int(sys.argv[1]) if len(sys.argv) > 1 else int(__import__('os').environ['PORT']))
other = redis.Redis(host='127.0.0.1', port=r.connection_pool.connection_kwargs['port'])
r.flushall()
out = []
p = r.pipeline()  # transaction=True: MULTI ... EXEC
p.set('py:a', 1)
p.get('py:a')
p.hset('py:h', mapping={'f': 'v'})
p.hgetall('py:h')
out.append(p.execute())
p = r.pipeline()
p.set('py:b', 2)
p.expire('py:b', 'soon')
p.get('py:b')
try:
    p.execute()
    out.append('no error')
except redis.ResponseError as e:
    out.append(('ResponseError', str(e)))
out.append(r.get('py:b'))
p = r.pipeline()
p.set('py:c', 3)
p.execute_command('NOSUCH')
try:
    p.execute()
    out.append('no error')
except redis.ResponseError as e:
    out.append(('ResponseError', str(e).split(':')[0]))
out.append(r.get('py:c'))
# Optimistic locking with WATCH, as redis-py documents it.
with r.pipeline() as p:
    p.watch('py:a')
    other.set('py:a', 'theirs')
    p.multi()
    p.set('py:a', 'mine')
    try:
        p.execute()
        out.append('executed')
    except redis.WatchError:
        out.append('WatchError')
def bump(pipe):
    v = pipe.get('py:a')
    pipe.multi()
    pipe.set('py:a', v + b'!')
out.append(r.transaction(bump, 'py:a'))
out.append(r.get('py:a'))
print(repr(out))
`;

describe('client libraries: transactions against redis-server', () => {
  const servers = compareServersForSuite();

  it('ioredis multi()/exec() and watch()', async () => {
    const { ours, redis } = servers.ports();
    const expected = await ioredisSession(redis);
    assert.deepEqual(await ioredisSession(ours), expected);
    assert.equal(expected[expected.length - 1], 5003);
  });

  for (const RESP of [2, 3] as const) {
    it(`node-redis multi().exec() and WATCH, RESP${RESP}`, async () => {
      const { ours, redis } = servers.ports();
      const expected = await nodeRedisSession(redis, RESP);
      assert.deepEqual(await nodeRedisSession(ours, RESP), expected);
      assert.equal(expected[3], 'WatchError');
    });
  }

  it("redis-py's default pipeline() (MULTI/EXEC), WatchError and transaction()", async () => {
    const { ours, redis } = servers.ports();
    const expected = await python(PY, { PORT: String(redis) });
    const actual = await python(PY, { PORT: String(ours) });
    assert.equal(actual, expected);
    assert.match(expected, /'WatchError'/);
  });
});
