/**
 * BLOBINFO / HBLOBINFO, OBJECT IDLETIME and the slow log through the dispatcher, without sockets,
 * in every write mode, on the harness's fixed clock; the latency monitor's bookkeeping on its own.
 */
import { after, before, describe, it, test } from 'node:test';
import assert from 'node:assert/strict';
import { Harness, WRITE_MODES } from '../helpers/harness.js';
import { LatencyMonitor } from '../../src/commands/slowlog.js';
import { commandTable } from '../../src/commands/table.js';
import { isRedisInteger, stringEncoding } from '../../src/commands/object.js';

for (const mode of WRITE_MODES) {
  describe(`introspection handlers (${mode.name})`, () => {
    let h: Harness;
    before(() => {
      h = Harness.open(mode.opts);
    });
    after(async () => {
      assert.deepEqual(h.failures, []);
      await h.close();
    });

    it('BLOBINFO: sizes, codec, created/updated/expires, version; a map in RESP3, a flat array in RESP2', async () => {
      const t0 = h.now;
      const value = 'abc'.repeat(4000);
      await h.run('SET', 'k', value, 'PX', 60_000);
      const compressed = mode.opts.compression !== undefined && mode.opts.compression !== null;
      const first = await h.resp('BLOBINFO', 'k');
      const stored = Number(/stored-size\r\n:(\d+)\r\n/.exec(first)![1]);
      const codec = compressed ? mode.opts.compression!.algorithm : 'none';
      assert.equal(
        first,
        `*14\r\n$4\r\nsize\r\n:12000\r\n$11\r\nstored-size\r\n:${stored}\r\n$5\r\ncodec\r\n$${codec.length}\r\n${codec}\r\n` +
          `$10\r\ncreated-at\r\n:${t0}\r\n$10\r\nupdated-at\r\n:${t0}\r\n$10\r\nexpires-at\r\n:${t0 + 60_000}\r\n$7\r\nversion\r\n:0\r\n`,
      );
      if (compressed) assert.ok(stored < 12000, `stored ${stored}`);
      else assert.equal(stored, 12000);
      // An overwrite: created stays, updated moves, version counts, the expiry is cleared by SET.
      h.now += 5000;
      await h.run('SET', 'k', 'short');
      h.client.proto = 3;
      try {
        assert.equal(
          await h.resp('BLOBINFO', 'k'),
          `%7\r\n$4\r\nsize\r\n:5\r\n$11\r\nstored-size\r\n:5\r\n$5\r\ncodec\r\n$4\r\nnone\r\n` +
            `$10\r\ncreated-at\r\n:${t0}\r\n$10\r\nupdated-at\r\n:${t0 + 5000}\r\n$10\r\nexpires-at\r\n:-1\r\n$7\r\nversion\r\n:1\r\n`,
        );
        assert.equal(await h.resp('BLOBINFO', 'missing'), '_\r\n');
      } finally {
        h.client.proto = 2;
      }
      assert.equal(await h.resp('BLOBINFO', 'missing'), '$-1\r\n');
      assert.equal(await h.resp('BLOBINFO'), "-ERR wrong number of arguments for 'blobinfo' command\r\n");
      assert.equal(await h.resp('BLOBINFO', 'k', 'x'), "-ERR wrong number of arguments for 'blobinfo' command\r\n");
    });

    it('HBLOBINFO: a namespace field\'s metadata; null for a missing field, namespace, or a plain key', async () => {
      const t0 = h.now;
      await h.run('HSET', 'ns', 'f', 'value');
      await h.run('HSET', 'ns', 'f', 'value2');
      await h.run('SET', 'plain', 'x');
      assert.equal(
        await h.resp('HBLOBINFO', 'ns', 'f'),
        `*14\r\n$4\r\nsize\r\n:6\r\n$11\r\nstored-size\r\n:6\r\n$5\r\ncodec\r\n$4\r\nnone\r\n` +
          `$10\r\ncreated-at\r\n:${t0}\r\n$10\r\nupdated-at\r\n:${t0}\r\n$10\r\nexpires-at\r\n:-1\r\n$7\r\nversion\r\n:1\r\n`,
      );
      assert.equal(await h.resp('HBLOBINFO', 'ns', 'nofield'), '$-1\r\n');
      assert.equal(await h.resp('HBLOBINFO', 'nons', 'f'), '$-1\r\n');
      assert.equal(await h.resp('HBLOBINFO', 'plain', 'x'), '$-1\r\n');
      // The plain key space and a namespace are apart: BLOBINFO of a namespace's name is null.
      assert.equal(await h.resp('BLOBINFO', 'ns'), '$-1\r\n');
    });

    it('OBJECT IDLETIME: seconds since the last write, on the command clock', async () => {
      await h.run('SET', 'idle', 'v');
      await h.run('HSET', 'idlens', 'a', '1');
      h.now += 7_500;
      assert.equal(await h.resp('OBJECT', 'IDLETIME', 'idle'), ':7\r\n');
      assert.equal(await h.resp('OBJECT', 'IDLETIME', 'idlens'), ':7\r\n');
      await h.run('HSET', 'idlens', 'b', '2');
      h.now += 2_000;
      assert.equal(await h.resp('OBJECT', 'IDLETIME', 'idlens'), ':2\r\n');
    });

    it('OBJECT ENCODING / MEMORY USAGE read pending (not yet committed) values', async () => {
      // The harness commits at the end of the turn: these reads see the overlay.
      const set = h.run('SET', 'pending', '12345');
      assert.equal(await h.resp('OBJECT', 'ENCODING', 'pending'), '$3\r\nint\r\n');
      assert.match(await h.resp('MEMORY', 'USAGE', 'pending'), /^:\d+\r\n$/);
      await set;
    });

    it('the slow log: arguments cut to 32 and to 128 bytes, secrets redacted, newest first', async () => {
      assert.equal(await h.resp('CONFIG', 'SET', 'slowlog-log-slower-than', '0', 'requirepass', 'hunter2'), '+OK\r\n');
      await h.run('SLOWLOG', 'RESET');
      await h.run('GET', 'x'.repeat(130));
      await h.run('DEL', ...Array.from({ length: 33 }, (_, i) => `k${i}`));
      const reply = await h.run('SLOWLOG', 'GET', '3');
      const args = (reply as unknown[][]).map((e) => (e[3] as Buffer[]).map(String));
      assert.deepEqual(args[0], ['DEL', ...Array.from({ length: 30 }, (_, i) => `k${i}`), '... (3 more arguments)']);
      assert.deepEqual(args[1], ['GET', `${'x'.repeat(128)}... (2 more bytes)`]);
      assert.deepEqual(args[2], ['SLOWLOG', 'RESET']);
      assert.equal(await h.resp('SLOWLOG', 'GET', '-1').then((r) => r.includes('hunter2')), false);
      await h.run('SLOWLOG', 'RESET');
      await h.run('CONFIG', 'SET', 'requirepass', 'hunter2');
      const entry = ((await h.run('SLOWLOG', 'GET', '1')) as unknown[][])[0];
      assert.deepEqual((entry[3] as Buffer[]).map(String), ['CONFIG', 'SET', 'requirepass', '(redacted)']);
      assert.deepEqual([entry[4], entry[5]], ['127.0.0.1:1', '']);
      // Entries carry the wall clock (as Redis' do), not the harness's fixed command clock.
      assert.ok(Math.abs((entry[1] as number) - Date.now() / 1000) < 5);
      await h.run('CONFIG', 'SET', 'slowlog-log-slower-than', '10000');
    });
  });
}

