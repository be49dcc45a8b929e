/** Real client libraries and tools, driving our server as users would. */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { createClient, RESP_TYPES } from 'redis';
import { redisCli, python } from '../helpers/cli.js';
import { startOurs, type TestServer } from '../helpers/servers.js';

describe('real clients', () => {
  let ours: TestServer;
  before(async () => {
    ours = await startOurs();
  });
  after(async () => {
    await ours.close();
  });

  it('redis-cli: the README session', async () => {
    const p = ours.port;
    assert.equal(await redisCli(p, ['SET', 'k', 'v']), 'OK\n');
    assert.equal(await redisCli(p, ['GET', 'k']), 'v\n');
    assert.equal(await redisCli(p, ['HSET', 'users:1', 'name', 'x']), '1\n');
    assert.equal(await redisCli(p, ['HGET', 'users:1', 'name']), 'x\n');
    assert.equal(await redisCli(p, ['HSET', 'users:1', 'name', 'y', 'age', '3']), '1\n');
    assert.equal(await redisCli(p, ['HEXISTS', 'users:1', 'age']), '1\n');
    assert.equal(await redisCli(p, ['HDEL', 'users:1', 'age', 'nope']), '1\n');
    assert.equal(await redisCli(p, ['DEL', 'k', 'k']), '1\n');
    assert.equal(await redisCli(p, ['EXISTS', 'k']), '0\n');
    assert.equal(await redisCli(p, ['GET', 'k']), '\n');
    assert.equal(await redisCli(p, ['PING']), 'PONG\n');
    assert.equal(await redisCli(p, ['NOSUCH', 'a']), "ERR unknown command 'NOSUCH', with args beginning with: 'a' \n\n");
  });

  it('redis-cli: pipe of raw commands and RESP3', async () => {
    const out = await redisCli(ours.port, [], 'SET piped 1\nGET piped\nDEL piped\n');
    assert.equal(out, 'OK\n1\n1\n');
    assert.equal(await redisCli(ours.port, ['-3', 'GET', 'nothing']), '\n');
    const hello = await redisCli(ours.port, ['-3', 'HELLO', '3']);
    assert.match(hello, /^server redis\nversion 7\.2\.0\nproto 3\nid \d+\nmode standalone\nrole master\nmodules \n$/);
  });

  it('a plain key and a namespace of the same name coexist', async () => {
    assert.equal(await redisCli(ours.port, ['SET', 'users:1', 'plain']), 'OK\n');
    assert.equal(await redisCli(ours.port, ['HSET', 'users:1', 'name', 'ns']), '0\n');
    assert.equal(await redisCli(ours.port, ['GET', 'users:1']), 'plain\n');
    assert.equal(await redisCli(ours.port, ['HGET', 'users:1', 'name']), 'ns\n');
  });

  it('ioredis session', async () => {
    const r = new Redis({ port: ours.port, host: '127.0.0.1', lazyConnect: true });
    await r.connect();
    try {
      assert.equal(await r.set('io:a', Buffer.from([0, 1, 2, 255])), 'OK');
      assert.deepEqual(await r.getBuffer('io:a'), Buffer.from([0, 1, 2, 255]));
      assert.equal(await r.get('io:none'), null);
      assert.equal(await r.hset('io:ns', { f1: 'v1', f2: 'v2' }), 2);
      assert.equal(await r.hget('io:ns', 'f2'), 'v2');
      assert.equal(await r.hexists('io:ns', 'f1'), 1);
      assert.equal(await r.hdel('io:ns', 'f1', 'f2', 'f3'), 2);
      assert.equal(await r.exists('io:a', 'io:a', 'io:none'), 2);
      assert.equal(await r.del('io:a'), 1);
      assert.equal(await r.client('SETNAME', 'io-client'), 'OK');
      assert.equal(await r.client('GETNAME'), 'io-client');
      assert.equal(typeof (await r.client('ID')), 'number');
      const info = await r.info('server');
      assert.match(info, /^# Server\r\nredis_version:7\.2\.0\r\n/);
      await assert.rejects(r.call('GET'), /ERR wrong number of arguments for 'get' command/);
      const pipe = r.pipeline();
      for (let i = 0; i < 100; i++) pipe.set(`io:p${i}`, String(i));
      for (let i = 0; i < 100; i++) pipe.get(`io:p${i}`);
      const results = await pipe.exec();
      assert.deepEqual(results!.slice(100).map(([, v]) => v), Array.from({ length: 100 }, (_, i) => String(i)));
    } finally {
      r.disconnect();
    }
  });

  for (const RESP of [2, 3] as const) {
    it(`node-redis session, RESP${RESP}`, async () => {
      const c = createClient({ socket: { port: ours.port, host: '127.0.0.1' }, RESP });
      c.on('error', () => {});
      await c.connect();
      try {
        assert.equal(await c.set(`nr${RESP}`, 'value'), 'OK');
        assert.equal(await c.get(`nr${RESP}`), 'value');
        assert.equal(await c.get('nr:none'), null);
        assert.equal(await c.hSet(`nr${RESP}:h`, { a: '1', b: '2' }), 2);
        assert.equal(await c.hGet(`nr${RESP}:h`, 'b'), '2');
        assert.equal(await c.hExists(`nr${RESP}:h`, 'z'), 0);
        assert.equal(await c.del([`nr${RESP}`, 'nr:none']), 1);
        const bytes = Buffer.from([0, 13, 10, 255]);
        await c.set('nr:bin', bytes);
        const back = await c.withTypeMapping({ [RESP_TYPES.BLOB_STRING]: Buffer }).get('nr:bin');
        assert.deepEqual(back, bytes);
        assert.equal(await c.ping(), 'PONG');
        assert.equal(await c.dbSize() > 0, true);
      } finally {
        c.destroy();
      }
    });
  }

  it('redis-py session', async () => {
    const out = await python(
      `
import redis, sys
r = redis.Redis(host='127.0.0.1', port=int(sys.argv[1]) if len(sys.argv) > 1 else ${ours.port})
assert r.ping() is True
assert r.set('py:k', b'\\x00\\xffbin') is True
assert r.get('py:k') == b'\\x00\\xffbin'
assert r.get('py:none') is None
assert r.hset('py:ns', mapping={'a': '1', 'b': '2'}) == 2
assert r.hget('py:ns', 'a') == b'1'
assert r.hexists('py:ns', 'b') is True
assert r.hdel('py:ns', 'a', 'zz') == 1
assert r.exists('py:k', 'py:none') == 1
assert r.delete('py:k') == 1
info = r.info()
assert info['redis_version'] == '7.2.0', info
assert info['role'] == 'master'
p = r.pipeline(transaction=False)
for i in range(50): p.set(f'py:p{i}', i)
for i in range(50): p.get(f'py:p{i}')
res = p.execute()
assert res[50:] == [str(i).encode() for i in range(50)], res
print('ok')
`,
    );
    assert.equal(out, 'ok\n');
  });
});
