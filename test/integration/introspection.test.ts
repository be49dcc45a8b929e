/**
 * Introspection and operations commands (OBJECT, MEMORY, TIME, SLOWLOG, LATENCY, CONFIG SET /
 * RESETSTAT, CLIENT KILL, COMMAND GETKEYS / LIST FILTERBY, INFO replication) against a real
 * redis-server, RESP2 and RESP3, byte for byte. What must differ is masked, and only that:
 *
 * - TIME's digits (two clocks);
 * - SLOWLOG entries' id, timestamp, duration and client address (ids are global in Redis and its
 *   timings are its own);
 * - INFO replication's master_replid (random per start in both);
 * - COMMAND LIST FILTERBY: Redis lists its whole table in dict order; both lists are sorted and
 *   Redis' is kept to the commands our table has.
 *
 * MEMORY USAGE sizes differ by design (ours are shard-file bytes, README.md "Introspection"), so only its
 * errors and nulls are compared here; its numbers are checked against the stored metadata below.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { commandTable } from '../../src/commands/table.js';
import { compareServersForSuite, itMatchesRedis, runScript, type Cmd } from '../helpers/compare.js';
import { RawClient, resp } from '../helpers/raw.js';
import { redisCli } from '../helpers/cli.js';
import { startOurs } from '../helpers/servers.js';

const manyFields: string[] = [];
for (let i = 0; i < 513; i++) manyFields.push(`f${i}`, 'v');

/** Every script runs twice: in RESP2, and in RESP3 after HELLO 3. */
function bothProtocols(scripts: Record<string, Cmd[]>): Record<string, Cmd[]> {
  const out: Record<string, Cmd[]> = {};
  for (const [name, cmds] of Object.entries(scripts)) {
    out[`${name} (RESP2)`] = cmds;
    out[`${name} (RESP3)`] = [['HELLO', '3'], ...cmds];
  }
  return out;
}

