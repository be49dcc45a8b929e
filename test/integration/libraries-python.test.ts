/**
 * Python libraries (Debian's python3 packages) driven through their normal APIs against a real
 * redis-server and against ours; each script prints what it observed and the two printouts must be
 * equal: cachelib's RedisCache, dogpile.cache's redis backend, celery's Redis result backend
 * (driven directly: no broker, no worker) and redis-py's everyday API. redis-py's default
 * pipeline() (MULTI/EXEC) is compared in transactions-clients.test.ts.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { python } from '../helpers/cli.js';
import { compareServersForSuite } from '../helpers/compare.js';

/** Shared by every script: the port, and a TTL checked against a tolerance so both runs print alike. */
const PRELUDE = `
import os, time
PORT = int(os.environ['PORT'])
def about(ttl, expected, slack=2):
    return 'about %s' % expected if expected - slack <= ttl <= expected else 'off: %s for %s' % (ttl, expected)
out = []
`;

const CACHELIB = `${PRELUDE}
from cachelib import RedisCache
c = RedisCache(host='127.0.0.1', port=PORT, key_prefix='cl:', default_timeout=300)
c._write_client.flushall()
out.append((c.set('a', {'x': 1}), c.get('a'), c.set('a', 'over'), c.get('a')))
out.append((c.add('a', 'no'), c.add('b', 'yes'), c.get('a'), c.has('b'), c.has('nope')))
out.append(about(c._write_client.ttl('cl:a'), 300))
out.append((c.set('t', 1, timeout=1), about(c._write_client.ttl('cl:t'), 1, 1), c.set('forever', 1, timeout=0)))
out.append(c._write_client.ttl('cl:forever'))
out.append((c.set_many({'m1': 1, 'm2': [1, 2]}), c.get_many('m1', 'm2', 'nope'), c.get_dict('m1', 'm2')))
out.append((c.inc('n'), c.inc('n', 5), c.dec('n', 2), c.get('n'), c.dec('fresh')))
out.append((c.delete('a'), c.get('a'), c.delete('a')))
out.append((c.delete_many('m1', 'm2', 'nope'), c.has('m1')))
time.sleep(1.3)
out.append((c.get('t'), c.has('t'), c.get('forever')))
out.append((c.clear(), c.has('b'), c.has('forever')))
print(repr(out))
`;

const DOGPILE = `${PRELUDE}
from dogpile.cache import make_region
from dogpile.cache.api import NO_VALUE
region = make_region(key_mangler=lambda k: 'dp:' + k).configure(
    'dogpile.cache.redis', expiration_time=60,
    arguments={'host': '127.0.0.1', 'port': PORT, 'redis_expiration_time': 2,
               'distributed_lock': os.environ.get('LOCK') == '1', 'thread_local_lock': False})
client = region.backend.writer_client
client.flushall()
calls = []
def create():
    calls.append(1)
    return {'n': len(calls)}
out.append((region.get_or_create('a', create), region.get_or_create('a', create), len(calls)))
region.set('b', 'one'); out.append(region.get('b'))
region.set('b', 'two'); out.append(region.get('b'))
out.append(about(client.ttl('dp:b'), 2, 1))
region.set_multi({'m1': 1, 'm2': 2})
out.append((region.get_multi(['m1', 'm2']), region.get_multi(['nope'])[0] is NO_VALUE))
out.append(region.get_or_create_multi(['m1', 'x'], lambda *keys: [k.upper() for k in keys]))
region.delete('b'); out.append(region.get('b') is NO_VALUE)
region.delete_multi(['m1', 'm2']); out.append(region.get_multi(['m1', 'm2']) == [NO_VALUE, NO_VALUE])
@region.cache_on_arguments()
def square(x):
    calls.append(x)
    return x * x
out.append((square(3), square(3), len(calls)))
square.invalidate(3); out.append((square(3), len(calls)))
time.sleep(2.3)
out.append((region.get('a') is NO_VALUE, client.exists('dp:a')))
print(repr(out))
`;

const CELERY = `${PRELUDE}
from celery import Celery, states
app = Celery('t', broker='memory://', backend='redis://127.0.0.1:%d/0' % PORT)
app.conf.result_expires = 120
b = app.backend
b.client.flushall()
# store_result: SETEX + PUBLISH in one MULTI (redis-py's default pipeline).
b.store_result('t1', {'answer': 42}, states.SUCCESS)
m = b.get_task_meta('t1'); out.append((m['status'], m['result'], m['task_id']))
out.append(about(b.client.ttl('celery-task-meta-t1'), 120))
b.store_result('t3', None, states.STARTED)
b.store_result('t3', [1, 2], states.SUCCESS)
b._cache.clear()
out.append((b.get_task_meta('t3')['status'], b.get_task_meta('t3')['result']))
try:
    raise ValueError('boom')
except ValueError as e:
    b.mark_as_failure('t2', e)
m = b.get_task_meta('t2'); exc = b.exception_to_python(m['result'])
out.append((m['status'], type(exc).__name__, str(exc)))
out.append((app.AsyncResult('t1').state, app.AsyncResult('t1').result, app.AsyncResult('never').state))
out.append([b.decode(v)['status'] if v else None for v in b.client.mget(['celery-task-meta-t1', 'celery-task-meta-none'])])
# Groups: save_group/restore_group/delete_group (SETEX, GET, DEL).
from celery.result import GroupResult
g = GroupResult('g1', [app.AsyncResult('t1'), app.AsyncResult('t2')])
g.save(backend=b)
restored = GroupResult.restore('g1', backend=b, app=app)
out.append([r.id for r in restored.results])
g.delete(backend=b); out.append(GroupResult.restore('g1', backend=b, app=app))
# A chord's counters: the size key (SET) and the per-result counter (INCR).
b.set_chord_size('g2', 3)
b.add_to_chord('g2', None); b.add_to_chord('g2', None)
out.append((b.client.get(b.get_key_for_group('g2', '.s')), b.client.get(b.get_key_for_group('g2', '.t'))))
b.forget('t1')
out.append((b.get_task_meta('t1')['status'], b.client.exists('celery-task-meta-t1')))
print(repr(out))
`;

