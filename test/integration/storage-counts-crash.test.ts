/**
 * The counts behind DBSIZE, INFO keyspace and INFO blobasaur are kept by SQLite in the same
 * transaction as each write, so a server killed with SIGKILL in the middle of a stream of writes
 * comes back with counts that equal a recount of the rows it had committed.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Redis } from 'ioredis';
import { shardPath } from '../../src/storage/schema.js';
import { spawnOurs, tempDir } from '../helpers/servers.js';

const SHARDS = 3;

function recount(data: string): { keys: number; rows: number; logical: number; stored: number } {
  const t = { keys: 0, rows: 0, logical: 0, stored: 0 };
  const namespaces = new Set<string>();
  for (let id = 0; id < SHARDS; id++) {
    const db = new Database(shardPath(data, id), { readonly: true });
    try {
      t.keys += db.prepare('SELECT count(*) FROM blobs').pluck().get() as number;
      for (const ns of db.prepare('SELECT DISTINCT namespace FROM ns_blobs').pluck().all() as Buffer[]) namespaces.add(ns.toString('latin1'));
      for (const table of ['blobs', 'ns_blobs']) {
        const r = db.prepare(`SELECT count(*) AS n, coalesce(sum(size), 0) AS l, coalesce(sum(length(data)), 0) AS s FROM ${table}`).get() as {
          n: number;
          l: number;
          s: number;
        };
        t.rows += r.n;
        t.logical += r.l;
        t.stored += r.s;
      }
    } finally {
      db.close();
    }
  }
  t.keys += namespaces.size;
  return t;
}

describe('maintained counts after kill -9', () => {
  it('equal a recount of the committed rows when the server comes back', async () => {
    const data = join(tempDir('blobasaur-counts-crash-'), 'data');
    const args = ['--data-dir', data, '--shards', String(SHARDS)];
    const first = await spawnOurs(args);
    const r = new Redis({ port: first.port, host: '127.0.0.1', maxRetriesPerRequest: 0, lazyConnect: true, enableOfflineQueue: false, retryStrategy: () => null });
    await r.connect();
    r.on('error', () => {});
    // A steady stream of writes of every kind, bounded in count; the kill lands in the middle.
    let sent = 0;
    const writer = (async () => {
      for (let i = 0; i < 20_000; i++) {
        const p = r.pipeline();
        for (let j = 0; j < 50; j++, sent++) {
          const n = sent % 997;
          if (n % 5 === 0) p.del(`k${n}`);
          else if (n % 5 === 1) p.hset(`h${n % 13}`, `f${n}`, 'x'.repeat(n % 200));
          else if (n % 5 === 2) p.hdel(`h${n % 13}`, `f${(n * 7) % 997}`);
          else p.set(`k${n}`, 'y'.repeat(n % 300));
        }
        await p.exec();
      }
    })().catch(() => {});
    const deadline = Date.now() + 20_000;
    while (sent < 5_000 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));
    first.proc.kill('SIGKILL');
    await first.exited;
    await writer;
    r.disconnect();

    const second = await spawnOurs(args);
    const c = new Redis({ port: second.port, host: '127.0.0.1', maxRetriesPerRequest: 0 });
    try {
      const info = await c.info('blobasaur');
      const field = (name: string): number => Number(new RegExp(`\r\n${name}:(\\d+)\r\n`).exec(info)?.[1]);
      const truth = recount(data);
      assert.ok(truth.rows > 0, 'some writes were committed before the kill');
      assert.deepEqual(
        { keys: await c.dbsize(), rows: field('stored_values'), logical: field('logical_bytes'), stored: field('stored_bytes') },
        truth,
      );
    } finally {
      c.disconnect();
      second.proc.kill('SIGTERM');
      await second.exited;
    }
  });
});
