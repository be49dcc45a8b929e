/**
 * Malformed input: each case gets Redis' protocol error and its connection is closed, while a
 * second client on the same server keeps being served. The error text is compared with a real
 * redis-server where Redis frames the same bytes the same way.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { RawClient, resp } from '../helpers/raw.js';
import { startOurs, startRedis, type RedisServer, type TestServer } from '../helpers/servers.js';

const SAME_AS_REDIS: Record<string, string> = {
  'non-numeric multibulk length': '*abc\r\n',
  'multibulk length too large': '*99999999999\r\n',
  'bulk expected, simple string given': '*1\r\n+PING\r\n',
  'negative bulk length': '*1\r\n$-5\r\n',
  'non-numeric bulk length': '*1\r\n$abc\r\n',
  'huge bulk length': '*2\r\n$3\r\nGET\r\n$999999999999\r\n',
  'unbalanced quotes inline': 'SET "a b\r\n',
  'mbulk count line too long': `*${'1'.repeat(70 * 1024)}`,
  'inline request too long': 'x'.repeat(70 * 1024),
};

async function errorFor(port: number, bytes: string): Promise<string> {
  const c = await RawClient.connect(port);
  c.write(bytes);
  const out = await c.untilClosed();
  c.destroy();
  return out;
}

describe('malformed input', () => {
  let ours: TestServer;
  let redis: RedisServer;
  let bystander: RawClient;
  before(async () => {
    ours = await startOurs();
    redis = await startRedis();
    bystander = await RawClient.connect(ours.port);
    bystander.write(resp('SET', 'bystander', 'still-here'));
    assert.equal(await bystander.reply(), '+OK\r\n');
  });
  after(async () => {
    bystander.destroy();
    await ours.close();
    await redis.stop();
  });

  async function bystanderStillServed(): Promise<void> {
    bystander.write(resp('GET', 'bystander'));
    assert.equal(await bystander.reply(), '$10\r\nstill-here\r\n');
  }

  for (const [name, bytes] of Object.entries(SAME_AS_REDIS)) {
    it(`${name}: same error as redis-server, connection closed`, async () => {
      const expected = await errorFor(redis.port, bytes);
      const actual = await errorFor(ours.port, bytes);
      assert.match(actual, /^-ERR Protocol error: /);
      assert.equal(actual, expected);
      await bystanderStillServed();
    });
  }

  it('commands before the bad bytes are answered first', async () => {
    const bytes = `${resp('SET', 'a', '1').toString()}${resp('GET', 'a').toString()}*1\r\n$x\r\n`;
    assert.equal(await errorFor(ours.port, bytes), '+OK\r\n$1\r\n1\r\n-ERR Protocol error: invalid bulk length\r\n');
    await bystanderStillServed();
  });

  it('missing CRLF after a bulk payload is an error, not a desync', async () => {
    const actual = await errorFor(ours.port, '*1\r\n$4\r\nPINGxx');
    assert.equal(actual, "-ERR Protocol error: expected '\\r\\n' after bulk data\r\n");
    await bystanderStillServed();
  });

  it('a bare LF after a length is an error', async () => {
    const actual = await errorFor(ours.port, '*1\r\n$4\nPING\r\n');
    assert.match(actual, /^-ERR Protocol error: /);
    await bystanderStillServed();
  });

  it('unterminated input then disconnect leaves the server serving', async () => {
    for (const partial of ['*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100\r\nabc', '*2\r\n$3\r\nGE', 'PIN']) {
      const c = await RawClient.connect(ours.port);
      c.write(partial);
      await new Promise((r) => setTimeout(r, 20));
      c.destroy();
    }
    await bystanderStillServed();
    const c = await RawClient.connect(ours.port);
    c.write(resp('EXISTS', 'k'));
    assert.equal(await c.reply(), ':0\r\n', 'a half-sent SET must not have executed');
    c.destroy();
  });

  it('a bulk above proto_max_bulk_len is refused before it is read', async () => {
    const small = await startOurs({ proto_max_bulk_len: 1024 * 1024 });
    try {
      const actual = await errorFor(small.port, `*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$${1024 * 1024 + 1}\r\n`);
      assert.equal(actual, '-ERR Protocol error: invalid bulk length\r\n');
    } finally {
      await small.close();
    }
  });

  it('more arguments than max_args is refused', async () => {
    const small = await startOurs({ max_args: 10 });
    try {
      assert.equal(await errorFor(small.port, '*11\r\n'), '-ERR Protocol error: invalid multibulk length\r\n');
    } finally {
      await small.close();
    }
  });
});
