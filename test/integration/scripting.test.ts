/**
 * Lua scripting: replies byte for byte against redis-server (errors with their @user_script
 * positions, nil/false, nested tables, RESP3, pcall, SCRIPT and FUNCTION), a runaway script
 * (-BUSY to others, SCRIPT KILL, UNKILLABLE), the VM memory bound, FUNCTION persistence across a
 * restart, and client libraries that rely on scripts (redlock, redis-py's lock()).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { promisify } from 'node:util';
import pino from 'pino';
import { Redis } from 'ioredis';
import Redlock from 'redlock';
import { compareServersForSuite, itMatchesRedis, type Cmd } from '../helpers/compare.js';
import { spawnOurs, startOurs, startRedis, tempDir, type RedisServer, type TestServer } from '../helpers/servers.js';
import { MiB, mib, procMemory } from '../helpers/proc.js';
import { configSchema } from '../../src/config/index.js';
import { encodeDump, encodeFunctionsDump } from '../../src/protocol/rdb.js';
import { startServer } from '../../src/app.js';

const run = promisify(execFile);

const LIB = `#!lua name=mylib
local function echo(keys, args) return {keys[1], args[1]} end
redis.register_function('echo', echo)
redis.register_function{function_name='readit', callback=function(keys) return redis.call('GET', keys[1]) end, flags={'no-writes'}, description='reads'}
redis.register_function('boom', function() return redis.call('nosuch') end)`;

/** FUNCTION DUMP of redis-server 7.0.15 with the library `mylib` below (its code LZF-compressed). */
const REDIS_DUMP_ONE = Buffer.from(
  'f5c3406a40741f23216c7561206e616d653d6d796c69620a6c6f63616c2066756e6374696f6e20186563686f286b6579732c2061726773292072657475726e207b4013025b315d80162008147d20656e640a72656469732e72656769737465725fc046012827404701272c404e016f290a0000128aa661ab34dd',
  'hex',
);
/** …and with `b` (stored plain: LZF does not shrink it) beside it. */
const REDIS_DUMP_TWO = Buffer.from(
  'f5404523216c7561206e616d653d620a72656469732e72656769737465725f66756e6374696f6e28276231272c2066756e6374696f6e28292072657475726e2027622720656e6429f5c3406a40741f23216c7561206e616d653d6d796c69620a6c6f63616c2066756e6374696f6e20186563686f286b6579732c2061726773292072657475726e207b4013025b315d80162008147d20656e640a72656469732e72656769737465725fc046012827404701272c404e016f290a00dfbe05293e7fbec4',
  'hex',
);
const ourFunctionsDump = (codes: string[]): Buffer => encodeFunctionsDump(codes.map((c) => Buffer.from(c)));

