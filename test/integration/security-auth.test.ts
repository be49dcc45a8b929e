/**
 * requirepass, AUTH and HELLO … AUTH: every reply Redis defines is compared byte for byte with a
 * real redis-server started with the same password; the NOAUTH gate is checked for every command
 * in the command table; and the real clients (redis-cli, ioredis, node-redis, redis-py) log in.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { createClient } from 'redis';
import { commandTable } from '../../src/commands/table.js';
import type { CommandSpec } from '../../src/commands/types.js';
import { PasswordAuthenticator } from '../../src/server/security.js';
import { python, redisCli } from '../helpers/cli.js';
import { RawClient, resp } from '../helpers/raw.js';
import { startOurs, startRedis, type RedisServer, type TestServer } from '../helpers/servers.js';

const PASSWORD = 'pw';

/** Sends `bytes` on a fresh connection; returns `n` replies, or everything until close when n is 'close'. */
async function talk(port: number, bytes: Buffer | string, n: number | 'close'): Promise<string> {
  const c = await RawClient.connect(port);
  try {
    c.write(bytes);
    return n === 'close' ? await c.untilClosed() : (await c.replies(n)).join('');
  } finally {
    c.destroy();
  }
}

const cat = (...parts: Buffer[]): Buffer => Buffer.concat(parts);

/** Exchanges whose replies must match redis-server --requirepass pw exactly. */
const WITH_PASSWORD: ReadonlyArray<readonly [string, Buffer | string, number | 'close']> = [
  ['a command before AUTH', resp('GET', 'k'), 1],
  ['PING before AUTH', resp('PING'), 1],
  ['a subcommand before AUTH', resp('CLIENT', 'ID'), 1],
  ['COMMAND before AUTH', resp('COMMAND', 'INFO', 'get'), 1],
  ['an unknown command before AUTH', resp('NOSUCH', 'a'), 1],
  ['an unknown subcommand before AUTH', resp('CLIENT', 'FOO'), 1],
  ['wrong arity before AUTH', resp('GET'), 1],
  ['AUTH without arguments', resp('AUTH'), 1],
  ['AUTH with too many arguments', resp('AUTH', 'a', 'b', 'c'), 1],
  ['AUTH wrong password', resp('AUTH', 'wrong'), 1],
  ['AUTH default wrong password', resp('AUTH', 'default', 'wrong'), 1],
  ['AUTH with an unknown user', resp('AUTH', 'bob', PASSWORD), 1],
  ['AUTH user names are case-sensitive', resp('AUTH', 'DEFAULT', PASSWORD), 1],
  ['a password that differs only in length', resp('AUTH', `${PASSWORD}${PASSWORD}`), 1],
  ['AUTH password then a command', cat(resp('AUTH', PASSWORD), resp('GET', 'nokey')), 2],
  ['AUTH default password then a command', cat(resp('AUTH', 'default', PASSWORD), resp('PING')), 2],
  ['a failed AUTH after a good one keeps the client logged in', cat(resp('AUTH', PASSWORD), resp('AUTH', 'bad'), resp('PING')), 3],
  ['NOAUTH, then AUTH, then the same command', cat(resp('ECHO', 'x'), resp('AUTH', PASSWORD), resp('ECHO', 'x')), 3],
  ['inline AUTH', 'AUTH pw\r\nPING\r\n', 2],
  ['HELLO before AUTH', resp('HELLO'), 1],
  ['HELLO 3 before AUTH', resp('HELLO', '3'), 1],
  ['HELLO 3 SETNAME before AUTH', resp('HELLO', '3', 'SETNAME', 'x'), 1],
  ['HELLO with a wrong password', resp('HELLO', '3', 'AUTH', 'default', 'wrong'), 1],
  ['HELLO with an unknown user', resp('HELLO', '2', 'AUTH', 'bob', PASSWORD), 1],
  ['HELLO AUTH missing the password', resp('HELLO', '3', 'AUTH', 'default'), 1],
  ['HELLO with a bad protocol version', resp('HELLO', '4', 'AUTH', 'default', PASSWORD), 1],
  ['QUIT before AUTH', resp('QUIT'), 'close'],
  ['COMMAND INFO of the no_auth commands', cat(resp('AUTH', PASSWORD), resp('COMMAND', 'INFO', 'auth', 'hello', 'quit')), 2],
  // Redis bounds what an unauthenticated client can make it buffer.
  ['more than 10 arguments before AUTH', '*11\r\n', 'close'],
  ['a bulk over 16 KiB before AUTH, sent whole', cat(Buffer.from('*2\r\n$4\r\nECHO\r\n$20000\r\n'), Buffer.alloc(20000, 'x'), Buffer.from('\r\n')), 'close'],
  ['a bulk over 16 KiB before AUTH, header only', '*2\r\n$4\r\nECHO\r\n$20000\r\n', 'close'],
  ['commands before the oversized one are answered first', cat(resp('PING'), Buffer.from('*12\r\n')), 'close'],
  ['a whole command with 11 arguments before AUTH', resp('EXISTS', ...Array.from({ length: 10 }, (_, i) => `k${i}`)), 'close'],
  ['a whole unknown command with 11 arguments before AUTH', resp('NOSUCH', ...Array.from({ length: 10 }, (_, i) => `k${i}`)), 'close'],
  ['a long password before AUTH', resp('AUTH', Buffer.alloc(17000, 'p')), 'close'],
  ['nothing after an oversized command runs', cat(resp('PING'), resp('ECHO', Buffer.alloc(17000, 'z')), resp('AUTH', PASSWORD), resp('PING')), 'close'],
  ['a big command pipelined right after AUTH is fine', cat(resp('AUTH', PASSWORD), resp('ECHO', Buffer.alloc(20000, 'y'))), 2],
  ['many arguments pipelined right after AUTH are fine', cat(resp('AUTH', PASSWORD), resp('EXISTS', ...Array.from({ length: 20 }, (_, i) => `k${i}`))), 2],
];

