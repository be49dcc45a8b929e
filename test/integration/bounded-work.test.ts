/**
 * Whole-namespace and whole-dataset commands in bounded steps (issue 17 point 4): HGETALL, HKEYS
 * and HVALS of a large namespace stream from one point in time; FLUSHALL sets the rows aside at
 * once and purges them in the background, with nothing coming back after a kill -9.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Socket } from 'node:net';
import Database from 'better-sqlite3';
import { Redis } from 'ioredis';
import { RawClient, replyEnd, resp } from '../helpers/raw.js';
import { compareServersForSuite, itMatchesRedis, sortedArray, type Cmd } from '../helpers/compare.js';
import { spawnOurs, startOurs, tempDir } from '../helpers/servers.js';
import { shardPath } from '../../src/storage/schema.js';
import { STREAMED_NAMESPACE_FIELDS } from '../../src/storage/keyspace.js';

/** Comfortably over the streaming threshold: these replies are StreamedArrays. */
const FIELDS = STREAMED_NAMESPACE_FIELDS * 3;

/** HSET ns with fields f:0… in commands of up to 500 pairs. */
function hsets(ns: string, n: number, value: (i: number) => string): Cmd[] {
  const out: Cmd[] = [];
  for (let i = 0; i < n; i += 500) {
    const cmd: Cmd = ['HSET', ns];
    for (let j = i; j < Math.min(n, i + 500); j++) cmd.push(`f:${j}`, value(j));
    out.push(cmd);
  }
  return out;
}

/** The elements of an array or map reply, each as raw RESP, sorted (pairs kept together for a map). */
function sortedItems(reply: string, pairs: boolean): string {
  const buf = Buffer.from(reply, 'latin1');
  const head = buf.indexOf('\r\n');
  const items: string[] = [];
  let p = head + 2;
  while (p < buf.length) {
    const end = replyEnd(buf, p);
    const item = buf.subarray(p, end).toString('latin1');
    if (pairs && items.length > 0 && !items[items.length - 1].includes('\u0000')) items[items.length - 1] += `\u0000${item}`;
    else items.push(item);
    p = end;
  }
  return `${buf.subarray(0, head + 2).toString('latin1')}${items.sort().join('|')}`;
}

describe('large namespaces and FLUSHALL against redis-server', () => {
  const servers = compareServersForSuite();
  const value = (i: number): string => (i % 3 === 0 ? '' : `value-${i}-${'x'.repeat(i % 200)}`);

  itMatchesRedis(
    servers.ports,
    {
      [`HGETALL / HKEYS / HVALS / HLEN of ${FIELDS} fields (streamed), with some expired or deleted`]: [
        ...hsets('big', FIELDS, value),
        ['HDEL', 'big', 'f:1', 'f:2', 'missing'],
        ['HLEN', 'big'],
        ['HKEYS', 'big'],
        ['HVALS', 'big'],
        ['HGETALL', 'big'],
        ['HSET', 'big', 'f:1', 'back'],
        ['HGETALL', 'big'],
        ['DEL', 'big'],
        ['HGETALL', 'big'],
        ['HLEN', 'big'],
      ],
      'FLUSHALL / FLUSHDB and their options': [
        ...hsets('big', FIELDS, value),
        ['SET', 'a', '1'],
        ['FLUSHALL', 'ASYNC'],
        ['DBSIZE'],
        ['HGETALL', 'big'],
        ['SET', 'a', '2'],
        ['FLUSHDB', 'sync'],
        ['GET', 'a'],
        ['SET', 'a', '3'],
        ['FLUSHALL', 'SYNC'],
        ['FLUSHDB', 'ASYNC'],
        ['FLUSHALL', 'now'],
        ['FLUSHALL', 'ASYNC', 'SYNC'],
        ['DBSIZE'],
        ['KEYS', '*'],
      ],
    },
    new Set(['hkeys', 'hvals', 'hgetall', 'keys', 'exec']),
  );

  it('inside MULTI/EXEC a large namespace is one element of the reply, as in redis-server', async () => {
    const got: unknown[][] = [];
    for (const port of [servers.redis.port, servers.ours.port]) {
      const c = new Redis({ port, host: '127.0.0.1' });
      try {
        await c.flushall();
        for (const cmd of hsets('big', FIELDS, value)) await c.call(...(cmd as [string, ...string[]]));
        const res = (await c.multi().hlen('big').hkeys('big').hvals('big').exec())!.map(([err, v]) => {
          assert.equal(err, null);
          return Array.isArray(v) ? [...(v as string[])].sort() : v;
        });
        got.push(res);
      } finally {
        c.disconnect();
      }
    }
    assert.equal(got[0][0], FIELDS);
    assert.deepEqual(got[1], got[0]);
  });

  it('RESP3: HGETALL of a large namespace is the same map as redis-server sends', async () => {
    const replies: string[] = [];
    for (const port of [servers.redis.port, servers.ours.port]) {
      const c = await RawClient.connect(port);
      try {
        c.write(resp('HELLO', '3'));
        await c.reply();
        for (const cmd of [['FLUSHALL'], ...hsets('big', FIELDS, value)]) {
          c.write(resp(...cmd));
          await c.reply();
        }
        c.write(resp('HGETALL', 'big'));
        replies.push(sortedItems(await c.reply(), true));
        c.write(resp('HKEYS', 'big'));
        replies.push(sortedArray(await c.reply()));
      } finally {
        c.destroy();
      }
    }
    assert.ok(replies[0].startsWith(`%${FIELDS}\r\n`), replies[0].slice(0, 20));
    assert.equal(replies[2], replies[0]);
    assert.equal(replies[3], replies[1]);
  });
});