test('string encodings as Redis\' tryObjectEncoding decides them', () => {
  const cases: [string, string][] = [
    ['0', 'int'], ['-1', 'int'], ['9223372036854775807', 'int'], ['-9223372036854775808', 'int'],
    ['9223372036854775808', 'embstr'], ['-0', 'embstr'], ['01', 'embstr'], ['+1', 'embstr'], [' 1', 'embstr'], ['1.5', 'embstr'],
    ['', 'embstr'], ['x'.repeat(44), 'embstr'], ['x'.repeat(45), 'raw'],
  ];
  for (const [v, enc] of cases) assert.equal(stringEncoding(Buffer.from(v)), enc, v);
  assert.equal(isRedisInteger(Buffer.from('123456789012345678901')), false);
});

test('the latency monitor: off at 0, one worst sample per second, LATEST, HISTORY and RESET', () => {
  const m = new LatencyMonitor();
  const get = commandTable.lookup('get')!;
  const info = commandTable.lookup('info')!;
  assert.equal(m.thresholdMs, Infinity);
  m.monitorThreshold = 5;
  assert.equal(m.thresholdMs, 5);
  m.record(get, 7.9, 10_000);
  m.record(get, 6.2, 10_500);
  m.record(get, 9.1, 11_000);
  m.record(info, 20, 11_000);
  assert.deepEqual(m.history('fast-command'), [[10, 7], [11, 9]]);
  assert.deepEqual(m.latest(), [['fast-command', 11, 9, 9], ['command', 11, 20, 20]]);
  assert.deepEqual(m.history('nosuch'), []);
  for (let i = 0; i < 200; i++) m.record(info, 10, 20_000 + i * 1000);
  assert.equal((m.history('command') as unknown[]).length, 160);
  assert.equal(m.reset(['command', 'nosuch']), 1);
  assert.equal(m.reset([]), 1);
  assert.deepEqual(m.latest(), []);
  m.monitorThreshold = 0;
  assert.equal(m.thresholdMs, Infinity);
});