const SCRIPTS: Record<string, Cmd[]> = {
  'values and conversions': [
    ['EVAL', 'return 1', '0'],
    ['EVAL', 'return 3.99', '0'],
    ['EVAL', 'return -7.5', '0'],
    ['EVAL', "return 'str'", '0'],
    ['EVAL', 'return true', '0'],
    ['EVAL', 'return false', '0'],
    ['EVAL', 'return nil', '0'],
    ['EVAL', "return {1, 2, {3, 'x', {false, true}}, 'y'}", '0'],
    ['EVAL', "return {1, 2, nil, 4}", '0'],
    ['EVAL', "return {ok='FINE'}", '0'],
    ['EVAL', "return {err='MYERR something bad'}", '0'],
    ['EVAL', "return redis.status_reply('DONE')", '0'],
    ['EVAL', "return redis.error_reply('CODE text')", '0'],
    ['EVAL', "return redis.error_reply('plain')", '0'],
    ['EVAL', "return {KEYS[1], KEYS[2], ARGV[1], ARGV[2], #KEYS, #ARGV}", '2', 'k1', 'k2', 'a1', 'a2'],
    ['EVAL', 'return redis.sha1hex(ARGV[1])', '0', 'hello'],
    ['EVAL', "return redis.REDIS_VERSION ~= nil", '0'],
    ['EVAL', "return type(unpack) .. type(table.getn) .. type(bit) .. type(cjson) .. type(cmsgpack) .. type(struct)", '0'],
    ['EVAL', "return {type(io), type(os), type(require), type(dofile), type(loadfile)}", '0'],
  ],
  'redis.call and redis.pcall': [
    ['EVAL', "redis.call('SET', KEYS[1], ARGV[1]) return redis.call('GET', KEYS[1])", '1', 'k', 'v'],
    ['EVAL', "return redis.call('GET', 'missing')", '0'],
    ['EVAL', "return redis.call('SET', 'n', 42)", '0'],
    ['GET', 'n'],
    ['EVAL', "return redis.call('DEL', 'k', 'n')", '0'],
    ['EVAL', "return redis.pcall('GET')", '0'],
    ['EVAL', "return redis.call('GET')", '0'],
    ['EVAL', "return redis.call('NOSUCH')", '0'],
    ['EVAL', "return redis.pcall('NOSUCH')", '0'],
    ['EVAL', 'return redis.call()', '0'],
    ['EVAL', "return redis.call('GET', {})", '0'],
    ['EVAL', "return redis.call('EVAL', 'return 1', '0')", '0'],
    ['EVAL', "return redis.call('SET', 'k', 'v', 'EX', 'x')", '0'],
    ['EVAL', "local r = redis.pcall('SET', 'k', 'v', 'EX', 'x') return r['err']", '0'],
    ['EVAL', "local ok = redis.pcall('SET', 'k', 'v', 'EX', 'x') return type(ok)", '0'],
    ['EVAL', "local r = redis.call('SET', 'k', 'v') return r['ok']", '0'],
    ['EVAL', "return redis.call('HSET', 'h', 'a', '1', 'b', '2')", '0'],
    ['EVAL', "return redis.call('HGETALL', 'h')", '0'],
    ['EVAL', "return pcall(function() return redis.call('GET') end)", '0'],
  ],
  'errors and their positions': [
    ['EVAL', "error('boom')", '0'],
    ['EVAL', '\n\nerror("third line")', '0'],
    ['EVAL', "error({err='ERR custom'})", '0'],
    ['EVAL', 'return undefined_global', '0'],
    ['EVAL', 'x = 1', '0'],
    ['EVAL', 'return 1 +', '0'],
    ['EVAL', "redis.call('SET', 'k', 'v') error('after a write')", '0'],
    ['EVAL', 'return 1', 'notanumber'],
    ['EVAL', 'return 1', '-1'],
    ['EVAL', 'return 1', '2', 'a'],
    ['EVALSHA', 'ffffffffffffffffffffffffffffffffffffffff', '0'],
    ['EVAL_RO', "return redis.call('SET', 'k', 'v')", '0'],
    ['EVAL_RO', "return redis.call('GET', 'k')", '0'],
    ['EVAL', "#!lua flags=no-writes\nreturn redis.call('SET', 'k', 'v')", '0'],
    ['EVAL', '#!lua\nreturn 5', '0'],
    ['EVAL', "return redis.setresp(4)", '0'],
    ['EVAL', "return redis.log(redis.LOG_WARNING)", '0'],
  ],
  'sandbox: read-only globals and library tables (Redis 7)': [
    ['EVAL', 'x = 1', '0'],
    ['EVAL', 'function f() end', '0'],
    ['EVAL', 'string.rep = nil', '0'],
    ['EVAL', "local ok, e = pcall(function() string.rep = function() return 'hacked' end end) return {tostring(ok), e}", '0'],
    ['EVAL', "return string.rep('x', 3)", '0'],
    ['EVAL', 'redis.call = function() return 1 end', '0'],
    ['EVAL', 'cjson.encode = nil', '0'],
    ['EVAL', 'cmsgpack.pack = nil', '0'],
    ['EVAL', 'bit.band = nil', '0'],
    ['EVAL', 'struct.pack = nil', '0'],
    ['EVAL', 'math.huge = 1', '0'],
    ['EVAL', "rawset(string, 'rep', 1)", '0'],
    ['EVAL', "rawset(_G, 'x', 1)", '0'],
    ['EVAL', 'table.insert(string, 1)', '0'],
    ['EVAL', 'setmetatable(_G, {})', '0'],
    ['EVAL', 'local g = getmetatable(_G) g.__index = {}', '0'],
    ['EVAL', "getmetatable('').__index = {}", '0'],
    ['EVAL', '_G = {}', '0'],
    ['EVAL', 'return _G.missing', '0'],
    ['EVAL', "return rawget(_G, 'string') == string", '0'],
    ['EVAL', "loadstring('y = 1')()", '0'],
    ['EVAL', "KEYS[1] = 'x' rawset(KEYS, 2, 'y') local t = setmetatable({}, {}) t.a = 1 return {KEYS[1], KEYS[2], t.a}", '1', 'k'],
    ['EVAL', "return {redis.call('SET', 'k', 'v'), redis.call('GET', 'k'), string.rep('ab', 2), cjson.encode({1})}", '0'],
    ['FUNCTION', 'FLUSH'],
    ['FUNCTION', 'LOAD', "#!lua name=ro\nredis.register_function('f', function() string.rep = nil end)\nredis.register_function('g', function() y = 1 end)\nredis.register_function('h', function() return string.rep('a', 2) end)"],
    ['FCALL', 'f', '0'],
    ['FCALL', 'g', '0'],
    ['FCALL', 'h', '0'],
    ['FUNCTION', 'LOAD', '#!lua name=ro2\nstring.rep = nil'],
    ['FUNCTION', 'LOAD', '#!lua name=ro3\ny = 1'],
    ['FUNCTION', 'LOAD', "#!lua name=ro4\nredis.call('ping')"],
    ['FUNCTION', 'LOAD', '#!lua name=ro5\nredis.x = 1'],
    ['FUNCTION', 'FLUSH'],
  ],
  'FUNCTION RESTORE of payloads in Redis\' format (RDB function opcode, version, CRC-64)': [
    ['FUNCTION', 'FLUSH'],
    ['FUNCTION', 'RESTORE', REDIS_DUMP_ONE],
    ['FCALL', 'echo', '1', 'a', 'b'],
    ['FUNCTION', 'LIST', 'WITHCODE'],
    ['FUNCTION', 'RESTORE', REDIS_DUMP_ONE],
    ['FUNCTION', 'RESTORE', REDIS_DUMP_ONE, 'APPEND'],
    ['FUNCTION', 'RESTORE', REDIS_DUMP_ONE, 'REPLACE'],
    ['FUNCTION', 'RESTORE', REDIS_DUMP_TWO, 'FLUSH'],
    ['FCALL', 'b1', '0'],
    ['FUNCTION', 'LIST', 'LIBRARYNAME', 'b', 'WITHCODE'],
    ['FUNCTION', 'DELETE', 'mylib'],
    ['FUNCTION', 'LOAD', "#!lua name=other\nredis.register_function('echo', function() return 'other' end)"],
    ['FUNCTION', 'RESTORE', REDIS_DUMP_ONE],
    ['FUNCTION', 'RESTORE', REDIS_DUMP_ONE, 'REPLACE'],
    ['FCALL', 'echo', '0'],
    ['FUNCTION', 'RESTORE', ourFunctionsDump(['#!lua name=bad\nreturn +'])],
    ['FUNCTION', 'RESTORE', ourFunctionsDump(['#!lua name=d\nredis.register_function(\'d\', function() return 1 end)', '#!lua name=d\nredis.register_function(\'d2\', function() return 1 end)'])],
    ['FUNCTION', 'RESTORE', ourFunctionsDump(["#!lua name=new\nredis.register_function('n', function() return 'n' end)"])],
    ['FCALL', 'n', '0'],
    ['FUNCTION', 'RESTORE', encodeDump({ type: 'string', value: Buffer.from('not a function') })],
    ['FUNCTION', 'RESTORE', Buffer.from('junk')],
    ['FUNCTION', 'RESTORE', REDIS_DUMP_ONE.subarray(0, 20)],
    ['FUNCTION', 'RESTORE', REDIS_DUMP_ONE, 'NOPE'],
    ['FUNCTION', 'RESTORE', ourFunctionsDump([])],
    ['FUNCTION', 'FLUSH'],
    ['FUNCTION', 'DUMP'],
  ],
  'RESP3': [
    ['HELLO', '3'],
    ['EVAL', 'return nil', '0'],
    ['EVAL', 'return false', '0'],
    ['EVAL', 'return true', '0'],
    ['EVAL', "redis.setresp(3) return redis.call('GET', 'missing') == nil", '0'],
    ['EVAL', "redis.setresp(3) return true", '0'],
    ['EVAL', "redis.setresp(3) return false", '0'],
    ['EVAL', "redis.setresp(3) return {double=3.5}", '0'],
    ['EVAL', "redis.setresp(3) return {map={a=1}}", '0'],
    ['EVAL', "redis.setresp(3) return {set={x=true}}", '0'],
    ['EVAL', "return {double=2.5}", '0'],
    ['EVAL', "redis.call('HSET', 'h', 'f', 'v') redis.setresp(3) local m = redis.call('HGETALL', 'h') return m['map']['f']", '0'],
    ['EVAL', "local m = redis.call('HGETALL', 'h') return m", '0'],
    ['EVAL', "redis.setresp(3) return redis.call('HGETALL', 'h')", '0'],
  ],
  'SCRIPT LOAD, EXISTS, FLUSH and EVALSHA': [
    ['SCRIPT', 'FLUSH'],
    ['SCRIPT', 'LOAD', "return 'loaded'"],
    ['EVALSHA', 'b534286061d4b9e4026607613b95c06c06015ae8', '0'],
    ['EVALSHA', 'B534286061D4B9E4026607613B95C06C06015AE8', '0'],
    ['SCRIPT', 'EXISTS', 'b534286061d4b9e4026607613b95c06c06015ae8', 'ffffffffffffffffffffffffffffffffffffffff'],
    ['EVALSHA_RO', 'b534286061d4b9e4026607613b95c06c06015ae8', '0'],
    ['SCRIPT', 'FLUSH', 'SYNC'],
    ['SCRIPT', 'EXISTS', 'b534286061d4b9e4026607613b95c06c06015ae8'],
    ['EVALSHA', 'b534286061d4b9e4026607613b95c06c06015ae8', '0'],
    ['SCRIPT', 'FLUSH', 'LATER'],
    ['SCRIPT', 'LOAD', 'return +'],
    ['SCRIPT', 'KILL'],
    ['SCRIPT', 'HELP'],
    ['SCRIPT', 'NOPE'],
  ],
  'FUNCTION and FCALL': [
    ['FUNCTION', 'FLUSH'],
    ['FUNCTION', 'LOAD', LIB],
    ['FUNCTION', 'LOAD', LIB],
    ['FUNCTION', 'LOAD', 'REPLACE', LIB],
    ['FCALL', 'echo', '1', 'key', 'arg'],
    ['SET', 'key', 'value'],
    ['FCALL_RO', 'readit', '1', 'key'],
    ['FCALL_RO', 'echo', '1', 'key', 'arg'],
    ['FCALL', 'boom', '0'],
    ['FCALL', 'nosuch', '0'],
    ['FUNCTION', 'LOAD', 'return 1'],
    ['FUNCTION', 'LOAD', '#!lua\nreturn 1'],
    ['FUNCTION', 'LOAD', '#!lua name=empty\nreturn 1'],
    ['FUNCTION', 'LOAD', '#!lua name=bad-name\nreturn 1'],
    ['FUNCTION', 'LOAD', '#!nope name=x\nreturn 1'],
    ['FUNCTION', 'DELETE', 'nosuch'],
    ['FUNCTION', 'DELETE', 'mylib'],
    ['FCALL', 'echo', '0'],
    ['FUNCTION', 'LIST'],
    ['FUNCTION', 'KILL'],
    ['FUNCTION', 'STATS'],
    ['FUNCTION', 'HELP'],
  ],
  'Lua 5.1 libraries': [
    ['EVAL', "return cjson.encode({1, 2, 'a/b', {x=1}})", '0'],
    ['EVAL', "return cjson.encode({})", '0'],
    ['EVAL', "local t = cjson.decode(ARGV[1]) return {t.a, t.b[2], t.c == cjson.null}", '0', '{"a":"x","b":[1,2],"c":null}'],
    ['EVAL', "return {bit.band(0xff, 0x0f), bit.bor(1, 2), bit.bxor(3, 1), bit.lshift(1, 4), bit.rshift(-1, 28), bit.arshift(-16, 2), bit.tohex(255), bit.tohex(-1, -4), bit.bnot(0)}", '0'],
    ['EVAL', "return cmsgpack.pack({1, 'ab', {x=true}})", '0'],
    ['EVAL', "return {cmsgpack.unpack(cmsgpack.pack(1, -200, 70000, 'str', {1, 2}))}", '0'],
    ['EVAL', "return struct.pack('>I2i4', 258, -1)", '0'],
    ['EVAL', "return {struct.unpack('>I2', ARGV[1])}", '0', '\x01\x02'],
    ['EVAL', "return table.getn({1, 2, 3}) + select('#', unpack({1, 2}))", '0'],
    ['EVAL', "return loadstring('return 7')()", '0'],
  ],
};

