/**
 * MULTI / EXEC / DISCARD / WATCH / UNWATCH, CLIENT REPLY, RESET: replies compared byte for byte
 * with a real redis-server, in RESP2 and RESP3; WATCH scenarios with two connections per server.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { compareServersForSuite, itMatchesRedis, normalize, type Cmd } from '../helpers/compare.js';
import { RawClient, resp } from '../helpers/raw.js';

/** Each script as it is (RESP2) and with HELLO 3 first (RESP3). */
function bothProtocols(scripts: Record<string, Cmd[]>): Record<string, Cmd[]> {
  const out: Record<string, Cmd[]> = {};
  for (const [name, cmds] of Object.entries(scripts)) {
    out[`${name} (RESP2)`] = cmds;
    out[`${name} (RESP3)`] = [['HELLO', '3'], ...cmds];
  }
  return out;
}

const SCRIPTS: Record<string, Cmd[]> = {
  'MULTI/EXEC runs the queued commands and answers their replies in an array': [
    ['MULTI'], ['SET', 'k', 'v'], ['GET', 'k'], ['APPEND', 'k', 'x'], ['HSET', 'h', 'f', 'v'], ['HGETALL', 'h'],
    ['MSET', 'a', '1', 'b', '2'], ['MGET', 'a', 'b', 'nope'], ['DEL', 'a'], ['EXISTS', 'a', 'b'], ['PING'], ['ECHO', 'e'],
    ['EXEC'], ['GET', 'k'], ['GET', 'b'],
  ],
  'an empty transaction answers an empty array': [['MULTI'], ['EXEC']],
  'a queuing error (unknown command, wrong arity) is answered at once and aborts EXEC': [
    ['SET', 'k', 'before'], ['MULTI'], ['SET', 'k', 'after'], ['NOSUCH', 'x'], ['GET'], ['SET', 'k'], ['PING'], ['EXEC'],
    ['GET', 'k'], ['EXEC'],
  ],
  'an unknown subcommand while queuing aborts EXEC': [['MULTI'], ['CLIENT', 'NOSUCH'], ['EXEC']],
  'runtime errors are reported per command inside the EXEC array, the rest still runs': [
    ['MULTI'], ['SET', 'a', '1'], ['EXPIRE', 'a', 'abc'], ['SET', 'b', 'v', 'EX', '0'], ['GETRANGE', 'a', 'x', '1'],
    ['SET', 'c', '3'], ['EXEC'], ['MGET', 'a', 'b', 'c'],
  ],
  'MULTI cannot be nested; the transaction goes on': [['MULTI'], ['SET', 'a', '1'], ['MULTI'], ['GET', 'a'], ['EXEC']],
  'EXEC and DISCARD without MULTI': [['EXEC'], ['DISCARD']],
  'DISCARD drops the queue and leaves MULTI': [['MULTI'], ['SET', 'a', '1'], ['DISCARD'], ['GET', 'a'], ['EXEC']],
  'WATCH inside MULTI is refused without aborting the transaction': [['MULTI'], ['WATCH', 'a'], ['SET', 'a', '1'], ['EXEC'], ['GET', 'a']],
  'a no_multi command (SAVE, SHUTDOWN) is refused inside MULTI and aborts EXEC': [
    ['MULTI'], ['SAVE'], ['SHUTDOWN', 'NOSAVE'], ['SET', 'a', '1'], ['EXEC'], ['GET', 'a'],
  ],
  'UNWATCH inside MULTI is queued': [['MULTI'], ['UNWATCH'], ['EXEC']],
  'WATCH: a write by the same client after WATCH fails EXEC with a null array': [
    ['SET', 'a', '1'], ['WATCH', 'a'], ['SET', 'a', '2'], ['MULTI'], ['GET', 'a'], ['SET', 'a', '3'], ['EXEC'], ['GET', 'a'], ['EXEC'],
  ],
  'WATCH: writes to other keys do not matter': [
    ['SET', 'a', '1'], ['WATCH', 'a', 'b'], ['SET', 'c', '2'], ['DEL', 'b'], ['EXPIRE', 'b', '100'], ['MULTI'], ['GET', 'a'], ['EXEC'],
  ],
  'WATCH: DEL, EXPIRE, PERSIST, APPEND, SETRANGE, GETDEL, GETEX of the key touch it': [
    ['SET', 'a', '1'], ['WATCH', 'a'], ['DEL', 'a'], ['MULTI'], ['PING'], ['EXEC'],
    ['SET', 'a', '1'], ['WATCH', 'a'], ['EXPIRE', 'a', '100'], ['MULTI'], ['PING'], ['EXEC'],
    ['WATCH', 'a'], ['PERSIST', 'a'], ['MULTI'], ['PING'], ['EXEC'],
    ['WATCH', 'a'], ['APPEND', 'a', 'x'], ['MULTI'], ['PING'], ['EXEC'],
    ['WATCH', 'a'], ['SETRANGE', 'a', '0', 'y'], ['MULTI'], ['PING'], ['EXEC'],
    ['WATCH', 'a'], ['GETEX', 'a', 'PX', '100000'], ['MULTI'], ['PING'], ['EXEC'],
    ['WATCH', 'a'], ['GETDEL', 'a'], ['MULTI'], ['PING'], ['EXEC'],
  ],
  'WATCH: commands that change nothing do not touch (DEL of a missing key, PERSIST without TTL, failed SETNX)': [
    ['SET', 'a', '1'], ['WATCH', 'a', 'gone'], ['DEL', 'gone'], ['PERSIST', 'a'], ['SETNX', 'a', '2'], ['EXPIRE', 'gone', '10'],
    ['MULTI'], ['GET', 'a'], ['EXEC'],
  ],
  'WATCH: RENAME touches source and target, COPY-like writes via MSET too': [
    ['SET', 'a', '1'], ['WATCH', 'b'], ['RENAME', 'a', 'b'], ['MULTI'], ['PING'], ['EXEC'],
    ['WATCH', 'b'], ['RENAME', 'b', 'c'], ['MULTI'], ['PING'], ['EXEC'],
    ['WATCH', 'x'], ['MSET', 'y', '1', 'x', '2'], ['MULTI'], ['PING'], ['EXEC'],
  ],
  'WATCH: a hash is touched by writes to its fields': [
    ['HSET', 'h', 'f', '1'], ['WATCH', 'h'], ['HSET', 'h', 'g', '2'], ['MULTI'], ['HGET', 'h', 'g'], ['EXEC'],
    ['WATCH', 'h'], ['HDEL', 'h', 'f'], ['MULTI'], ['PING'], ['EXEC'],
    ['WATCH', 'h'], ['HDEL', 'h', 'nope'], ['MULTI'], ['PING'], ['EXEC'],
    ['WATCH', 'h'], ['DEL', 'h'], ['MULTI'], ['PING'], ['EXEC'],
  ],
  'WATCH: FLUSHALL touches watched keys that exist, not the others': [
    ['WATCH', 'missing'], ['FLUSHALL'], ['MULTI'], ['PING'], ['EXEC'],
    ['SET', 'a', '1'], ['WATCH', 'a'], ['FLUSHALL'], ['MULTI'], ['PING'], ['EXEC'],
    ['SET', 'a', '1'], ['WATCH', 'a'], ['FLUSHDB'], ['MULTI'], ['PING'], ['EXEC'],
  ],
  'WATCH after the key was touched answers OK; UNWATCH forgets the touch': [
    ['SET', 'a', '1'], ['WATCH', 'a'], ['SET', 'a', '2'], ['WATCH', 'b'], ['UNWATCH'], ['MULTI'], ['GET', 'a'], ['EXEC'],
  ],
  'a failed EXEC and a DISCARD both unwatch': [
    ['WATCH', 'a'], ['SET', 'a', '1'], ['MULTI'], ['EXEC'], ['SET', 'a', '2'], ['MULTI'], ['GET', 'a'], ['EXEC'],
    ['WATCH', 'a'], ['MULTI'], ['DISCARD'], ['SET', 'a', '3'], ['MULTI'], ['GET', 'a'], ['EXEC'],
  ],
  'a successful EXEC unwatches: its own writes do not touch': [
    ['WATCH', 'a'], ['MULTI'], ['SET', 'a', '1'], ['EXEC'], ['SET', 'a', '2'], ['MULTI'], ['GET', 'a'], ['EXEC'],
  ],
  'commands queued after a touched WATCH are still answered QUEUED': [
    ['WATCH', 'a'], ['SET', 'a', '1'], ['MULTI'], ['SET', 'a', '2'], ['NOSUCH'], ['EXEC'], ['GET', 'a'],
  ],
  'RESET leaves MULTI and forgets WATCH': [
    ['MULTI'], ['SET', 'a', '1'], ['RESET'], ['EXEC'], ['GET', 'a'],
    ['WATCH', 'a'], ['RESET'], ['SET', 'a', '2'], ['MULTI'], ['GET', 'a'], ['EXEC'],
  ],
  'RESET inside MULTI runs at once; QUIT is not queued either': [['MULTI'], ['PING'], ['RESET'], ['PING']],
  'CLIENT NO-EVICT and its errors': [['CLIENT', 'NO-EVICT', 'on'], ['CLIENT', 'NO-EVICT', 'OFF'], ['CLIENT', 'NO-EVICT', 'maybe'], ['CLIENT', 'NO-EVICT']],
  'CLIENT PAUSE / UNPAUSE errors and no-ops': [
    ['CLIENT', 'PAUSE', 'abc'], ['CLIENT', 'PAUSE', '-1'], ['CLIENT', 'PAUSE', '10', 'sometimes'], ['CLIENT', 'PAUSE', 'abc', 'nope'],
    ['CLIENT', 'PAUSE', '10', 'ALL', 'extra'], ['CLIENT', 'PAUSE'], ['CLIENT', 'PAUSE', '0', 'WRITE'], ['CLIENT', 'UNPAUSE'],
    ['CLIENT', 'UNPAUSE', 'x'], ['CLIENT', 'REPLY'], ['CLIENT', 'REPLY', 'on'],
  ],
};

