/**
 * Upgrading a data directory in place: one written the way releases before schema versions wrote
 * it (their SQL, their blobasaur.json, no user_version; rows with metadata, expiries, a gzip row and
 * namespaces) is opened by the real CLI and read back through a real client; every shard is then
 * stamped with the current schema version and the old rows are byte for byte as they were. A shard
 * stamped with a version from the future stops the server at start with a message naming the file.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import Database from 'better-sqlite3';
import { Redis } from 'ioredis';
import { ShardRing } from '../../src/storage/mpchash.js';
import { registerSlotFunction, SCHEMA_VERSION } from '../../src/storage/schema.js';
import { openFormat1Shard, writeFormat1Layout } from '../helpers/format1.js';
import { MAIN_JS, freePort, spawnOurs, tempDir } from '../helpers/servers.js';

const SHARDS = 3;
const PLAIN = 300;
const HOUR = 3_600_000;

const val = (i: number): string => `value-${i}-`.padEnd(20 + (i % 50), 'x');

/** A format 1 directory of SHARDS shards, rows placed as the previous release placed them. */
function writeFormat1Dir(data: string, now: number): void {
  mkdirSync(data, { recursive: true });
  writeFormat1Layout(data, SHARDS);
  const ring = new ShardRing(SHARDS);
  const dbs = Array.from({ length: SHARDS }, (_, s) => openFormat1Shard(join(data, `shard-${s}.db`)));
  const put = (key: string, data: Buffer, opts: { codec?: number; size?: number; expiresAt?: number | null; version?: number } = {}): void => {
    dbs[ring.shardOf(Buffer.from(key))]
      .prepare('INSERT INTO blobs (key, codec, size, created_at, updated_at, expires_at, version, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
      .run(Buffer.from(key), opts.codec ?? 0, opts.size ?? data.length, now - 5000, now - 1000, opts.expiresAt ?? null, opts.version ?? 0, data);
  };
  const hput = (ns: string, field: string, value: string, expiresAt: number | null = null): void => {
    dbs[ring.shardOf(Buffer.from(field))]
      .prepare('INSERT INTO ns_blobs (namespace, key, codec, size, created_at, updated_at, expires_at, version, data) VALUES (?, ?, 0, ?, ?, ?, ?, 3, ?)')
      .run(Buffer.from(ns), Buffer.from(field), value.length, now - 5000, now - 1000, expiresAt, Buffer.from(value));
  };
  for (let i = 0; i < PLAIN; i++) put(`plain:${i}`, Buffer.from(val(i)), { version: i % 4 });
  put('ttl', Buffer.from('lives an hour'), { expiresAt: now + HOUR });
  put('gone', Buffer.from('expired before the upgrade'), { expiresAt: now - 1000 });
  const text = 'compressed by the previous release '.repeat(40);
  put('gz', gzipSync(Buffer.from(text)), { codec: 1, size: text.length });
  for (let f = 0; f < 20; f++) hput('users', `u${f}`, `name-${f}`, f === 0 ? now + HOUR : null);
  hput('users', 'old', 'expired field', now - 1000);
  hput('cfg', 'mode', 'fast');
  for (const db of dbs) {
    assert.equal(db.pragma('user_version', { simple: true }), 0);
    db.close();
  }
}

function shardFiles(data: string): string[] {
  return Array.from({ length: SHARDS }, (_, s) => join(data, `shard-${s}.db`));
}

/** Every row of every shard, all columns as JSON, by table/namespace/key: to compare before and after the upgrade. */
function dump(data: string): Map<string, string> {
  const rows = new Map<string, string>();
  // Columns later migrations add are left out while null: rows from before checksums have none (migration
  // 3), and an upgraded row is not a chunked value (migration 5's blob columns): shown as the previous release wrote them.
  const text = (r: Record<string, unknown>): string =>
    JSON.stringify(
      Object.fromEntries(
        Object.entries(r)
          .filter(([k, v]) => !((k === 'checksum' || k === 'blob_id' || k === 'blob_stored') && v === null))
          .map(([k, v]) => [k, Buffer.isBuffer(v) ? v.toString('hex') : v]),
      ),
    );
  for (const file of shardFiles(data)) {
    const db = new Database(file, { readonly: true });
    // Stored columns only: schema 4's generated slot column is not data the upgrade may change.
    const cols = 'key, codec, size, created_at, updated_at, expires_at, version, data';
    for (const r of db.prepare(`SELECT ${cols} FROM blobs`).all() as { key: Buffer }[]) rows.set(`blobs//${r.key.toString()}`, text(r));
    for (const r of db.prepare(`SELECT namespace, ${cols} FROM ns_blobs`).all() as { namespace: Buffer; key: Buffer }[]) {
      rows.set(`ns_blobs/${r.namespace.toString()}/${r.key.toString()}`, text(r));
    }
    db.close();
  }
  return rows;
}

/** Rows, logical and stored bytes of the rows not expired at `now`, counted from the files. */
function totals(data: string, now: number): { rows: number; logical: number; stored: number } {
  const t = { rows: 0, logical: 0, stored: 0 };
  for (const file of shardFiles(data)) {
    const db = new Database(file, { readonly: true });
    for (const table of ['blobs', 'ns_blobs']) {
      const r = db
        .prepare(`SELECT count(*) AS n, sum(size) AS l, sum(length(data)) AS s FROM ${table} WHERE expires_at IS NULL OR expires_at > ?`)
        .get(now) as { n: number; l: number; s: number };
      t.rows += r.n;
      t.logical += r.l;
      t.stored += r.s;
    }
    db.close();
  }
  return t;
}

function versions(data: string): number[] {
  return shardFiles(data).map((file) => {
    const db = new Database(file, { readonly: true });
    try {
      return Number(db.pragma('user_version', { simple: true }));
    } finally {
      db.close();
    }
  });
}

describe('a data directory written before schema versions (format 1)', () => {
  it('opens, serves its data through a client, and is stamped with the current schema version', async () => {
    const data = join(tempDir('blobasaur-format1-'), 'data');
    const now = Date.now();
    writeFormat1Dir(data, now);
    const before = dump(data);
    assert.deepEqual(versions(data), [0, 0, 0]);
    const liveTotals = totals(data, now);

    const server = await spawnOurs(['--data-dir', data, '--shards', String(SHARDS)]);
    const r = new Redis({ port: server.port, host: '127.0.0.1', maxRetriesPerRequest: 0 });
    try {
      const keys = Array.from({ length: PLAIN }, (_, i) => `plain:${i}`);
      assert.deepEqual(await r.mget(...keys), keys.map((_, i) => val(i)));
      assert.equal(await r.get('gz'), 'compressed by the previous release '.repeat(40));
      assert.equal(await r.strlen('gz'), 'compressed by the previous release '.repeat(40).length);
      assert.equal(await r.get('ttl'), 'lives an hour');
      const ttl = await r.pttl('ttl');
      assert.ok(ttl > HOUR - 60_000 && ttl <= HOUR, `PTTL ttl = ${ttl}`);
      assert.equal(await r.get('gone'), null);
      assert.equal(await r.exists('gone'), 0);
      assert.equal(await r.pttl('plain:7'), -1);

      const users = await r.hgetall('users');
      assert.deepEqual(users, Object.fromEntries(Array.from({ length: 20 }, (_, f) => [`u${f}`, `name-${f}`])));
      assert.equal(await r.hexists('users', 'old'), 0);
      const fieldTtl = (await r.call('HPTTL', 'users', 'FIELDS', '2', 'u0', 'u1')) as number[];
      assert.ok(fieldTtl[0] > HOUR - 60_000 && fieldTtl[0] <= HOUR, `HPTTL users u0 = ${fieldTtl[0]}`);
      assert.equal(fieldTtl[1], -1);
      assert.equal(await r.hget('cfg', 'mode'), 'fast');
      assert.equal(await r.type('users'), 'hash');
      // Plain keys (the expired one not counted) plus the two namespaces.
      assert.equal(await r.dbsize(), PLAIN + 2 + 2);
      // Migration 2 counted the old rows; DBSIZE had the two expired ones swept before counting.
      assert.match(await r.info('keyspace'), new RegExp(`\r\ndb0:keys=${PLAIN + 4},expires=1,avg_ttl=0\r\n`));
      const info = await r.info('blobasaur');
      const field = (name: string): number => Number(new RegExp(`\r\n${name}:(\\d+)\r\n`).exec(info)?.[1]);
      assert.deepEqual(
        { rows: field('stored_values'), logical: field('logical_bytes'), stored: field('stored_bytes') },
        liveTotals,
      );

      // The upgraded files take writes as any other.
      assert.equal(await r.set('after', 'upgrade'), 'OK');
      assert.equal(await r.hset('users', 'u99', 'new'), 1);
    } finally {
      r.disconnect();
      server.proc.kill('SIGTERM');
      assert.equal(await server.exited, 0);
    }

    assert.deepEqual(versions(data), [SCHEMA_VERSION, SCHEMA_VERSION, SCHEMA_VERSION]);
    // Every row the previous release wrote is still there exactly (the sweeper may have deleted
    // the two that had expired); the two written since come on top.
    const after = dump(data);
    assert.equal(before.size, PLAIN + 3 + 22);
    for (const [id, row] of before) {
      if (id === 'blobs//gone' || id === 'ns_blobs/users/old') assert.ok([undefined, row].includes(after.get(id)), id);
      else assert.equal(after.get(id), row, id);
    }
    assert.deepEqual([...after.keys()].filter((id) => !before.has(id)).sort(), ['blobs//after', 'ns_blobs/users/u99']);
    for (const file of shardFiles(data)) {
      const db = new Database(file, { readonly: true });
      registerSlotFunction(db); // the slot indexes (schema 4) are checked with the same function
      assert.equal(db.pragma('integrity_check', { simple: true }), 'ok');
      db.close();
    }

    // Opened again, a stamped directory is served as is.
    const again = await spawnOurs(['--data-dir', data, '--shards', String(SHARDS)]);
    const r2 = new Redis({ port: again.port, host: '127.0.0.1', maxRetriesPerRequest: 0 });
    try {
      assert.equal(await r2.get('plain:299'), val(299));
      assert.equal(await r2.get('after'), 'upgrade');
      assert.equal(await r2.hget('users', 'u99'), 'new');
    } finally {
      r2.disconnect();
      again.proc.kill('SIGTERM');
      assert.equal(await again.exited, 0);
    }
    assert.deepEqual(versions(data), [SCHEMA_VERSION, SCHEMA_VERSION, SCHEMA_VERSION]);
  });

  it('a shard stamped by a newer blobasaur stops the server at start, naming the file', async () => {
    const data = join(tempDir('blobasaur-format1-newer-'), 'data');
    writeFormat1Dir(data, Date.now());
    const newer = join(data, 'shard-1.db');
    const db = new Database(newer);
    db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    db.close();

    const port = await freePort();
    const proc = spawn(process.execPath, [MAIN_JS, '--addr', `127.0.0.1:${port}`, '--data-dir', data, '--shards', String(SHARDS)], {
      cwd: tempDir(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    proc.stdout.resume();
    const timer = setTimeout(() => proc.kill('SIGKILL'), 15_000);
    const code = await new Promise<number | null>((resolve) => proc.once('exit', resolve));
    clearTimeout(timer);
    assert.equal(code, 1);
    assert.equal(
      stderr,
      `blobasaur: ${newer} has schema version ${SCHEMA_VERSION + 1}: it was written by a newer blobasaur ` +
        `(this one reads versions up to ${SCHEMA_VERSION}). Run that newer version, or restore a backup taken before the upgrade.\n`,
    );
    // The newer file is not touched.
    const check = new Database(newer, { readonly: true });
    assert.equal(check.pragma('user_version', { simple: true }), SCHEMA_VERSION + 1);
    check.close();
  });
});
