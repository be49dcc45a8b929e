/**
 * Protected mode. The address rule is a pure function, tested on its own. The whole path is tested
 * honestly on loopback: Redis 7.0 counts only 127.0.0.1 and ::1 as local, so a client connecting
 * from 127.0.0.2 is a "non-loopback" peer to redis-server — and to us, by the same rule. Both
 * servers are reached from 127.0.0.2 and must answer with the same bytes.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { isLoopbackAddress, protectedModeRefuses } from '../../src/server/security.js';
import { resp } from '../helpers/raw.js';
import { startOurs, startRedis, type RedisServer, type TestServer } from '../helpers/servers.js';

/** Connects from `from`, sends `bytes`, returns everything received until the server closes or `waitMs` passes. */
function exchange(port: number, from: string, bytes: Buffer, waitMs = 1500): Promise<{ data: string; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const s = connect({ port, host: '127.0.0.1', localAddress: from });
    let data = '';
    const done = (closed: boolean): void => {
      clearTimeout(timer);
      s.destroy();
      resolve({ data, closed });
    };
    const timer = setTimeout(() => done(false), waitMs);
    s.on('connect', () => s.write(bytes));
    s.on('data', (d: Buffer) => (data += d.toString('latin1')));
    s.on('close', () => done(true));
    s.on('error', (err: NodeJS.ErrnoException) => {
      // A reset after the refusal line still counts as closed; anything before connecting is a failure.
      if (data.length > 0) done(true);
      else reject(err);
    });
  });
}

describe('isLoopbackAddress / protectedModeRefuses (pure)', () => {
  it('only 127.0.0.1 and ::1 are loopback, as in Redis 7.0, also in IPv4-mapped form', () => {
    for (const a of ['127.0.0.1', '::1', '::ffff:127.0.0.1']) assert.equal(isLoopbackAddress(a), true, a);
    for (const a of ['127.0.0.2', '127.1.2.3', '::ffff:127.0.0.2', '10.0.0.1', '192.0.2.2', '::ffff:10.0.0.1', 'fd00::2', 'fe80::1', '0.0.0.0', '::', '', undefined]) {
      assert.equal(isLoopbackAddress(a), false, String(a));
    }
  });

  it('refuses only when protected mode is on, no password is set and the peer is not loopback', () => {
    assert.equal(protectedModeRefuses(true, false, '10.0.0.1'), true);
    assert.equal(protectedModeRefuses(true, false, undefined), true);
    assert.equal(protectedModeRefuses(true, true, '10.0.0.1'), false);
    assert.equal(protectedModeRefuses(false, false, '10.0.0.1'), false);
    assert.equal(protectedModeRefuses(true, false, '127.0.0.1'), false);
    assert.equal(protectedModeRefuses(true, false, '::1'), false);
  });
});

describe('protected mode over TCP, compared with redis-server', () => {
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

  it('a peer at 127.0.0.2 gets Redis\' -DENIED text and is closed, before any command runs', async () => {
    const bytes = Buffer.concat([resp('SET', 'k', 'v'), resp('PING')]);
    const [expected, actual] = await Promise.all([exchange(redis.port, '127.0.0.2', bytes), exchange(ours.port, '127.0.0.2', bytes)]);
    assert.equal(expected.closed, true);
    assert.match(expected.data, /^-DENIED Redis is running in protected mode/);
    assert.equal(actual.data, expected.data);
    assert.equal(actual.closed, true);
    // The SET never ran.
    const check = await exchange(ours.port, '127.0.0.1', resp('EXISTS', 'k'), 300);
    assert.equal(check.data, ':0\r\n');
  });

  it('a peer at 127.0.0.1 is served', async () => {
    const r = await exchange(ours.port, '127.0.0.1', resp('PING'), 300);
    assert.equal(r.data, '+PONG\r\n');
  });

  it('the refusal is counted in INFO stats rejected_connections', async () => {
    await exchange(ours.port, '127.0.0.2', Buffer.alloc(0));
    const r = await exchange(ours.port, '127.0.0.1', resp('INFO', 'stats'), 500);
    assert.match(r.data, /rejected_connections:[1-9]/);
  });
});

describe('protected mode is off with a password or protected_mode = false', () => {
  let withPassword: TestServer;
  let unprotected: TestServer;
  before(async () => {
    withPassword = await startOurs({ requirepass: 'pw' });
    unprotected = await startOurs({ protected_mode: false });
  });
  after(async () => {
    await withPassword.close();
    await unprotected.close();
  });

  it('with requirepass, a 127.0.0.2 peer is let in and must AUTH', async () => {
    const bytes = Buffer.concat([resp('PING'), resp('AUTH', 'pw'), resp('PING')]);
    const r = await exchange(withPassword.port, '127.0.0.2', bytes, 300);
    assert.equal(r.data, '-NOAUTH Authentication required.\r\n+OK\r\n+PONG\r\n');
    assert.equal(r.closed, false);
  });

  it('with protected_mode = false, a 127.0.0.2 peer is served', async () => {
    const r = await exchange(unprotected.port, '127.0.0.2', resp('PING'), 300);
    assert.equal(r.data, '+PONG\r\n');
    assert.equal(r.closed, false);
  });
});
