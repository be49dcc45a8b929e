/**
 * DEL / UNLINK of a large namespace (issue 17 point 4): the reply, the counts and every read are
 * those of a deleted hash at once, while the rows are purged in the background in bounded steps;
 * nothing comes back after a kill -9, and fields written after the DEL survive the purge.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { existsSync } from 'node:fs';
import Database from 'better-sqlite3';
import { Redis } from 'ioredis';
import { compareServersForSuite, itMatchesRedis, type Cmd } from '../helpers/compare.js';
import { spawnOurs, tempDir } from '../helpers/servers.js';
import { shardPath } from '../../src/storage/schema.js';

/** Over the per-shard size a DEL deletes at once (100 fields) on every shard of four. */
const FIELDS = 6000;

/** HSET ns with fields f:0… in commands of up to 500 pairs. */
function hsets(ns: string, n: number, value: (i: number) => string, from = 0): Cmd[] {
  const out: Cmd[] = [];
  for (let i = from; i < from + n; i += 500) {
    const cmd: Cmd = ['HSET', ns];
    for (let j = i; j < Math.min(from + n, i + 500); j++) cmd.push(`f:${j}`, value(j));
    out.push(cmd);
  }
  return out;
}

/** Tombstones and rows of ns_blobs over the shard files, read beside the running server. */
function onDisk(dataDir: string, shards: number): { tombstones: number; rows: number } {
  let tombstones = 0;
  let rows = 0;
  for (let id = 0; id < shards; id++) {
    const path = shardPath(dataDir, id);
    if (!existsSync(path)) continue;
    const db = new Database(path, { readonly: true });
    try {
      tombstones += Number(db.prepare('SELECT count(*) FROM ns_tombstones').pluck().get());
      rows += Number(db.prepare('SELECT count(*) FROM ns_blobs').pluck().get());
    } finally {
      db.close();
    }
  }
  return { tombstones, rows };
}

async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('DEL / UNLINK of a large namespace against redis-server', () => {
  const servers = compareServersForSuite();
  const value = (i: number): string => `value-${i}-${'x'.repeat(i % 100)}`;

  itMatchesRedis(
    servers.ports,
    {
      [`DEL of ${FIELDS} fields, then reads, counts and writes to the same name`]: [
        ...hsets('big', FIELDS, value),
        ['SET', 'plain', '1'],
        ['DBSIZE'],
        ['DEL', 'big', 'plain', 'missing'],
        ['EXISTS', 'big'],
        ['TYPE', 'big'],
        ['HLEN', 'big'],
        ['HGET', 'big', 'f:1'],
        ['HEXISTS', 'big', 'f:5999'],
        ['HGETALL', 'big'],
        ['DBSIZE'],
        ['HSET', 'big', 'f:1', 'again', 'new', 'field'],
        ['HLEN', 'big'],
        ['HGETALL', 'big'],
        ['HSETNX', 'big', 'f:2', 'x'],
        ['HINCRBY', 'big', 'f:3', '5'],
        ['HDEL', 'big', 'f:4', 'new'],
        ['HGETALL', 'big'],
        ['DBSIZE'],
        ['DEL', 'big'],
        ['EXISTS', 'big'],
        ['DBSIZE'],
      ],
      [`UNLINK of ${FIELDS} fields twice over, and KEYS / SCAN after it`]: [
        ...hsets('big', FIELDS, value),
        ...hsets('small', 10, value),
        ['UNLINK', 'big'],
        ...hsets('big', FIELDS, value, 3000),
        ['HLEN', 'big'],
        ['UNLINK', 'big', 'small'],
        ['HLEN', 'big'],
        ['KEYS', '*'],
        ['SCAN', '0', 'COUNT', '1000'],
        ['DBSIZE'],
        ['HSET', 'big', 'a', '1'],
        ['KEYS', '*'],
      ],
    },
    new Set(['hgetall', 'keys']),
  );

  it('WATCH of a namespace sees its DEL, as in redis-server', async () => {
    for (const port of [servers.redis.port, servers.ours.port]) {
      const a = new Redis({ port, host: '127.0.0.1' });
      const b = new Redis({ port, host: '127.0.0.1' });
      try {
        await a.flushall();
        for (const cmd of hsets('big', FIELDS, value)) await a.call(...(cmd as [string, ...string[]]));
        await a.watch('big');
        assert.equal(await b.del('big'), 1);
        assert.equal(await a.multi().set('x', '1').exec(), null, `port ${port}: EXEC after the watched hash was deleted`);
        assert.equal(await a.exists('x'), 0);
        // DEL of a name that does not exist touches nothing.
        await a.watch('big');
        assert.equal(await b.del('big'), 0);
        assert.deepEqual(await a.multi().set('x', '1').exec(), [[null, 'OK']], `port ${port}`);
      } finally {
        a.disconnect();
        b.disconnect();
      }
    }
  });

  it('the rows are still on disk when DEL answers, and the purge deletes them all but those written after', async () => {
    const r = new Redis({ port: servers.ours.port, host: '127.0.0.1' });
    try {
      await r.flushall();
      await until(() => onDisk(servers.ours.dataDir, 4).rows === 0, 30_000, 'the purge of FLUSHALL');
      for (const cmd of hsets('big', FIELDS * 3, value)) await r.call(...(cmd as [string, ...string[]]));
      assert.equal(await r.del('big'), 1);
      assert.equal(await r.hset('big', 'after', 'del'), 1);
      const right = onDisk(servers.ours.dataDir, 4);
      // DEL did not delete the rows on the event loop: they wait under tombstones for the purger.
      assert.ok(right.tombstones >= 1, `tombstones right after DEL: ${right.tombstones}`);
      assert.ok(right.rows > FIELDS, `rows right after DEL: ${right.rows}`);
      assert.equal(await r.dbsize(), 1);
      assert.equal(await r.hlen('big'), 1);
      await until(() => onDisk(servers.ours.dataDir, 4).tombstones === 0, 60_000, 'the purge of the DEL');
      assert.deepEqual(onDisk(servers.ours.dataDir, 4), { tombstones: 0, rows: 1 });
      assert.deepEqual(await r.hgetall('big'), { after: 'del' });
      const info = await r.info('blobasaur');
      assert.match(info, /\r\n/);
    } finally {
      r.disconnect();
    }
  });
});

