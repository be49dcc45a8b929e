/** Progress output of operator commands: a bar on a terminal, throttled plain lines otherwise. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { progress } from '../../src/tools/progress.js';

function capture(tty: boolean): { stream: NodeJS.WriteStream; text: () => string } {
  const s = new PassThrough();
  let out = '';
  s.on('data', (d: Buffer) => (out += d.toString()));
  return { stream: Object.assign(s, { isTTY: tty, columns: 120, cursorTo: () => true, clearLine: () => true, moveCursor: () => true }) as unknown as NodeJS.WriteStream, text: () => out };
}

test('without a terminal: the first line, the last, and at most one a second between', async () => {
  const c = capture(false);
  const p = progress('backup', 'shards', c.stream);
  p.update(1, 4, 'shard 0 copied');
  p.update(2, 4, 'shard 1 copied');
  p.update(3, 4, 'shard 2 copied');
  p.update(4, 4, 'shard 3 copied');
  p.done();
  await new Promise((r) => setImmediate(r));
  assert.equal(c.text(), 'backup: 1/4 shards (25%), shard 0 copied\nbackup: 4/4 shards (100%), shard 3 copied\n');
});

test('without a terminal: a line held back is written by done()', async () => {
  const c = capture(false);
  const p = progress('migrate', 'rows scanned', c.stream);
  p.update(10, 100, 'a');
  p.update(20, 100, 'b');
  p.done();
  await new Promise((r) => setImmediate(r));
  assert.equal(c.text(), 'migrate: 10/100 rows scanned (10%), a\nmigrate: 20/100 rows scanned (20%), b\n');
});

test('on a terminal: a bar with percentage, counts and what is being done', async () => {
  const c = capture(true);
  const p = progress('vacuum (incremental)', 'shards', c.stream);
  p.update(2, 4, '3.0 MiB returned');
  p.done();
  await new Promise((r) => setImmediate(r));
  assert.match(c.text(), /vacuum \(incremental\) \[#{20}-{20}\] 50% \| 2\/4 shards \| 3\.0 MiB returned \| ETA /);
});