describe('scripting: replies byte for byte against redis-server', () => {
  const servers = compareServersForSuite();
  itMatchesRedis(servers.ports, SCRIPTS);

  it('FUNCTION DUMP from redis-server restores here, and ours restores on redis-server', async () => {
    const ours = new Redis({ port: servers.ports().ours, host: '127.0.0.1', maxRetriesPerRequest: 0 });
    const redis = new Redis({ port: servers.ports().redis, host: '127.0.0.1', maxRetriesPerRequest: 0 });
    const big = `#!lua name=big\nredis.register_function('big', function() return ${JSON.stringify('x'.repeat(5000))} end)`;
    try {
      for (const c of [ours, redis]) assert.equal(await c.call('FUNCTION', 'FLUSH'), 'OK');
      for (const code of [LIB, big]) assert.ok(await redis.call('FUNCTION', 'LOAD', code));
      const fromRedis = (await redis.callBuffer('FUNCTION', 'DUMP')) as Buffer;
      assert.equal(await ours.call('FUNCTION', 'RESTORE', fromRedis), 'OK');
      const listed = async (c: Redis): Promise<unknown> => {
        // Libraries and their functions in a stable order (Redis lists them in its dicts' order).
        const libs = (await c.call('FUNCTION', 'LIST', 'WITHCODE')) as unknown[][];
        return libs.map((l) => JSON.stringify(l.map((v, i) => (l[i - 1] === 'functions' ? (v as unknown[]).map((f) => JSON.stringify(f)).sort() : v)))).sort();
      };
      assert.deepEqual(await listed(ours), await listed(redis));
      assert.equal(await ours.call('FCALL', 'big', '0'), 'x'.repeat(5000));
      assert.deepEqual(await ours.call('FCALL', 'echo', '1', 'k', 'v'), ['k', 'v']);
      const fromOurs = (await ours.callBuffer('FUNCTION', 'DUMP')) as Buffer;
      assert.equal(await redis.call('FUNCTION', 'FLUSH'), 'OK');
      assert.equal(await redis.call('FUNCTION', 'RESTORE', fromOurs), 'OK');
      assert.deepEqual(await listed(redis), await listed(ours));
      assert.deepEqual(await redis.call('FCALL', 'echo', '1', 'k', 'v'), ['k', 'v']);
    } finally {
      for (const c of [ours, redis]) {
        await c.call('FUNCTION', 'FLUSH');
        c.disconnect();
      }
    }
  });
});

