/**
 * `blobasaur vacuum`: incremental with a budget, incremental to the end, full; new shards use
 * incremental auto_vacuum. Exact free-page counts are read from the files with SQLite.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { Redis } from 'ioredis';
import { MAIN_JS, spawnOurs, tempDir } from '../helpers/servers.js';
import { registerSlotFunction, shardPath } from '../../src/storage/schema.js';

const execFileP = promisify(execFile);
const SHARDS = 2;

function pages(file: string): { free: number; count: number; size: number; autoVacuum: number } {
  const db = new Database(file, { readonly: true });
  try {
    return {
      free: Number(db.pragma('freelist_count', { simple: true })),
      count: Number(db.pragma('page_count', { simple: true })),
      size: Number(db.pragma('page_size', { simple: true })),
      autoVacuum: Number(db.pragma('auto_vacuum', { simple: true })),
    };
  } finally {
    db.close();
  }
}

function vacuum(args: string[]): Promise<{ stdout: string; stderr: string }> {
  return execFileP(process.execPath, [MAIN_JS, 'vacuum', ...args]);
}

const big = (i: number): string => `v${i}:`.padEnd(16 * 1024, 'x');

describe('vacuum', () => {
  it('frees pages within a budget, then all of them, then rewrites; the data survives', async () => {
    const data = join(tempDir('blobasaur-ops-vacuum-'), 'data');
    const server = await spawnOurs(['--data-dir', data, '--shards', String(SHARDS)]);
    const r = new Redis({ port: server.port, host: '127.0.0.1', maxRetriesPerRequest: 0 });
    try {
      const p = r.pipeline();
      for (let i = 0; i < 600; i++) p.set(`k${i}`, big(i));
      await p.exec();
      const d = r.pipeline();
      for (let i = 100; i < 600; i++) d.del(`k${i}`);
      await d.exec();
    } finally {
      r.disconnect();
      server.proc.kill('SIGTERM');
      assert.equal(await server.exited, 0);
    }
    const files = Array.from({ length: SHARDS }, (_, i) => shardPath(data, i));
    const before = files.map(pages);
    for (const b of before) {
      assert.equal(b.autoVacuum, 2, 'new shards are created with auto_vacuum = INCREMENTAL');
      assert.equal(b.size, 4096);
      assert.ok(b.free > 256, `a shard has ${b.free} free pages after the deletes`);
    }

    // 1 MiB budget = 256 pages of 4 KiB per shard.
    const one = await vacuum(['--data-dir', data, '--budget-mb', '1']);
    const mid = files.map(pages);
    mid.forEach((m, i) => {
      assert.equal(m.free, before[i].free - 256);
      assert.equal(m.count, before[i].count - 256);
      assert.equal(statSync(files[i]).size, m.count * m.size);
    });
    assert.equal(
      one.stdout.split('\n').filter((l) => l.startsWith('shard ')).map((l) => l.replace(/[\d.]+ MiB -> [\d.]+ MiB/, 'X')).join('\n'),
      before.map((b, i) => `shard ${i}: X, free pages ${b.free} -> ${b.free - 256}`).join('\n'),
    );
    assert.match(one.stdout, new RegExp(`\\nvacuum \\(incremental\\) of ${data}: [\\d.]+ MiB -> [\\d.]+ MiB, [\\d.]+ MiB returned\\n$`));

    await vacuum(['--data-dir', data]);
    const after = files.map(pages);
    after.forEach((a, i) => {
      assert.equal(a.free, 0);
      // Every free page is gone, and so may be pointer-map pages that only described the freed tail.
      assert.ok(a.count <= before[i].count - before[i].free && a.count >= before[i].count - before[i].free - 2, `${a.count}`);
      assert.equal(statSync(files[i]).size, a.count * a.size);
    });

    const full = await vacuum(['--data-dir', data, '--mode', 'full']);
    assert.match(full.stdout, /^shard 0: .*free pages 0 -> 0\nshard 1: .*free pages 0 -> 0\nvacuum \(full\) of /);
    for (const f of files) {
      const db = new Database(f, { readonly: true });
      registerSlotFunction(db); // the slot indexes (schema 4) are checked with the same function
      assert.equal(db.pragma('integrity_check', { simple: true }), 'ok');
      assert.equal(db.pragma('auto_vacuum', { simple: true }), 2);
      db.close();
    }

    const again = await spawnOurs(['--data-dir', data, '--shards', String(SHARDS)]);
    const c = new Redis({ port: again.port, host: '127.0.0.1', maxRetriesPerRequest: 0 });
    try {
      assert.equal(await c.dbsize(), 100);
      const got = await c.pipeline(Array.from({ length: 100 }, (_, i) => ['get', `k${i}`])).exec();
      got!.forEach(([err, v], i) => {
        assert.equal(err, null);
        assert.equal(v, big(i));
      });
      assert.equal(await c.get('k100'), null);
    } finally {
      c.disconnect();
      again.proc.kill('SIGTERM');
      assert.equal(await again.exited, 0);
    }
  });

  it('incremental runs while the server takes writes; full refuses a running server', async () => {
    const dir = tempDir('blobasaur-ops-vacuum-live-');
    const data = join(dir, 'data');
    // The server's own background vacuum would return the pages before the CLI gets to them.
    writeFileSync(join(dir, 'config.toml'), 'auto_vacuum = false\n');
    const server = await spawnOurs(['--config', join(dir, 'config.toml'), '--data-dir', data, '--shards', '1']);
    const r = new Redis({ port: server.port, host: '127.0.0.1', maxRetriesPerRequest: 0 });
    const file = shardPath(data, 0);
    let stop = false;
    let writes = 0;
    let writer: Promise<void> = Promise.resolve();
    try {
      await r.pipeline(Array.from({ length: 300 }, (_, i) => ['set', `k${i}`, big(i)])).exec();
      await r.pipeline(Array.from({ length: 300 }, (_, i) => ['del', `k${i}`])).exec();
      writer = (async () => {
        while (!stop) {
          assert.equal(await r.set(`live${writes % 50}`, big(writes)), 'OK');
          writes++;
        }
      })();
      assert.ok(pages(file).free > 1000);
      const out = await vacuum(['--data-dir', data, '--budget-mb', '2']);
      // The writer reuses and frees pages meanwhile, so only the direction is exact here.
      const m = /^shard 0: [\d.]+ MiB -> [\d.]+ MiB, free pages (\d+) -> (\d+)\n/.exec(out.stdout);
      assert.ok(m !== null, out.stdout);
      assert.ok(Number(m[2]) < Number(m[1]) - 256, out.stdout);
      await assert.rejects(vacuum(['--data-dir', data, '--mode', 'full']), (err: { code: number; stderr: string }) => {
        assert.equal(err.code, 1);
        assert.equal(err.stderr, `blobasaur vacuum: failed: ${file} is in use by another process (is the server running?); stop the server before a full vacuum\n`);
        return true;
      });
      stop = true;
      await writer;
      assert.ok(writes > 0);
      assert.equal(await r.get(`live${(writes - 1) % 50}`), big(writes - 1));
    } finally {
      stop = true;
      await writer.catch(() => {});
      r.disconnect();
      server.proc.kill('SIGTERM');
      assert.equal(await server.exited, 0);
    }
    const db = new Database(file, { readonly: true });
    registerSlotFunction(db); // the slot indexes (schema 4) are checked with the same function
    assert.equal(db.pragma('integrity_check', { simple: true }), 'ok');
    db.close();
  });

  it('rejects a bad mode and a directory that is not a data directory', async () => {
    await assert.rejects(vacuum(['--data-dir', tempDir(), '--mode', 'quick']), (err: { code: number; stderr: string }) => {
      assert.equal(err.code, 2);
      assert.match(err.stderr, /^blobasaur vacuum: --mode must be incremental or full, got "quick"\n/);
      return true;
    });
    const empty = tempDir();
    await assert.rejects(vacuum(['--data-dir', empty]), (err: { code: number; stderr: string }) => {
      assert.equal(err.code, 1);
      assert.equal(err.stderr, `blobasaur vacuum: failed: ${empty} has no blobasaur.json: not a blobasaur data directory\n`);
      return true;
    });
  });
});