describe('DEL of a large namespace and kill -9', () => {
  it('a server killed right after DEL comes back without the deleted fields, keeps those written after, and finishes the purge', async () => {
    const data = join(tempDir('blobasaur-delns-crash-'), 'data');
    const args = ['--data-dir', data, '--shards', '2'];
    const first = await spawnOurs(args);
    const r = new Redis({ port: first.port, host: '127.0.0.1', maxRetriesPerRequest: 0, retryStrategy: () => null });
    r.on('error', () => {});
    for (const cmd of hsets('ns', 20_000, () => 'v'.repeat(50))) await r.call(...(cmd as [string, ...string[]]));
    await r.hset('other', 'f', 'kept');
    assert.equal(await r.del('ns'), 1);
    assert.equal(await r.hset('ns', 'f:7', 'after', 'new', 'after'), 2);
    // Killed while the purge of 20,000 rows has barely started.
    first.proc.kill('SIGKILL');
    await first.exited;
    r.disconnect();
    const atKill = onDisk(data, 2);
    assert.ok(atKill.tombstones >= 1, `tombstones at the kill: ${atKill.tombstones}`);

    const second = await spawnOurs(args);
    const r2 = new Redis({ port: second.port, host: '127.0.0.1' });
    try {
      assert.equal(await r2.dbsize(), 2);
      assert.equal(await r2.hlen('ns'), 2);
      assert.deepEqual(await r2.hgetall('ns'), { 'f:7': 'after', new: 'after' });
      assert.equal(await r2.hget('ns', 'f:8'), null);
      await until(() => onDisk(data, 2).tombstones === 0, 60_000, 'the purge after the restart');
      assert.deepEqual(onDisk(data, 2), { tombstones: 0, rows: 3 });
      assert.deepEqual(await r2.hgetall('ns'), { 'f:7': 'after', new: 'after' });
      assert.equal(await r2.hget('other', 'f'), 'kept');
      assert.equal(await r2.dbsize(), 2);
    } finally {
      r2.disconnect();
      second.proc.kill('SIGTERM');
      await second.exited;
    }
  });
});