/** Exchanges whose replies must match a redis-server with no password. */
const WITHOUT_PASSWORD: ReadonlyArray<readonly [string, Buffer | string, number | 'close']> = [
  ['AUTH password with no password set', resp('AUTH', 'x'), 1],
  ['AUTH default with any password', resp('AUTH', 'default', 'x'), 1],
  ['AUTH with an unknown user', resp('AUTH', 'bob', 'x'), 1],
  ['HELLO AUTH with an unknown user', resp('HELLO', '3', 'AUTH', 'bob', 'x'), 1],
  ['no limits on argument counts without a password', resp('EXISTS', ...Array.from({ length: 20 }, (_, i) => `k${i}`)), 1],
];

/** A HELLO map with the fields that differ between servers (version, id) masked. */
function maskHello(reply: string): string {
  return reply.replace(/\$7\r\nversion\r\n\$\d+\r\n[^\r]*\r\n/, 'version=*').replace(/\$2\r\nid\r\n:\d+\r\n/, 'id=*');
}

describe('AUTH with requirepass, compared with redis-server', () => {
  let ours: TestServer;
  let redis: RedisServer;
  before(async () => {
    ours = await startOurs({ requirepass: PASSWORD });
    redis = await startRedis(['--requirepass', PASSWORD]);
  });
  after(async () => {
    await ours.close();
    await redis.stop();
  });

  for (const [name, bytes, n] of WITH_PASSWORD) {
    it(name, async () => {
      const [expected, actual] = await Promise.all([talk(redis.port, bytes, n), talk(ours.port, bytes, n)]);
      assert.equal(actual, expected);
    });
  }

  it('HELLO 3 AUTH logs in and switches protocol, as redis-server does', async () => {
    const bytes = cat(resp('HELLO', '3', 'AUTH', 'default', PASSWORD, 'SETNAME', 'me'), resp('CLIENT', 'GETNAME'), resp('GET', 'nokey'));
    const [expected, actual] = await Promise.all([talk(redis.port, bytes, 3), talk(ours.port, bytes, 3)]);
    assert.match(actual, /^%7\r\n\$6\r\nserver\r\n/);
    assert.equal(maskHello(actual), maskHello(expected));
  });

  it('every command without the no_auth flag answers NOAUTH; AUTH, HELLO, QUIT and RESET do not', async () => {
    const c = await RawClient.connect(ours.port);
    // One request per command (and subcommand), with as many arguments as its arity asks for.
    const specs: CommandSpec[] = [];
    for (const spec of commandTable.all) {
      if (spec.subcommands !== undefined) specs.push(...spec.subcommands);
      else specs.push(spec);
    }
    const gated = specs.filter((s) => !s.flags.includes('no_auth') && s.name !== 'quit');
    assert.ok(gated.length >= 15, `only ${gated.length} commands in the table?`);
    for (const spec of gated) {
      const words = spec.name.split('|');
      while (words.length < Math.abs(spec.arity)) words.push('x');
      c.write(resp(...words));
      assert.equal(await c.reply(), '-NOAUTH Authentication required.\r\n', `${spec.name} ran without AUTH`);
    }
    const open = specs.filter((s) => s.flags.includes('no_auth')).map((s) => s.name).sort();
    assert.deepEqual(open, ['auth', 'hello', 'quit', 'reset']);
    // Nothing gated changed the data: log in and look.
    c.write(cat(resp('AUTH', PASSWORD), resp('DBSIZE')));
    assert.deepEqual(await c.replies(2), ['+OK\r\n', ':0\r\n']);
    // RESET logs the connection out again, as in Redis.
    c.write(cat(resp('RESET'), resp('DBSIZE')));
    assert.deepEqual(await c.replies(2), ['+RESET\r\n', '-NOAUTH Authentication required.\r\n']);
    c.destroy();
  });

  it('redis-cli -a, ioredis, node-redis and redis-py log in with the password', async () => {
    const cli = await redisCli(ours.port, ['-a', PASSWORD, '--no-auth-warning', 'SET', 'cli', 'v1']);
    assert.equal(cli.trim(), 'OK');
    const noPass = await redisCli(ours.port, ['GET', 'cli']);
    assert.match(noPass, /NOAUTH Authentication required/);

    const io = new Redis({ host: '127.0.0.1', port: ours.port, password: PASSWORD, lazyConnect: true, maxRetriesPerRequest: 0 });
    await io.connect();
    assert.equal(await io.get('cli'), 'v1');
    await io.set('io', Buffer.from([0, 1, 2]));
    io.disconnect();

    const ioUser = new Redis({ host: '127.0.0.1', port: ours.port, username: 'default', password: PASSWORD, lazyConnect: true });
    await ioUser.connect();
    assert.deepEqual(await ioUser.getBuffer('io'), Buffer.from([0, 1, 2]));
    ioUser.disconnect();

    for (const RESP of [2, 3] as const) {
      const nr = createClient({ socket: { host: '127.0.0.1', port: ours.port, reconnectStrategy: false }, password: PASSWORD, RESP });
      await nr.connect();
      assert.equal(await nr.get('cli'), 'v1');
      await nr.quit();
    }

    const py = await python(
      `import redis, os\nr = redis.Redis(host="127.0.0.1", port=int(os.environ["PORT"]), password="${PASSWORD}")\nprint(r.get("cli").decode())`,
      { PORT: String(ours.port) },
    );
    assert.equal(py.trim(), 'v1');
  });

  it('a wrong password fails the client with WRONGPASS', async () => {
    const io = new Redis({ host: '127.0.0.1', port: ours.port, password: 'nope', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    const ioError = new Promise<Error>((resolve) => io.once('error', resolve));
    io.connect().catch(() => {});
    assert.match((await ioError).message, /WRONGPASS invalid username-password pair or user is disabled/);
    io.disconnect();

    const nr = createClient({ socket: { host: '127.0.0.1', port: ours.port, reconnectStrategy: false }, password: 'nope' });
    nr.on('error', () => {});
    await assert.rejects(nr.connect(), /WRONGPASS/);

    const py = await python(
      `import redis, os\nr = redis.Redis(host="127.0.0.1", port=int(os.environ["PORT"]), password="nope")\ntry:\n  r.ping()\nexcept redis.exceptions.ResponseError as e:\n  print("auth error:", e)`,
      { PORT: String(ours.port) },
    );
    assert.match(py, /^auth error: .*invalid username-password pair/);
  });
});

describe('AUTH without requirepass, compared with redis-server', () => {
  let ours: TestServer;
  let redis: RedisServer;
  before(async () => {
    ours = await startOurs();
    redis = await startRedis();
  });
  after(async () => {
    await ours.close();
    await redis.stop();
  });

  for (const [name, bytes, n] of WITHOUT_PASSWORD) {
    it(name, async () => {
      const [expected, actual] = await Promise.all([talk(redis.port, bytes, n), talk(ours.port, bytes, n)]);
      assert.equal(actual, expected);
    });
  }

  it('HELLO AUTH default with any password works, as in redis-server', async () => {
    const bytes = resp('HELLO', '3', 'AUTH', 'default', 'anything');
    const [expected, actual] = await Promise.all([talk(redis.port, bytes, 1), talk(ours.port, bytes, 1)]);
    assert.equal(maskHello(actual), maskHello(expected));
  });
});

describe('PasswordAuthenticator', () => {
  const user = Buffer.from('default');
  it('compares whole passwords: prefixes, extensions, NUL bytes and case all fail', () => {
    const auth = new PasswordAuthenticator('s3cret\u00e9');
    assert.equal(auth.required, true);
    assert.equal(auth.verify(user, Buffer.from('s3cret\u00e9', 'utf8')), true);
    for (const wrong of ['', 's3cret', 's3cret\u00e9x', 'S3CRET\u00e9', 's3cret\u00e9\0', 'x'.repeat(100_000)]) {
      assert.equal(auth.verify(user, Buffer.from(wrong, 'utf8')), false, JSON.stringify(wrong.slice(0, 20)));
    }
    assert.equal(auth.verify(Buffer.from('other'), Buffer.from('s3cret\u00e9', 'utf8')), false);
  });

  it('without a password, the default user takes any password and other users none', () => {
    const auth = new PasswordAuthenticator(null);
    assert.equal(auth.required, false);
    assert.equal(auth.verify(user, Buffer.from('whatever')), true);
    assert.equal(auth.verify(Buffer.from('bob'), Buffer.from('whatever')), false);
  });

  it('an empty requirepass means no password, as in Redis', () => {
    const auth = new PasswordAuthenticator('');
    assert.equal(auth.required, false);
    assert.equal(auth.verify(user, Buffer.from('x')), true);
  });
});
