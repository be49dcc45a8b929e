/**
 * The offline tools on a data directory holding values stored in chunks (over 1 MiB):
 * `blobasaur migrate` moves them (4 → 6 shards with a SIGKILL mid-way, then 6 → 3) and they stay
 * chunked, each in its home shard's chunk file; `blobasaur check` verifies the chunk files and
 * names the key whose chunk fails its CRC-32; `blobasaur repair` saves every sound blob and its
 * rows, and names the key it lost. Every value is read back byte for byte through a server.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { Redis } from 'ioredis';
import { ShardRing } from '../../src/storage/mpchash.js';
import { chunkPath, shardPath } from '../../src/storage/schema.js';
import { MAIN_JS, spawnOurs, tempDir } from '../helpers/servers.js';

const execFileP = promisify(execFile);
const MiB = 1024 * 1024;
const INLINE = 300;

async function tool(args: string[]): Promise<{ code: number; out: string; stdout: string }> {
  try {
    const { stdout, stderr } = await execFileP(process.execPath, [MAIN_JS, ...args]);
    return { code: 0, out: stdout + stderr, stdout };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, out: e.stdout + e.stderr, stdout: e.stdout };
  }
}

/** Runs `blobasaur migrate`, SIGKILLed at its first progress line when `kill` is set. */
function migrate(data: string, to: number, kill: boolean): Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string }> {
  const proc = spawn(process.execPath, [MAIN_JS, 'migrate', '--data-dir', data, '--to-shards', String(to), '--batch', '5'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr.on('data', (d: Buffer) => {
    out += d.toString();
    if (kill && /rows scanned/.test(out) && proc.exitCode === null) proc.kill('SIGKILL');
  });
  return new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal, out })));
}

/** A value with a marker no other value holds, then random (incompressible) bytes. */
function valueWith(marker: string, size: number): Buffer {
  const v = randomBytes(size);
  Buffer.from(marker).copy(v, 0);
  return v;
}

async function serve(data: string, shards: number, f: (r: Redis) => Promise<void>): Promise<void> {
  const server = await spawnOurs(['--data-dir', data, '--shards', String(shards)]);
  const r = new Redis({ port: server.port, host: '127.0.0.1', maxRetriesPerRequest: 0 });
  try {
    await f(r);
  } finally {
    r.disconnect();
    server.proc.kill('SIGTERM');
    assert.equal(await server.exited, 0);
  }
}

/** Chunked rows per shard file: [key, blob_id] of plain keys and namespaced fields. */
function chunkedRows(data: string, shards: number): Map<number, string[]> {
  const out = new Map<number, string[]>();
  for (let s = 0; s < shards; s++) {
    const db = new Database(shardPath(data, s), { readonly: true });
    try {
      const keys = [
        ...(db.prepare('SELECT key FROM blobs WHERE blob_id IS NOT NULL').pluck().all() as Buffer[]),
        ...(db.prepare('SELECT key FROM ns_blobs WHERE blob_id IS NOT NULL').pluck().all() as Buffer[]),
      ].map((k) => k.toString());
      out.set(s, keys);
    } finally {
      db.close();
    }
  }
  return out;
}