/** A script that never returns: reads only, so it can be killed. */
const RUNAWAY = 'local i = 0 while true do i = i + 1 end';

async function waitFor<T>(what: string, f: () => Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('scripting: a runaway script', () => {
  let ours: TestServer;
  let redis: RedisServer;
  before(async () => {
    ours = await startOurs({ busy_reply_threshold_ms: 300 });
    redis = await startRedis(['--busy-reply-threshold', '300']);
  });
  after(async () => {
    await ours?.close();
    await redis?.stop();
  });

  for (const side of ['ours', 'redis-server'] as const) {
    it(`${side}: others get -BUSY, allow_busy commands run, SCRIPT KILL ends it, the server recovers`, async () => {
      const port = side === 'ours' ? ours.port : redis.port;
      const runner = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false });
      const other = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false });
      await runner.connect();
      await other.connect();
      try {
        const started = Date.now();
        const result = runner.eval(RUNAWAY, 0).then(
          () => 'returned',
          (err: Error) => err.message,
        );
        const busy = await waitFor('-BUSY', async () => {
          try {
            await other.get('k');
            return undefined;
          } catch (err) {
            return (err as Error).message;
          }
        });
        assert.equal(busy, 'BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.');
        assert.ok(Date.now() - started >= 250, 'not before the threshold');
        // FUNCTION STATS has allow_busy, yet answers -BUSY while an EVAL script runs (Redis 7.0).
        assert.equal(await other.call('FUNCTION', 'STATS').catch((e: Error) => e.message), 'BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.');
        assert.equal(await other.call('FUNCTION', 'KILL').catch((e: Error) => e.message), 'BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.');
        assert.equal(await other.call('SCRIPT', 'KILL'), 'OK');
        assert.match(await result, /^ERR Script killed by user with SCRIPT KILL\.\.\. script: [0-9a-f]{40}, on @user_script:1\.$/);
        assert.equal(await other.set('k', 'v'), 'OK');
        assert.equal(await runner.get('k'), 'v');
        assert.equal(await other.call('SCRIPT', 'KILL').catch((e: Error) => e.message), 'NOTBUSY No scripts in execution right now.');
      } finally {
        runner.disconnect();
        other.disconnect();
      }
    });

    it(`${side}: a script that has written is UNKILLABLE; it still ends when it returns`, async () => {
      const port = side === 'ours' ? ours.port : redis.port;
      const runner = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false });
      const other = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false });
      await runner.connect();
      await other.connect();
      try {
        // Writes, then spins a bounded loop of about 2 s on each engine (fengari runs ~12M, Redis'
        // Lua ~175M iterations/s here), then returns.
        const script = "redis.call('SET', KEYS[1], 'w') local n = 0 for i = 1, tonumber(ARGV[1]) do n = n + 1 end return 'done'";
        const iterations = side === 'ours' ? '25000000' : '350000000';
        const result = runner.eval(script, 1, 'wk', iterations).then(String, (e: Error) => e.message);
        await waitFor('-BUSY', async () => {
          try {
            await other.get('k');
            return undefined;
          } catch (err) {
            return (err as Error).message;
          }
        });
        assert.match(String(await other.call('SCRIPT', 'KILL').catch((e: Error) => e.message)), /^UNKILLABLE Sorry the script already executed write commands/);
        assert.equal(await result, 'done');
        assert.equal(await other.get('wk'), 'w');
      } finally {
        runner.disconnect();
        other.disconnect();
      }
    });
  }
});