const SCRIPTS: Record<string, Cmd[]> = {
  'OBJECT': [
    ['SET', 'int', '1'],
    ['SET', 'bigint', '9999'],
    ['SET', 'notshared', '10000'],
    ['SET', 'neg', '-12'],
    ['SET', 'minus0', '-0'],
    ['SET', 'lead0', '012'],
    ['SET', 'huge', '99999999999999999999'],
    ['SET', 'llmax', '9223372036854775807'],
    ['SET', 'short', 'hello'],
    ['SET', 'e44', 'x'.repeat(44)],
    ['SET', 'r45', 'x'.repeat(45)],
    ['HSET', 'small', 'f', 'v'],
    ['HSET', 'many', ...manyFields],
    ['HSET', 'longvalue', 'f', 'x'.repeat(65)],
    ['HSET', 'longfield', 'y'.repeat(65), 'v'],
    ...['int', 'bigint', 'notshared', 'neg', 'minus0', 'lead0', 'huge', 'llmax', 'short', 'e44', 'r45', 'small', 'many', 'longvalue', 'longfield', 'nokey'].flatMap(
      (k): Cmd[] => [['OBJECT', 'ENCODING', k], ['OBJECT', 'REFCOUNT', k]],
    ),
    ['OBJECT', 'FREQ', 'int'],
    ['OBJECT', 'FREQ', 'small'],
    ['OBJECT', 'FREQ', 'nokey'],
    ['OBJECT', 'IDLETIME', 'nokey'],
    ['OBJECT', 'HELP'],
    ['OBJECT', 'help', 'x'],
    ['OBJECT', 'FOO'],
    ['OBJECT'],
    ['OBJECT', 'ENCODING'],
    ['OBJECT', 'ENCODING', 'a', 'b'],
  ],
  'MEMORY USAGE errors and missing keys': [
    ['SET', 'a', '1'],
    ['MEMORY', 'USAGE', 'nokey'],
    ['MEMORY', 'USAGE', 'nokey', 'SAMPLES', '0'],
    ['MEMORY', 'USAGE', 'a', 'SAMPLES'],
    ['MEMORY', 'USAGE', 'a', 'SAMPLES', 'x'],
    ['MEMORY', 'USAGE', 'nokey', 'SAMPLES', 'x'],
    ['MEMORY', 'USAGE', 'a', 'SAMPLES', '-1'],
    ['MEMORY', 'USAGE', 'a', 'FOO'],
    ['MEMORY', 'USAGE'],
    ['MEMORY', 'FOO'],
    ['MEMORY'],
    ['MEMORY', 'HELP', 'x'],
  ],
  'TIME errors': [['TIME', 'x']],
  'SLOWLOG': [
    // A loaded machine can make any command here take over the default 10 ms, on either server:
    // nothing is logged while this script runs, and the default is restored at its end.
    ['CONFIG', 'SET', 'slowlog-log-slower-than', '100000000'],
    ['SLOWLOG', 'GET', 'x'],
    ['SLOWLOG', 'GET', '-2'],
    ['SLOWLOG', 'GET', '1', '2'],
    ['SLOWLOG', 'LEN', 'x'],
    ['SLOWLOG', 'RESET', 'x'],
    ['SLOWLOG', 'FOO'],
    ['SLOWLOG'],
    ['SLOWLOG', 'HELP'],
    ['SLOWLOG', 'RESET'],
    ['SLOWLOG', 'LEN'],
    ['SLOWLOG', 'GET'],
    ['SLOWLOG', 'GET', '-1'],
    ['CONFIG', 'SET', 'slowlog-log-slower-than', '10000'],
  ],
  'LATENCY': [
    ['LATENCY', 'RESET'],
    ['LATENCY', 'LATEST'],
    ['LATENCY', 'HISTORY', 'command'],
    ['LATENCY', 'HISTORY'],
    ['LATENCY', 'LATEST', 'x'],
    ['LATENCY', 'RESET', 'command', 'nosuch'],
    ['LATENCY', 'FOO'],
  ],
  'CONFIG SET and RESETSTAT': [
    ['CONFIG', 'SET', 'slowlog-log-slower-than', 'x'],
    ['CONFIG', 'SET', 'slowlog-log-slower-than', '-2'],
    ['CONFIG', 'SET', 'slowlog-log-slower-than', '99999999999999999999'],
    ['CONFIG', 'SET', 'slowlog-max-len', '-1'],
    ['CONFIG', 'SET', 'latency-monitor-threshold', '-1'],
    ['CONFIG', 'SET', 'maxclients', '0'],
    ['CONFIG', 'SET', 'maxclients', 'x'],
    ['CONFIG', 'SET', 'timeout', '-1'],
    ['CONFIG', 'SET', 'loglevel', 'foo'],
    ['CONFIG', 'SET', 'client-query-buffer-limit', '1k'],
    ['CONFIG', 'SET', 'client-query-buffer-limit', 'foo'],
    ['CONFIG', 'SET', 'maxclients', '10', 'maxclients', '11'],
    ['CONFIG', 'SET', 'maxclients', '10', 'NOSUCH', '1'],
    ['CONFIG', 'SET', 'maxclients', '10', 'timeout', 'x'],
    ['CONFIG', 'SET', 'DATABASES', '1'],
    ['CONFIG', 'SET', 'maxclients'],
    ['CONFIG', 'SET', 'SLOWLOG-MAX-LEN', '64', 'slowlog-log-slower-than', '20000', 'latency-monitor-threshold', '100'],
    ['CONFIG', 'GET', 'slowlog-max-len'],
    ['CONFIG', 'GET', 'slowlog-log-slower-than'],
    ['CONFIG', 'GET', 'latency-monitor-threshold'],
    ['CONFIG', 'SET', 'maxclients', '500', 'timeout', '300', 'loglevel', 'WARNING', 'client-query-buffer-limit', '2mb'],
    ['CONFIG', 'GET', 'maxclients'],
    ['CONFIG', 'GET', 'timeout'],
    ['CONFIG', 'GET', 'loglevel'],
    ['CONFIG', 'GET', 'client-query-buffer-limit'],
    ['CONFIG', 'SET', 'maxclients', '10000', 'timeout', '0', 'loglevel', 'notice', 'client-query-buffer-limit', '1gb'],
    ['CONFIG', 'SET', 'slowlog-max-len', '128', 'slowlog-log-slower-than', '10000', 'latency-monitor-threshold', '0'],
    ['CONFIG', 'RESETSTAT', 'x'],
    ['CONFIG', 'RESETSTAT'],
  ],
  'CLIENT KILL': [
    ['CLIENT', 'KILL'],
    ['CLIENT', 'KILL', '1.2.3.4:5'],
    ['CLIENT', 'KILL', 'id'],
    ['CLIENT', 'KILL', 'id', 'x'],
    ['CLIENT', 'KILL', 'id', '0'],
    ['CLIENT', 'KILL', 'id', '999999'],
    ['CLIENT', 'KILL', 'foo', 'bar'],
    ['CLIENT', 'KILL', 'type', 'foo'],
    ['CLIENT', 'KILL', 'type', 'master'],
    ['CLIENT', 'KILL', 'TYPE', 'pubsub'],
    ['CLIENT', 'KILL', 'skipme', 'maybe'],
    ['CLIENT', 'KILL', 'user', 'nobody'],
    ['CLIENT', 'KILL', 'laddr', '1.2.3.4:5'],
    ['CLIENT', 'KILL', 'addr', '1.2.3.4:5', 'id', '3'],
    ['CLIENT', 'KILL', 'id', '3', 'type'],
    ['CLIENT', 'KILL', 'skipme', 'yes'],
    ['CLIENT', 'KILL', 'type', 'normal', 'skipme', 'yes', 'user', 'default'],
    ['PING'],
  ],
  'COMMAND GETKEYS and GETKEYSANDFLAGS': [
    ['COMMAND', 'GETKEYS'],
    ['COMMAND', 'GETKEYS', 'get'],
    ['COMMAND', 'GETKEYS', 'get', 'a'],
    ['COMMAND', 'GETKEYS', 'GET', 'a', 'b'],
    ['COMMAND', 'GETKEYS', 'foo', 'a'],
    ['COMMAND', 'GETKEYS', 'set', 'a', 'b'],
    ['COMMAND', 'GETKEYS', 'mset', 'a', 'b', 'c', 'd'],
    ['COMMAND', 'GETKEYS', 'mset', 'a', 'b', 'c'],
    ['COMMAND', 'GETKEYS', 'del', 'a', 'b', 'c'],
    ['COMMAND', 'GETKEYS', 'hset', 'h', 'f', 'v'],
    ['COMMAND', 'GETKEYS', 'getex', 'a', 'ex', '1'],
    ['COMMAND', 'GETKEYS', 'config', 'get', 'x'],
    ['COMMAND', 'GETKEYS', 'ping', 'x'],
    ['COMMAND', 'GETKEYS', 'object', 'encoding', 'a'],
    ['COMMAND', 'GETKEYS', 'object', 'nosuch', 'a'],
    ['COMMAND', 'GETKEYS', 'memory', 'usage', 'a'],
    ['COMMAND', 'GETKEYSANDFLAGS', 'mset', 'a', 'b', 'c', 'd'],
    ['COMMAND', 'GETKEYSANDFLAGS', 'rename', 'a', 'b'],
    ['COMMAND', 'GETKEYSANDFLAGS', 'get', 'a'],
    ['COMMAND', 'GETKEYSANDFLAGS', 'del', 'a', 'b'],
    ['COMMAND', 'GETKEYSANDFLAGS', 'hdel', 'h', 'f'],
    ['COMMAND', 'GETKEYSANDFLAGS', 'set', 'a'],
  ],
  'COMMAND LIST FILTERBY errors': [
    ['COMMAND', 'LIST', 'FILTERBY'],
    ['COMMAND', 'LIST', 'FILTERBY', 'MODULE'],
    ['COMMAND', 'LIST', 'FILTERBY', 'MODULE', 'x'],
    ['COMMAND', 'LIST', 'FILTERBY', 'foo', 'x'],
    ['COMMAND', 'LIST', 'FILTERBY', 'pattern', 'x', 'y'],
    ['COMMAND', 'LIST', 'FILTERBY', 'aclcat', 'nosuch'],
    ['COMMAND', 'LIST', 'x'],
  ],
};