describe('HGETALL of a large namespace under a concurrent writer', () => {
  for (const asyncWrite of [false, true]) {
    it(`is one point in time: every reply has one round's values (async_write ${asyncWrite})`, async () => {
      const server = await startOurs({ async_write: asyncWrite });
      const reader = new Redis({ port: server.port, host: '127.0.0.1' });
      const writer = new Redis({ port: server.port, host: '127.0.0.1' });
      try {
        const n = 4000;
        const round = (r: number): Cmd => {
          const cmd: Cmd = ['HSET', 'ns'];
          for (let i = 0; i < n; i++) cmd.push(`f:${i}`, `r${r}`);
          return cmd;
        };
        // Each HSET sets every field in one command: at any point in time they all hold one round.
        await writer.call(...(round(0) as [string, ...string[]]));
        let rounds = 0;
        let writing = true;
        const writes = (async () => {
          while (writing && rounds < 2000) await writer.call(...(round(++rounds) as [string, ...string[]]));
        })();
        let overlapped = 0;
        const deadline = Date.now() + 20_000;
        for (let read = 0; read < 30 && (overlapped < 3 || read < 5) && Date.now() < deadline; read++) {
          const before = rounds;
          const reply = await reader.hgetall('ns');
          if (rounds > before) overlapped++;
          assert.equal(Object.keys(reply).length, n);
          const values = new Set(Object.values(reply));
          assert.equal(values.size, 1, `one reply mixes rounds ${[...values].slice(0, 5).join(', ')}`);
        }
        writing = false;
        await writes;
        // Otherwise the test would not have shown anything.
        assert.ok(overlapped >= 1, `no HGETALL overlapped a write (${rounds} rounds)`);
      } finally {
        reader.disconnect();
        writer.disconnect();
        await server.close();
      }
    });
  }
});

function flushedTables(dataDir: string, shards: number): number {
  let n = 0;
  for (let id = 0; id < shards; id++) {
    const db = new Database(shardPath(dataDir, id), { readonly: true });
    try {
      n += db.prepare("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name GLOB '*_flushed_*'").pluck().get() as number;
    } finally {
      db.close();
    }
  }
  return n;
}

/** MSET of `n` keys key:0… in commands of 1000 keys. */
async function fill(r: Redis, n: number, prefix = 'key'): Promise<void> {
  for (let i = 0; i < n; i += 1000) {
    const args: string[] = [];
    for (let j = i; j < Math.min(n, i + 1000); j++) args.push(`${prefix}:${j}`, 'v'.repeat(100));
    await r.mset(...args);
  }
}