describe('scripting: safety and persistence', () => {
  it('a script allocating without limit gets an error; the server stays up', async () => {
    const ours = await startOurs();
    const c = new Redis({ port: ours.port, host: '127.0.0.1', maxRetriesPerRequest: 0 });
    try {
      const err = await c
        .eval("local t = {} local s = string.rep('x', 256 * 1024) for i = 1, 100000 do t[i] = s .. i end return #t", 0)
        .then(() => null, (e: Error) => e.message);
      // From the count hook, or (with the script's position) from the allocation guard.
      assert.match(String(err), /^ERR (user_script:1: )?Script used more memory than the scripting memory limit/);
      assert.equal(await c.eval('return 1', 0), 1);
    } finally {
      c.disconnect();
      await ours.close();
    }
  });

  it('one huge allocation is refused before it exists: the server stays up, serves others, and RSS stays bounded', async () => {
    const child = await spawnOurs(['--data-dir', join(tempDir(), 'data')]);
    const pid = child.proc.pid!;
    const c = new Redis({ port: child.port, host: '127.0.0.1', maxRetriesPerRequest: 0 });
    const other = new Redis({ port: child.port, host: '127.0.0.1', maxRetriesPerRequest: 0 });
    const big = "local s = ('x'):rep(2^26) ";
    const attacks = [
      "return #string.rep('x', 2^31 - 1)",
      "return #('x'):rep(1e9)",
      "local s = ('x'):rep(2^20) local t = {} for i = 1, 1000 do t[i] = s end return #table.concat(t)",
      "local s = 'x' for i = 1, 40 do s = s .. s end return #s",
      big + 'return #(s..s..s..s..s..s..s..s..s..s)',
      big + "return #string.format('%s%s%s%s%s%s', s, s, s, s, s, s)",
      "return #string.gsub(('x'):rep(2^12), 'x', {x = ('y'):rep(2^17)})",
      big + 'return #cjson.encode({s, s, s, s, s, s})',
      big + 'return #cmsgpack.pack(s, s, s, s, s, s)',
      big + "return #struct.pack('c67108864c67108864c67108864c67108864c67108864', s, s, s, s, s)",
      "local f = coroutine.wrap(function() local s = 'x' for i = 1, 40 do s = s .. s end end) f()",
    ];
    try {
      assert.equal(await c.eval('return 1', 0), 1);
      const base = procMemory(pid).rss;
      for (const script of attacks) {
        const err = await c.eval(script, 0).then((r) => `replied ${String(r)}`, (e: Error) => e.message);
        assert.match(err, /^ERR (user_script:1: )*Script used more memory than the scripting memory limit \(not enough memory\) script: /, script);
        assert.equal(await other.ping(), 'PONG');
        const peak = procMemory(pid).peak;
        // The limit (256 MiB of growth) plus at most one refused-size step and V8's slack.
        assert.ok(peak - base < 576 * MiB, `${script}: peak ${mib(peak)} over a base of ${mib(base)}`);
      }
      // Strings within the budget still work, and pcall sees the error as Lua code would.
      assert.equal(await c.eval("return #('x'):rep(2^24) + #table.concat({('y'):rep(2^20), ('z'):rep(2^20)})", 0), 2 ** 24 + 2 ** 21);
      assert.deepEqual(await c.eval("local ok, e = pcall(function() local s = 'x' for i = 1, 40 do s = s .. s end end) return {tostring(ok), e}", 0), [
        'false',
        'user_script:1: Script used more memory than the scripting memory limit (not enough memory)',
      ]);
    } finally {
      c.disconnect();
      other.disconnect();
      child.proc.kill('SIGTERM');
      await child.exited;
    }
  });

  it('FUNCTION LOAD libraries survive a restart (functions.json, mode 0600); FUNCTION DUMP/RESTORE round-trips', async () => {
    const dir = tempDir();
    let ours = await startOurs({ data_dir: dir });
    let c = new Redis({ port: ours.port, host: '127.0.0.1', maxRetriesPerRequest: 0 });
    let dump: Buffer;
    try {
      assert.equal(await c.call('FUNCTION', 'LOAD', LIB), 'mylib');
      dump = (await c.callBuffer('FUNCTION', 'DUMP')) as Buffer;
    } finally {
      c.disconnect();
      await ours.close();
    }
    assert.equal(statSync(join(dir, 'functions.json')).mode & 0o777, 0o600);
    ours = await startOurs({ data_dir: dir });
    c = new Redis({ port: ours.port, host: '127.0.0.1', maxRetriesPerRequest: 0 });
    try {
      assert.deepEqual(await c.call('FCALL', 'echo', '1', 'a', 'b'), ['a', 'b']);
      assert.equal(await c.call('FUNCTION', 'FLUSH'), 'OK');
      assert.equal(await c.call('FCALL', 'echo', '0').catch((e: Error) => e.message), 'ERR Function not found');
      assert.equal(await c.call('FUNCTION', 'RESTORE', dump), 'OK');
      assert.deepEqual(await c.call('FCALL', 'echo', '1', 'a', 'b'), ['a', 'b']);
      assert.equal(await c.call('FUNCTION', 'RESTORE', dump).catch((e: Error) => e.message), 'ERR Library mylib already exists');
      assert.equal(await c.call('FUNCTION', 'RESTORE', Buffer.from('junk')).catch((e: Error) => e.message), 'ERR DUMP payload version or checksum are wrong');
    } finally {
      c.disconnect();
      await ours.close();
    }
  });

  it('a script sees its own writes at once and replies after they commit, in every write mode', async () => {
    for (const overrides of [{ async_write: false }, { async_write: true }, { storage_compression: { enabled: true, algorithm: 'zstd' } }]) {
      const ours = await startOurs(overrides);
      const c = new Redis({ port: ours.port, host: '127.0.0.1', maxRetriesPerRequest: 0 });
      try {
        // A value large enough to decode off the loop outside scripts (compressed above 32 KiB).
        const big = 'abc'.repeat(100_000);
        await c.set('big', big);
        const script = "redis.call('SET', KEYS[1], ARGV[1]) redis.call('APPEND', KEYS[1], 'x') return {redis.call('GET', KEYS[1]), string.len(redis.call('GET', 'big'))}";
        assert.deepEqual(await c.eval(script, 1, 'k', 'v'), ['vx', big.length]);
        assert.equal(await c.get('k'), 'vx');
      } finally {
        c.disconnect();
        await ours.close();
      }
    }
  });
});