describe('introspection replies match redis-server', () => {
  const servers = compareServersForSuite();

  itMatchesRedis(servers.ports, bothProtocols(SCRIPTS));

  it('TIME: two bulk strings, seconds and microseconds, in RESP2 and RESP3', async () => {
    const mask = (r: string): string => r.replace(/\$\d+\r\n\d+\r\n/g, '$N\r\nD\r\n');
    for (const cmds of [[['TIME']], [['HELLO', '3'], ['TIME']]] as Cmd[][]) {
      const { ours, redis } = servers.ports();
      const [a, b] = [await runScript(ours, cmds), await runScript(redis, cmds)];
      assert.equal(mask(a[a.length - 1]), mask(b[b.length - 1]));
      const secs = Number(/\r\n(\d+)\r\n/.exec(a[a.length - 1])![1]);
      assert.ok(Math.abs(secs - Date.now() / 1000) < 5);
    }
  });

  it('INFO replication: the same fields, with the replication id masked', async () => {
    const mask = (r: string): string => r.replace(/master_replid:[0-9a-f]{40}/, 'master_replid:X').replace(/^\$\d+/, '$N');
    const { ours, redis } = servers.ports();
    const [[a], [b]] = [await runScript(ours, [['INFO', 'replication']]), await runScript(redis, [['INFO', 'replication']])];
    assert.equal(mask(a), mask(b));
  });

  it('SLOWLOG GET entries: the same shape, arguments, truncation and redaction (ids, times, addresses masked)', async () => {
    const longArg = 'v'.repeat(200);
    const manyArgs = Array.from({ length: 40 }, (_, i) => `k${i}`);
    const cmds: Cmd[] = [
      ['CONFIG', 'SET', 'slowlog-log-slower-than', '0'],
      ['SLOWLOG', 'RESET'],
      ['CLIENT', 'SETNAME', 'slow1'],
      ['SET', 'k', longArg],
      ['DEL', ...manyArgs],
      ['AUTH', 'secret'],
      ['AUTH', 'someone', 'secret'],
      ['HELLO', '2', 'AUTH', 'default', 'secret'],
      ['SLOWLOG', 'GET', '6'],
      ['SLOWLOG', 'GET', '1'],
      ['CONFIG', 'SET', 'slowlog-log-slower-than', '10000'],
      ['SLOWLOG', 'LEN'],
      ['SLOWLOG', 'RESET'],
    ];
    const mask = (r: string): string =>
      r
        // id, timestamp, duration: the first three integers of every entry
        .replace(/\*6\r\n:\d+\r\n:\d+\r\n:\d+\r\n/g, '*6\r\n:I\r\n:T\r\n:D\r\n')
        .replace(/\$\d+\r\n127\.0\.0\.1:\d+\r\n/g, '$A\r\nADDR\r\n')
        .replace(/^:\d+\r\n$/, ':N\r\n');
    const { ours, redis } = servers.ports();
    const a = (await runScript(ours, cmds)).map(mask);
    const b = (await runScript(redis, cmds)).map(mask);
    assert.deepEqual(a, b);
    assert.match(a[8], /\(redacted\)/);
    assert.match(a[8], /\.\.\. \(72 more bytes\)/);
    assert.match(a[8], /\.\.\. \(10 more arguments\)/);
  });

  it('COMMAND LIST FILTERBY ACLCAT / PATTERN: Redis\' list, kept to the commands we have', async () => {
    const ourNames = new Set(commandTable.all.flatMap((s) => [s.name, ...(s.subcommands ?? []).map((x) => x.name)]));
    const list = async (port: number, by: string, value: string): Promise<string[]> => {
      const c = await RawClient.connect(port);
      try {
        c.write(resp('COMMAND', 'LIST', 'FILTERBY', by, value));
        return [...(await c.reply()).matchAll(/\$\d+\r\n([^\r]*)\r\n/g)].map((m) => m[1]).sort();
      } finally {
        c.destroy();
      }
    };
    const { ours, redis } = servers.ports();
    // Ours that Redis 7.0 lacks (BLOBINFO, 7.4's hash-field expiry…) are compared by COMMAND INFO elsewhere.
    const redisNames = new Set(await list(redis, 'PATTERN', '*'));
    for (const [by, value] of [['ACLCAT', 'keyspace'], ['aclcat', 'hash'], ['ACLCAT', 'connection'], ['ACLCAT', 'admin'], ['ACLCAT', 'string'], ['PATTERN', 'h*'], ['PATTERN', 'CL*'], ['pattern', '*|help'], ['PATTERN', 'get']]) {
      const mine = (await list(ours, by, value)).filter((n) => redisNames.has(n));
      const theirs = (await list(redis, by, value)).filter((n) => ourNames.has(n));
      assert.ok(mine.length > 0, `${by} ${value}`);
      assert.deepEqual(mine, theirs, `${by} ${value}`);
    }
  });
});

