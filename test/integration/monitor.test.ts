/** MONITOR's feed compared with redis-server's: same lines once timestamps and client ports are masked. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { compareServersForSuite, type Cmd } from '../helpers/compare.js';
import { RawClient, resp } from '../helpers/raw.js';

/** `+1700000000.123456 [0 127.0.0.1:54321] "set" …` → `+T [0 ADDR] "set" …` */
function masked(line: string): string {
  return line.replace(/^\+\d+\.\d{6} \[0 127\.0\.0\.1:\d+\] /, '+T [0 ADDR] ');
}

const SESSION: Cmd[] = [
  ['SET', 'k', 'v'],
  ['GET', 'k'],
  ['SET', Buffer.from('bin\x00"\\\n\r\t\x07\x08\xff', 'latin1'), 'x'],
  ['AUTH', 'secret'],
  ['AUTH', 'someone', 'secret'],
  ['AUTH', 'a', 'b', 'c'],
  ['HELLO', '2', 'AUTH', 'default', 'anything', 'SETNAME', 'me'],
  ['HELLO', '2', 'AUTH', 'nobody', 'pw', 'AUTH', 'x', 'y'],
  ['HELLO', 'x', 'AUTH', 'u', 'p'],
  ['NOSUCH', 'command'],
  ['GET'],
  ['CONFIG', 'GET', 'maxclients'],
  ['CLIENT', 'LIST'],
  ['CLIENT', 'ID'],
  ['MULTI'],
  ['SET', 'k', 'w'],
  ['NOSUCH'],
  ['EXEC'],
  ['MULTI'],
  ['SET', 'k', 'w'],
  ['INFO', 'server'],
  ['EXEC'],
  ['PING'],
];

async function feed(port: number): Promise<{ monitor: string[]; own: string[] }> {
  const mon = await RawClient.connect(port);
  const client = await RawClient.connect(port);
  try {
    mon.write(resp('MONITOR'));
    const first = await mon.reply();
    for (const cmd of SESSION) {
      client.write(resp(...cmd));
      await client.reply();
    }
    // A marker that ends the feed we compare.
    client.write(resp('ECHO', '__end__'));
    await client.reply();
    const lines = [first];
    for (;;) {
      const line = masked(await mon.reply());
      lines.push(line);
      if (line.includes('"__end__"')) break;
    }
    // What a monitor may still do itself: not touch the keyspace.
    const own: string[] = [];
    for (const cmd of [['GET', 'k'], ['SET', 'k', 'x'], ['PING'], ['MONITOR'], ['ECHO', 'e']] as Cmd[]) mon.write(resp(...cmd));
    own.push(...(await mon.replies(5)).map(masked));
    return { monitor: lines, own };
  } finally {
    mon.destroy();
    client.destroy();
  }
}

describe('MONITOR against redis-server', () => {
  const servers = compareServersForSuite();

  it('feeds the same lines (AUTH and HELLO credentials redacted, admin commands left out)', async () => {
    const { ours, redis } = servers.ports();
    const expected = await feed(redis);
    const actual = await feed(ours);
    assert.deepEqual(actual.monitor, expected.monitor);
    assert.deepEqual(actual.own, expected.own);
    // The redaction is there at all (not just equal).
    assert.ok(actual.monitor.includes('+T [0 ADDR] "AUTH" "(redacted)" "(redacted)"\r\n'), actual.monitor.join(''));
  });

  it('RESET leaves monitor mode', async () => {
    for (const port of [servers.ports().redis, servers.ports().ours]) {
      const mon = await RawClient.connect(port);
      const client = await RawClient.connect(port);
      try {
        mon.write(resp('MONITOR'));
        assert.equal(await mon.reply(), '+OK\r\n');
        mon.write(resp('RESET'));
        assert.equal(await mon.reply(), '+RESET\r\n');
        client.write(resp('SET', 'quiet', '1'));
        await client.reply();
        mon.write(resp('GET', 'quiet'));
        assert.equal(await mon.reply(), '$1\r\n1\r\n', `port ${port}`);
      } finally {
        mon.destroy();
        client.destroy();
      }
    }
  });
});