describe('scripting: redis.log', () => {
  it('writes to the server log at the mapped level, filtered by loglevel as Redis does', async () => {
    const lines: { level: number; msg: string; source?: string }[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const l of chunk.toString('utf8').split('\n')) if (l !== '') lines.push(JSON.parse(l) as (typeof lines)[number]);
        done();
      },
    });
    const dataDir = tempDir();
    const config = configSchema.parse({ addr: '127.0.0.1:0', data_dir: dataDir, log_level: 'info' });
    const ours = await startServer(config, pino({ level: 'info' }, sink));
    const c = new Redis({ port: ours.port, host: '127.0.0.1', maxRetriesPerRequest: 0 });
    const script = "redis.log(redis.LOG_DEBUG, 'd', ARGV[1]) redis.log(redis.LOG_VERBOSE, 'v', ARGV[1]) " +
      "redis.log(redis.LOG_NOTICE, 'n', ARGV[1]) redis.log(redis.LOG_WARNING, 'w', 42, ARGV[1]) return 1";
    const logged = (tag: string): [number, string][] => lines.filter((l) => l.source === 'script' && l.msg.endsWith(tag)).map((l) => [l.level, l.msg]);
    try {
      assert.equal(await c.config('GET', 'loglevel').then((r) => (r as string[])[1]), 'notice');
      assert.equal(await c.eval(script, 0, 'first'), 1);
      // pino's levels: trace 10, debug 20, info 30, warn 40 (Redis' debug, verbose, notice, warning).
      assert.deepEqual(logged('first'), [[30, 'n first'], [40, 'w 42 first']]);
      assert.equal(await c.config('SET', 'loglevel', 'debug'), 'OK');
      assert.equal(await c.eval(script, 0, 'second'), 1);
      assert.deepEqual(logged('second'), [[10, 'd second'], [20, 'v second'], [30, 'n second'], [40, 'w 42 second']]);
      assert.equal(await c.config('SET', 'loglevel', 'warning'), 'OK');
      assert.equal(await c.fcall('nosuch', 0).catch((e: Error) => e.message), 'ERR Function not found');
      await c.call('FUNCTION', 'LOAD', "#!lua name=logs\nredis.log(redis.LOG_WARNING, 'loading third')\nredis.register_function('f', function() return 1 end)");
      assert.deepEqual(logged('third'), [[40, 'loading third']]);
    } finally {
      c.disconnect();
      await ours.close();
    }
  });
});