const REDIS_PY = `${PRELUDE}
import redis
r = redis.Redis(host='127.0.0.1', port=PORT)
r.flushall()
out.append((r.set('k', 'v1'), r.get('k'), r.set('k', 'v2', get=True), r.get('k')))
out.append((r.set('t', 'x', ex=100), about(r.ttl('t'), 100), r.setex('s', 50, 'y'), about(r.ttl('s'), 50)))
out.append((r.set('p', 'x', px=100), r.set('k', 'x', nx=True), r.setnx('new', '1'), r.getex('new', px=1000000) , about(r.pttl('new'), 1000000, 2000)))
time.sleep(0.25)
out.append((r.get('p'), r.exists('p', 't', 'k'), r.persist('t'), r.ttl('t'), r.expire('t', 30), about(r.ttl('t'), 30)))
out.append((r.mset({'a': 1, 'b': 2}), r.mget('a', 'b', 'nope'), r.delete('a', 'b', 'nope'), r.unlink('k')))
out.append((r.incr('c'), r.incrby('c', 10), r.decr('c'), r.decrby('c', 3), r.incrbyfloat('c', 0.5), r.get('c')))
r.set('f', 'nan?')
try:
    r.incr('f')
except redis.ResponseError as e:
    out.append(str(e))
out.append((r.hset('h', mapping={'a': 1, 'b': 2}), r.hincrby('h', 'a', 5), r.hincrbyfloat('h', 'b', 1.5), r.hgetall('h')))
p = r.pipeline(transaction=False)
p.set('x', 1).incr('x').get('x').delete('x')
out.append(p.execute())
out.append(sorted(r.scan_iter(match='*')))
print(repr(out))
`;

async function bothServers(ports: { ours: number; redis: number }, script: string, env: Record<string, string> = {}): Promise<string> {
  const expected = await python(script, { PORT: String(ports.redis), ...env });
  const actual = await python(script, { PORT: String(ports.ours), ...env });
  assert.equal(actual, expected);
  return expected;
}

describe('Python libraries: same results against redis-server and ours', () => {
  const servers = compareServersForSuite();

  it("cachelib's RedisCache: set/get/add, timeouts, set_many/get_many, inc/dec, delete, clear", async () => {
    const printed = await bothServers(servers.ports(), CACHELIB);
    assert.match(printed, /^\[\(True, \{'x': 1\}, True, 'over'\), .*'about 300'.*\(1, 6, 4, 4, -1\).*\(None, False, 1\), \(True, False, False\)\]$/m);
  });

  it("dogpile.cache's redis backend: get_or_create, set/get, multi, delete, invalidate, expiry", async () => {
    const printed = await bothServers(servers.ports(), DOGPILE);
    assert.match(printed, /^\[\(\{'n': 1\}, \{'n': 1\}, 1\), 'one', 'two', 'about 2'.*\(True, 0\)\]$/m);
  });

  it("dogpile.cache with distributed_lock: redis-py's Lock (SET NX PX, released by a Lua script)", async () => {
    const printed = await bothServers(servers.ports(), DOGPILE, { LOCK: '1' });
    assert.match(printed, /^\[\(\{'n': 1\}, \{'n': 1\}, 1\), 'one', 'two', 'about 2'.*\(True, 0\)\]$/m);
  });

  it("celery's Redis result backend: store_result, get_task_meta, failures, groups, chord counters, forget", async () => {
    const printed = await bothServers(servers.ports(), CELERY);
    assert.match(printed, /^\[\('SUCCESS', \{'answer': 42\}, 't1'\), 'about 120', .*\('FAILURE', 'ValueError', 'boom'\).*\(b'3', b'2'\), \('PENDING', 0\)\]$/m);
  });

  it("redis-py's everyday API: strings, TTLs, deletes, bulk, counters, pipeline(transaction=False), scan", async () => {
    const printed = await bothServers(servers.ports(), REDIS_PY);
    assert.match(printed, /\(1, 11, 10, 7, 7\.5, b'7\.5'\)/);
  });
});