describe('FLUSHALL and kill -9', () => {
  it('a server killed right after FLUSHALL comes back without the flushed data, and finishes the purge', async () => {
    const data = join(tempDir('blobasaur-flush-crash-'), 'data');
    const args = ['--data-dir', data, '--shards', '2'];
    const first = await spawnOurs(args);
    const r = new Redis({ port: first.port, host: '127.0.0.1', maxRetriesPerRequest: 0, retryStrategy: () => null });
    r.on('error', () => {});
    await fill(r, 60_000);
    for (const cmd of hsets('ns', 3000, () => 'v')) await r.call(...(cmd as [string, ...string[]]));
    assert.equal(await r.flushall(), 'OK');
    await r.set('after', 'flush');
    // Killed while the purge of 63,000 rows has barely started.
    first.proc.kill('SIGKILL');
    await first.exited;
    r.disconnect();
    const setAside = flushedTables(data, 2);

    const second = await spawnOurs(args);
    const r2 = new Redis({ port: second.port, host: '127.0.0.1' });
    try {
      assert.equal(await r2.dbsize(), 1);
      assert.deepEqual(await r2.keys('*'), ['after']);
      assert.equal(await r2.get('key:1'), null);
      assert.equal(await r2.hlen('ns'), 0);
      assert.deepEqual(await r2.hgetall('ns'), {});
      const deadline = Date.now() + 30_000;
      while (flushedTables(data, 2) > 0 && Date.now() < deadline) await new Promise((res) => setTimeout(res, 50));
      assert.equal(flushedTables(data, 2), 0, `tables set aside at the kill: ${setAside}; the purge did not finish`);
      assert.equal(await r2.dbsize(), 1);
      assert.equal(await r2.get('after'), 'flush');
    } finally {
      r2.disconnect();
      second.proc.kill('SIGTERM');
      await second.exited;
    }
  });
});

/** Sends HGETALL then PING on a raw socket and discards the reply's bytes (no parsing in this process); resolves with the byte count. */
function drainHgetall(port: number, ns: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = new Socket();
    let bytes = 0;
    let tail = '';
    s.on('data', (d: Buffer) => {
      bytes += d.length;
      tail = (tail + d.subarray(Math.max(0, d.length - 16)).toString('latin1')).slice(-16);
      if (tail.endsWith('+PONG\r\n')) {
        s.destroy();
        resolve(bytes);
      }
    });
    s.on('error', reject);
    s.connect(port, '127.0.0.1', () => s.write(Buffer.concat([resp('HGETALL', ns), resp('PING')])));
  });
}

describe('other clients while HGETALL of 200,000 fields and FLUSHALL of 300,000 keys run', () => {
  it('a probe client is never stalled for long (generous bound; the figures are in docs/benchmarks.md)', async () => {
    const server = await spawnOurs(['--data-dir', join(tempDir('blobasaur-bounded-'), 'data')]);
    const main = new Redis({ port: server.port, host: '127.0.0.1' });
    const probe = new Redis({ port: server.port, host: '127.0.0.1' });
    try {
      for (const cmd of hsets('big', 200_000, () => 'v'.repeat(100))) await main.call(...(cmd as [string, ...string[]]));
      await fill(main, 300_000);
      await probe.set('probe', 'x');
      let running = true;
      let slowest = 0;
      let gets = 0;
      const probing = (async () => {
        while (running && gets < 1_000_000) {
          const t = performance.now();
          await probe.get('probe');
          slowest = Math.max(slowest, performance.now() - t);
          gets++;
        }
      })();
      const bytes = await drainHgetall(server.port, 'big');
      assert.ok(bytes > 200_000 * 100, `HGETALL sent ${bytes} bytes`);
      assert.equal(await main.flushall(), 'OK');
      assert.equal(await main.dbsize(), 0);
      await new Promise((res) => setTimeout(res, 1000)); // the purge runs meanwhile
      running = false;
      await probing;
      // One synchronous read of the whole namespace took 0.5–1 s here; the steps take a few ms.
      assert.ok(slowest < 500, `slowest small GET ${slowest.toFixed(1)} ms over ${gets} GETs`);
    } finally {
      main.disconnect();
      probe.disconnect();
      server.proc.kill('SIGTERM');
      await server.exited;
    }
  });
});