describe('scripting: client libraries', () => {
  let ours: TestServer;
  let redis: RedisServer;
  before(async () => {
    ours = await startOurs();
    redis = await startRedis();
  });
  after(async () => {
    await ours?.close();
    await redis?.stop();
  });

  /** Acquire, a contended acquire, extend, release, re-acquire: what each step gave. */
  async function redlockStory(port: number): Promise<string[]> {
    const client = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 0 });
    const redlock = new Redlock([client], { retryCount: 0 });
    const out: string[] = [];
    try {
      const lock = await redlock.lock('locks:res', 2000);
      out.push(`locked ${typeof lock.value}`);
      out.push(await redlock.lock('locks:res', 2000).then(() => 'second lock granted', () => 'second lock refused'));
      const extended = await lock.extend(5000);
      out.push(`extended ttl>2000: ${(await client.pttl('locks:res')) > 2000}`);
      await extended.unlock();
      out.push(`after unlock: ${await client.exists('locks:res')}`);
      const again = await redlock.lock('locks:res', 1000);
      out.push('locked again');
      await again.unlock();
    } finally {
      client.disconnect();
    }
    return out;
  }

  it('redlock: lock, contention, extend, unlock as against redis-server', async () => {
    const expected = await redlockStory(redis.port);
    assert.deepEqual(expected, ['locked string', 'second lock refused', 'extended ttl>2000: true', 'after unlock: 0', 'locked again']);
    assert.deepEqual(await redlockStory(ours.port), expected);
  });

  const PY_LOCK = `
import sys, redis
r = redis.Redis(host='127.0.0.1', port=int(sys.argv[1]))
out = []
lock = r.lock('pylock', timeout=5)
out.append(lock.acquire(blocking=False))
other = r.lock('pylock', timeout=5)
out.append(other.acquire(blocking=False))
out.append(lock.extend(10))
out.append(r.pttl('pylock') > 5000)
out.append(lock.reacquire())
try:
    other.release()
    out.append('released by other')
except redis.exceptions.LockError as e:
    out.append(type(e).__name__)
lock.release()
out.append(r.exists('pylock'))
try:
    lock.extend(1)
except redis.exceptions.LockError as e:
    out.append(type(e).__name__)
print(repr(out))
`;

  it("redis-py lock(): acquire, extend, reacquire, release as against redis-server", async () => {
    const story = async (port: number): Promise<string> =>
      (await run('/usr/bin/python3', ['-c', PY_LOCK, String(port)], { timeout: 30_000 })).stdout.trim();
    const expected = await story(redis.port);
    assert.equal(expected, "[True, False, True, True, True, 'LockError', 0, 'LockError']");
    assert.equal(await story(ours.port), expected);
  });
});