describe('migrate, check and repair with values stored in chunks', () => {
  it('moves chunked values between shards, verifies chunk files, salvages what is readable', async () => {
    const data = join(tempDir('blobasaur-ops-chunks-'), 'data');
    const values = new Map<string, Buffer>();
    const big = ['c:over', 'c:three', 'c:five', 'c:copy', 'c:shared'];
    await serve(data, 4, async (r) => {
      const p = r.pipeline();
      for (let i = 0; i < INLINE; i++) p.set(`k:${i}`, `inline-${i}`);
      await p.exec();
      const set = async (k: string, v: Buffer): Promise<void> => {
        assert.equal(await r.set(k, v), 'OK');
        values.set(k, v);
      };
      await set('c:over', valueWith('MARK-OVER', MiB + 1));
      await set('c:three', valueWith('MARK-THREE', 3 * MiB));
      await set('c:five', valueWith('MARK-FIVE', 5 * MiB));
      assert.equal(await r.append('c:five', 'tail'), 5 * MiB + 4);
      values.set('c:five', Buffer.concat([values.get('c:five')!, Buffer.from('tail')]));
      await set('c:shared', valueWith('MARK-SHARED', 2 * MiB));
      assert.equal(await r.copy('c:shared', 'c:copy'), 1);
      values.set('c:copy', values.get('c:shared')!);
      const field = valueWith('MARK-FIELD', 2 * MiB + 7);
      await r.hset('h', 'f', field);
      values.set('h/f', field);
    });
    const readAll = async (r: Redis, where: string): Promise<void> => {
      for (let i = 0; i < INLINE; i++) assert.equal(await r.get(`k:${i}`), `inline-${i}`, `${where}: k:${i}`);
      for (const [k, v] of values) {
        const got = k === 'h/f' ? await r.hgetBuffer('h', 'f') : await r.getBuffer(k);
        assert.ok(got !== null && got.equals(v), `${where}: ${k} differs`);
      }
      assert.equal(await r.dbsize(), INLINE + big.length + 1);
    };

    const clean = await tool(['check', '--data-dir', data]);
    assert.equal(clean.code, 0, clean.out);
    assert.match(clean.out, / stored in chunks \(\d+ chunks\)/);

    // 4 -> 6, killed at its first progress line, then finished.
    const killed = await migrate(data, 6, true);
    assert.equal(killed.signal, 'SIGKILL', killed.out);
    const done = await migrate(data, 6, false);
    assert.equal(done.code, 0, done.out);
    assert.match(done.out, /migrated .* from 4 to 6 shards \(resumed\): \d+ rows verified/);
    // Still chunked, each in its home shard.
    const ring6 = new ShardRing(6);
    const rows6 = chunkedRows(data, 6);
    const chunkedKeys = [...rows6.values()].flat().sort();
    assert.deepEqual(chunkedKeys, [...big, 'f'].sort());
    for (const [s, keys] of rows6) for (const k of keys) assert.equal(ring6.shardOf(Buffer.from(k)), s, `${k} in shard ${s}`);
    const check6 = await tool(['check', '--data-dir', data]);
    assert.equal(check6.code, 0, check6.out);
    await serve(data, 6, (r) => readAll(r, 'after 4 -> 6'));

    const shrink = await migrate(data, 3, false);
    assert.equal(shrink.code, 0, shrink.out);
    for (const s of [3, 4, 5]) assert.equal(existsSync(chunkPath(data, s)), false);
    await serve(data, 3, (r) => readAll(r, 'after 6 -> 3'));
    const check3 = await tool(['check', '--data-dir', data]);
    assert.equal(check3.code, 0, check3.out);
    assert.doesNotMatch(check3.out, /orphan/, 'the server reclaimed what the kill left');

    // One flipped byte in a chunk of c:three: check names the key, repair loses only it.
    const home = new ShardRing(3).shardOf(Buffer.from('c:three'));
    const file = chunkPath(data, home);
    {
      // Through SQL: freed pages may still hold old copies of the bytes, so a search of the file
      // could find a dead one. The chunk's CRC-32 stays as it was.
      const sdb = new Database(shardPath(data, home), { readonly: true });
      const blob = sdb.prepare('SELECT blob_id FROM blobs WHERE key = ?').pluck().get(Buffer.from('c:three')) as number;
      sdb.close();
      const cdb = new Database(file);
      const chunk = cdb.prepare('SELECT c.id, c.data FROM blob_chunks m JOIN chunks c ON c.id = m.chunk_id WHERE m.blob_id = ? AND m.seq = 0').get(blob) as { id: number; data: Buffer };
      chunk.data[2] ^= 0x10;
      cdb.prepare('UPDATE chunks SET data = ? WHERE id = ?').run(chunk.data, chunk.id);
      cdb.pragma('wal_checkpoint(TRUNCATE)');
      cdb.close();
    }
    const damaged = await tool(['check', '--data-dir', data]);
    assert.equal(damaged.code, 1, damaged.out);
    assert.match(damaged.out, new RegExp(`^shard ${home} \\(.*\\): DAMAGED\\n {2}stored value of key 'c:three' cannot be read: chunk 0 of blob \\d+ fails its CRC-32 check$`, 'm'));
    const repaired = await tool(['repair', '--data-dir', data]);
    assert.equal(repaired.code, 0, repaired.out);
    assert.match(repaired.out, new RegExp(`^shard ${home}: \\d+ rows saved, 1 lost; damaged file kept as .*\\n {2}lost: key 'c:three'$`, 'm'));
    assert.ok(existsSync(`${file}.corrupt`), 'the damaged chunk file is kept');
    const after = await tool(['check', '--data-dir', data]);
    assert.equal(after.code, 0, after.out);
    values.delete('c:three');
    big.splice(big.indexOf('c:three'), 1);
    await serve(data, 3, async (r) => {
      assert.equal(await r.get('c:three'), null);
      await readAll(r, 'after the repair');
    });
  });
});
