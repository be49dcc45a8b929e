/**
 * The same commands against our server and a real redis-server, compared byte for byte.
 * Every script runs on an empty keyspace on both sides.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { RawClient, resp } from '../helpers/raw.js';
import { compareServersForSuite, itMatchesRedis, type Cmd } from '../helpers/compare.js';
import { startOurs } from '../helpers/servers.js';


const SCRIPTS: Record<string, Cmd[]> = {
  'read-modify-write keeps the TTL': [
    ['SET', 'k', 'v', 'EX', '100'],
    ['APPEND', 'k', 'x'],
    ['TTL', 'k'],
    ['SETRANGE', 'k', '1', 'yy'],
    ['TTL', 'k'],
    ['GET', 'k'],
    ['SET', 'k', 'w', 'KEEPTTL'],
    ['TTL', 'k'],
    ['SET', 'k', 'w'],
    ['TTL', 'k'],
    ['APPEND', 'new', 'abc'],
    ['TTL', 'new'],
    ['SETRANGE', 'new2', '2', 'z'],
    ['TTL', 'new2'],
    ['GET', 'new2'],
  ],
  'strings': [
    ['SET', 'k', 'v'],
    ['GET', 'k'],
    ['GET', 'missing'],
    ['SET', 'k', 'v2'],
    ['GET', 'k'],
    ['SET', 'empty', ''],
    ['GET', 'empty'],
    ['get', 'k'],
    ['GET'],
    ['GET', 'a', 'b'],
    ['SET', 'k'],
  ],
  'del and exists': [
    ['SET', 'a', '1'],
    ['SET', 'b', '2'],
    ['EXISTS', 'a'],
    ['EXISTS', 'a', 'a', 'b', 'nope'],
    ['DEL', 'a', 'a', 'nope'],
    ['EXISTS', 'a'],
    ['DEL', 'nope'],
    ['DEL', 'b'],
    ['GET', 'b'],
    ['DEL'],
    ['EXISTS'],
  ],
  'hashes': [
    ['HSET', 'h', 'f', 'v'],
    ['HSET', 'h', 'f', 'v2', 'g', 'w', 'x', 'y'],
    ['HGET', 'h', 'f'],
    ['HGET', 'h', 'missing'],
    ['HGET', 'nohash', 'f'],
    ['HEXISTS', 'h', 'g'],
    ['HEXISTS', 'h', 'zz'],
    ['HDEL', 'h', 'f', 'f', 'zz'],
    ['HGET', 'h', 'f'],
    ['HSET', 'h', 'f'],
    ['HSET', 'h', 'f', 'v', 'odd'],
    ['HDEL', 'h'],
    ['HGET', 'h'],
    ['HEXISTS', 'h', 'a', 'b'],
    ['EXISTS', 'h'],
    ['DEL', 'h'],
    ['HGET', 'h', 'g'],
    ['EXISTS', 'h'],
  ],
  'connection': [
    ['PING'],
    ['PING', 'hello'],
    ['PING', 'a', 'b'],
    ['ECHO', 'x y'],
    ['ECHO'],
    ['SELECT', '0'],
    ['SELECT', 'abc'],
    ['SELECT', '-1'],
    ['CLIENT'],
    ['CLIENT', 'FOO'],
    ['CLIENT', 'GETNAME'],
    ['CLIENT', 'SETNAME', 'a b'],
    ['CLIENT', 'SETNAME', 'worker-1'],
    ['CLIENT', 'GETNAME'],
    ['CLIENT', 'SETNAME', ''],
    ['CLIENT', 'GETNAME'],
    ['CLIENT', 'SETNAME'],
    ['HELLO', '4'],
    ['HELLO', 'abc'],
    ['HELLO', '2', 'BOGUS'],
  ],
  'server': [
    ['SET', 'a', '1'],
    ['HSET', 'h', 'f', 'v', 'g', 'w'],
    ['DBSIZE'],
    ['FLUSHDB', 'BOGUS'],
    ['FLUSHDB', 'ASYNC', 'x'],
    ['FLUSHDB'],
    ['DBSIZE'],
    ['GET', 'a'],
    ['SET', 'a', '1'],
    ['FLUSHALL', 'SYNC'],
    ['EXISTS', 'a'],
    ['DBSIZE', 'x'],
    ['COMMAND', 'INFO', 'get', 'nosuchcommand', 'hget', 'hexists', 'hset', 'hdel', 'exists', 'del'],
    ['COMMAND', 'FOO'],
  ],
  'config': [
    ['CONFIG', 'GET', 'maxmemory'],
    ['CONFIG', 'GET', 'MAXMEMORY-POLICY'],
    ['CONFIG', 'GET', 'maxmemory-pol*'],
    ['CONFIG', 'GET', 'nosuch*'],
    ['CONFIG', 'GET'],
    ['CONFIG'],
    ['CONFIG', 'FOO'],
    ['CONFIG', 'SET', 'nosuch', 'x'],
    ['CONFIG', 'SET', 'maxmemory'],
    ['HELLO', '3'],
    ['CONFIG', 'GET', 'maxmemory'],
    ['HELLO', '2'],
  ],
  'unknown commands': [
    ['FOO'],
    ['FOO', 'bar', 'baz'],
    ['foo', 'x'.repeat(200)],
    ['FOO', 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o', 'p', 'q', 'r', 's', 't', 'u', 'v', 'w', 'x', 'y', 'z', 'aa', 'bb', 'cc', 'dd', 'ee', 'ff', 'gg', 'hh', 'ii', 'jj', 'kk', 'll'],
  ],
  'resp3': [
    ['HELLO', '3', 'SETNAME', 'r3'],
    ['GET', 'missing'],
    ['HGET', 'h', 'missing'],
    ['SET', 'k', 'v'],
    ['GET', 'k'],
    ['CLIENT', 'GETNAME'],
    ['COMMAND', 'INFO', 'nosuchcommand'],
    ['COMMAND', 'DOCS', 'nosuchcommand'],
    ['HELLO', '2'],
    ['GET', 'missing'],
  ],
};

describe('replies match redis-server', () => {
  const servers = compareServersForSuite();

  itMatchesRedis(servers.ports, SCRIPTS);

  it('inline commands', async () => {
    const script = 'PING\r\nSET a "hello world"\r\nGET a\r\nECHO \'it\\\'s\'\r\n\r\nGET "\\x41\\x42"\nEXISTS a\n';
    const get = async (port: number): Promise<string[]> => {
      const c = await RawClient.connect(port);
      c.write(resp('FLUSHALL'));
      await c.reply();
      c.write(script);
      const r = await c.replies(6);
      c.destroy();
      return r;
    };
    assert.deepEqual(await get(servers.ours.port), await get(servers.redis.port));
  });
});

describe('CONFIG on our server', () => {
  it('GET reports our values in Redis names and never the password; SET refuses an immutable parameter', async () => {
    const ours = await startOurs({ requirepass: 'secret', maxclients: 77 });
    const c = await RawClient.connect(ours.port);
    try {
      c.write(resp('AUTH', 'secret'));
      assert.equal(await c.reply(), '+OK\r\n');
      c.write(resp('CONFIG', 'GET', 'port'));
      assert.equal(await c.reply(), `*2\r\n$4\r\nport\r\n$${String(ours.port).length}\r\n${ours.port}\r\n`);
      c.write(resp('CONFIG', 'GET', 'save', 'appendonly', 'maxclients'));
      assert.equal(await c.reply(), '*6\r\n$4\r\nsave\r\n$0\r\n\r\n$10\r\nappendonly\r\n$2\r\nno\r\n$10\r\nmaxclients\r\n$2\r\n77\r\n');
      c.write(resp('CONFIG', 'GET', '*'));
      const all = await c.reply();
      assert.match(all, /\r\ndatabases\r\n\$1\r\n1\r\n/);
      assert.doesNotMatch(all, /requirepass|secret/);
      c.write(resp('CONFIG', 'SET', 'port', '5'));
      assert.equal(await c.reply(), "-ERR CONFIG SET failed (possibly related to argument 'port') - can't set immutable config\r\n");
      c.write(resp('CONFIG', 'SET', 'requirepass', 'other'));
      assert.equal(await c.reply(), '+OK\r\n');
      c.write(resp('CONFIG', 'GET', 'requirepass'));
      assert.equal(await c.reply(), '*0\r\n');
    } finally {
      c.destroy();
      await ours.close();
    }
  });
});