/** Sends `cmds` then ECHO <marker>; returns every reply before the marker's, concatenated (for CLIENT REPLY). */
async function untilMarker(port: number, cmds: Cmd[]): Promise<string> {
  const c = await RawClient.connect(port);
  try {
    c.write(resp('FLUSHALL'));
    await c.reply();
    for (const cmd of cmds) c.write(resp(...cmd));
    c.write(resp('CLIENT', 'REPLY', 'ON'));
    c.write(resp('ECHO', '__end__'));
    const out: string[] = [];
    for (;;) {
      const r = await c.reply();
      if (r === '$7\r\n__end__\r\n') return out.join('');
      out.push(normalize(r));
    }
  } finally {
    c.destroy();
  }
}

describe('transactions against redis-server', () => {
  const servers = compareServersForSuite();
  itMatchesRedis(servers.ports, bothProtocols(SCRIPTS));

  const replyScripts: Record<string, Cmd[]> = {
    'CLIENT REPLY OFF mutes everything until ON': [['SET', 'a', '1'], ['CLIENT', 'REPLY', 'OFF'], ['GET', 'a'], ['NOSUCH'], ['CLIENT', 'REPLY', 'bogus'], ['CLIENT', 'REPLY', 'SKIP'], ['CLIENT', 'REPLY', 'ON'], ['GET', 'a']],
    'CLIENT REPLY SKIP mutes only the next command': [['CLIENT', 'REPLY', 'SKIP'], ['SET', 'a', '1'], ['GET', 'a'], ['CLIENT', 'REPLY', 'SKIP'], ['CLIENT', 'REPLY', 'SKIP'], ['GET', 'a'], ['GET', 'a']],
    'CLIENT REPLY SKIP then ON: ON is answered': [['CLIENT', 'REPLY', 'SKIP'], ['CLIENT', 'REPLY', 'ON'], ['PING']],
    'CLIENT REPLY SKIP then RESET: RESET is skipped': [['CLIENT', 'REPLY', 'SKIP'], ['RESET'], ['PING']],
    'CLIENT REPLY OFF then RESET: RESET turns replies back on': [['CLIENT', 'REPLY', 'OFF'], ['PING'], ['RESET'], ['PING']],
  };
  for (const [name, cmds] of Object.entries(replyScripts)) {
    for (const hello of [false, true]) {
      it(`${name} (RESP${hello ? 3 : 2}): replies match redis-server`, async () => {
        const script: Cmd[] = hello ? [['HELLO', '3'], ...cmds] : cmds;
        const { ours, redis } = servers.ports();
        assert.equal(await untilMarker(ours, script), await untilMarker(redis, script));
      });
    }
  }

  /**
   * Two connections per server, driven the same way: `steps` say which connection sends what.
   * Sleeps (ms) let time pass on both servers alike.
   */
  async function twoClients(port: number, steps: ([1 | 2, ...Cmd] | number)[]): Promise<string[]> {
    const c = [await RawClient.connect(port), await RawClient.connect(port)];
    try {
      c[0].write(resp('FLUSHALL'));
      await c[0].reply();
      const out: string[] = [];
      for (const step of steps) {
        if (typeof step === 'number') {
          await new Promise((r) => setTimeout(r, step));
          continue;
        }
        const [who, ...cmd] = step;
        c[who - 1].write(resp(...(cmd as Cmd)));
        out.push(`${who}: ${normalize(await c[who - 1].reply())}`);
      }
      return out;
    } finally {
      for (const x of c) x.destroy();
    }
  }

  const WATCH_SCENARIOS: Record<string, ([1 | 2, ...Cmd] | number)[]> = {
    'another client writes the watched key': [[1, 'SET', 'k', 'v'], [1, 'WATCH', 'k'], [2, 'SET', 'k', 'w'], [1, 'MULTI'], [1, 'GET', 'k'], [1, 'EXEC']],
    'another client writes it after MULTI': [[1, 'WATCH', 'k'], [1, 'MULTI'], [1, 'SET', 'k', 'mine'], [2, 'SET', 'k', 'theirs'], [1, 'EXEC'], [2, 'GET', 'k']],
    'another client deletes it': [[1, 'SET', 'k', 'v'], [1, 'WATCH', 'k'], [2, 'DEL', 'k'], [1, 'MULTI'], [1, 'PING'], [1, 'EXEC']],
    'another client sets a TTL on it': [[1, 'SET', 'k', 'v'], [1, 'WATCH', 'k'], [2, 'PEXPIRE', 'k', '100000'], [1, 'MULTI'], [1, 'PING'], [1, 'EXEC']],
    'another client flushes': [[1, 'SET', 'k', 'v'], [1, 'WATCH', 'k'], [2, 'FLUSHALL'], [1, 'MULTI'], [1, 'PING'], [1, 'EXEC']],
    'another client writes a field of the watched hash': [[1, 'HSET', 'h', 'f', 'v'], [1, 'WATCH', 'h'], [2, 'HSET', 'h', 'f', 'w'], [1, 'MULTI'], [1, 'HGET', 'h', 'f'], [1, 'EXEC']],
    'another client writes an unwatched key': [[1, 'WATCH', 'k'], [2, 'SET', 'other', 'v'], [1, 'MULTI'], [1, 'SET', 'k', 'mine'], [1, 'EXEC'], [2, 'GET', 'k']],
    'the watched key expires by time between WATCH and EXEC': [[1, 'SET', 'k', 'v', 'PX', '150'], [1, 'WATCH', 'k'], [1, 'MULTI'], [1, 'PING'], 300, [1, 'EXEC']],
    'a key already expired when watched does not fail EXEC': [[1, 'SET', 'k', 'v', 'PX', '50'], 150, [1, 'WATCH', 'k'], [1, 'MULTI'], [1, 'PING'], [1, 'EXEC']],
    'a key with a TTL still live at EXEC does not fail it': [[1, 'SET', 'k', 'v', 'EX', '100'], [1, 'WATCH', 'k'], [1, 'MULTI'], [1, 'GET', 'k'], [1, 'EXEC']],
    'one client WATCHing does not stop another from committing': [[1, 'WATCH', 'k'], [2, 'MULTI'], [2, 'SET', 'k', 'two'], [2, 'EXEC'], [1, 'MULTI'], [1, 'SET', 'k', 'one'], [1, 'EXEC'], [2, 'GET', 'k']],
    'a transaction\'s writes fail the other client\'s WATCH': [[2, 'WATCH', 'k'], [1, 'MULTI'], [1, 'SET', 'k', 'one'], [1, 'EXEC'], [2, 'MULTI'], [2, 'SET', 'k', 'two'], [2, 'EXEC'], [2, 'GET', 'k']],
  };
  for (const [name, steps] of Object.entries(WATCH_SCENARIOS)) {
    it(`WATCH with two clients, ${name}: replies match redis-server`, async () => {
      const { ours, redis } = servers.ports();
      const expected = await twoClients(redis, steps);
      const actual = await twoClients(ours, steps);
      assert.deepEqual(actual, expected);
    });
  }

  it('CLIENT PAUSE WRITE holds writes (and EXEC of writes) until UNPAUSE; reads go on', async () => {
    for (const port of [servers.ports().redis, servers.ports().ours]) {
      const admin = await RawClient.connect(port);
      const other = await RawClient.connect(port);
      const tx = await RawClient.connect(port);
      try {
        tx.write(resp('MULTI'));
        tx.write(resp('SET', 'p', 'tx'));
        assert.deepEqual(await tx.replies(2), ['+OK\r\n', '+QUEUED\r\n']);
        admin.write(resp('CLIENT', 'PAUSE', '60000', 'WRITE'));
        assert.equal(await admin.reply(), '+OK\r\n');
        other.write(resp('SET', 'p', 'v'));
        other.write(resp('GET', 'p'));
        tx.write(resp('EXEC'));
        // The write holds the reads queued behind it on the same connection, as in Redis.
        await assert.rejects(other.replies(1, 300), /timed out/);
        await assert.rejects(tx.replies(1, 50), /timed out/);
        const reader = await RawClient.connect(port);
        reader.write(resp('GET', 'p'));
        assert.equal(await reader.reply(), '$-1\r\n');
        reader.destroy();
        admin.write(resp('CLIENT', 'UNPAUSE'));
        assert.equal(await admin.reply(), '+OK\r\n');
        assert.deepEqual(await other.replies(2), ['+OK\r\n', '$1\r\nv\r\n']);
        assert.equal(await tx.reply(), '*1\r\n+OK\r\n');
      } finally {
        admin.destroy();
        other.destroy();
        tx.destroy();
      }
    }
  });

  it('CLIENT PAUSE ALL holds every command until the timeout', async () => {
    for (const port of [servers.ports().redis, servers.ports().ours]) {
      const admin = await RawClient.connect(port);
      const other = await RawClient.connect(port);
      try {
        admin.write(resp('CLIENT', 'PAUSE', '300', 'ALL'));
        assert.equal(await admin.reply(), '+OK\r\n');
        const started = Date.now();
        other.write(resp('PING'));
        assert.equal(await other.reply(), '+PONG\r\n');
        const waited = Date.now() - started;
        assert.ok(waited >= 200 && waited < 2000, `PING waited ${waited} ms on port ${port}`);
      } finally {
        admin.destroy();
        other.destroy();
      }
    }
  });
});