describe('MEMORY USAGE and redis-cli --memkeys / --bigkeys on our server', () => {
  it('reports stored bytes plus row overhead, and redis-cli shows those sizes', async () => {
    const ours = await startOurs();
    const c = await RawClient.connect(ours.port);
    try {
      const ask = async (...cmd: string[]): Promise<string> => {
        c.write(resp(...cmd));
        return c.reply();
      };
      await ask('SET', 'big', 'x'.repeat(100_000));
      await ask('SET', 'small', 'hi');
      await ask('SET', 'ttl', 'hi', 'EX', '1000');
      for (let i = 0; i < 20; i++) await ask('HSET', 'ns', `field${i}`, 'v'.repeat(100 + i));
      const usage = async (...cmd: string[]): Promise<number> => Number(/^:(\d+)/.exec(await ask('MEMORY', 'USAGE', ...cmd))![1]);
      const big = await usage('big');
      // 100,000 stored bytes, the key twice, 44 bytes of row bookkeeping and 4 bytes per overflow page.
      assert.equal(big, 100_000 + 2 * 3 + 44 + 4 * Math.floor(100_000 / 4092));
      assert.equal(await usage('small'), 2 + 2 * 5 + 44);
      // An expiry adds its index entry.
      assert.equal(await usage('ttl'), 2 + 2 * 3 + 44 + 21);
      // A namespace: every field sampled (SAMPLES 0) is the exact sum of its rows.
      let exact = 0;
      for (let i = 0; i < 20; i++) exact += 100 + i + 2 * (2 + `field${i}`.length) + 44;
      assert.equal(await usage('ns', 'SAMPLES', '0'), exact);
      const sampled = await usage('ns');
      assert.ok(Math.abs(sampled - exact) / exact < 0.2, `sampled ${sampled} vs exact ${exact}`);

      const memkeys = await redisCli(ours.port, ['--memkeys']);
      assert.match(memkeys, new RegExp(`Biggest string found '"big"' has ${big} bytes`));
      assert.match(memkeys, /Biggest\s+hash found '"ns"' has \d+ bytes/);
      assert.match(memkeys, /Sampled 4 keys in the keyspace!/);
      const bigkeys = await redisCli(ours.port, ['--bigkeys']);
      assert.match(bigkeys, /Biggest string found '"big"' has 100000 bytes/);
      assert.match(bigkeys, /Biggest\s+hash found '"ns"' has 20 fields/);
    } finally {
      c.destroy();
      await ours.close();
    }
  });
});
