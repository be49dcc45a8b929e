/**
 * Online backup under write load: `blobasaur backup --to DIR` from another process, and
 * SAVE/BGSAVE/LASTSAVE inside the server. A backup must restore (a server started on it) with
 * every write acknowledged before it began, pass integrity_check, list every shard in its
 * manifest, and be consistent per shard: a sequential writer's keys present in a shard's copy are
 * exactly a prefix of the writes that went to that shard.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { Redis } from 'ioredis';
import { ShardRing } from '../../src/storage/mpchash.js';
import { MAIN_JS, spawnOurs, tempDir, type Child } from '../helpers/servers.js';
import { registerSlotFunction, shardPath } from '../../src/storage/schema.js';

const execFileP = promisify(execFile);
const SHARDS = 4;
const PRE = 2000;

function value(i: number): string {
  return `value-${i}-`.padEnd(300, String.fromCharCode(97 + (i % 26)));
}

function client(port: number): Redis {
  return new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 0, enableReadyCheck: false });
}

async function writePre(r: Redis): Promise<void> {
  const p = r.pipeline();
  for (let i = 0; i < PRE; i++) p.set(`pre:${i}`, value(i));
  for (let i = 0; i < 50; i++) p.hset(`ns:${i % 5}`, `field:${i}`, value(i));
  const res = await p.exec();
  assert.ok(res !== null && res.every(([err]) => err === null));
}

/** A sequential writer: each SET is acknowledged before the next is sent. */
function startLiveWriter(r: Redis): { acked: () => number; stop: () => Promise<number> } {
  let stopped = false;
  let acked = 0;
  const done = (async () => {
    while (!stopped) {
      await r.set(`live:${acked}`, value(acked));
      acked++;
    }
  })();
  return {
    acked: () => acked,
    stop: async () => {
      stopped = true;
      await done;
      return acked;
    },
  };
}

/** Checks one backup directory's files directly: integrity, manifest, per-shard prefix of live writes. */
function checkBackupFiles(dir: string, acked: number): { liveKept: number } {
  const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as {
    num_shards: number;
    shards: { shard: number; file: string; rows: number | null; integrity: string | null }[];
  };
  assert.equal(manifest.num_shards, SHARDS);
  assert.deepEqual(manifest.shards.map((s) => s.file), ['shard-0.db', 'shard-1.db', 'shard-2.db', 'shard-3.db']);
  assert.deepEqual(JSON.parse(readFileSync(join(dir, 'blobasaur.json'), 'utf8')), { format: 1, num_shards: SHARDS });
  const ring = new ShardRing(SHARDS);
  let liveKept = 0;
  for (const s of manifest.shards) {
    const db = new Database(join(dir, s.file), { readonly: true });
    try {
      registerSlotFunction(db); // the slot indexes (schema 4) are checked with the same function
      assert.equal(db.pragma('integrity_check', { simple: true }), 'ok');
      const rows = Number(db.prepare('SELECT (SELECT count(*) FROM blobs) + (SELECT count(*) FROM ns_blobs)').pluck().get());
      if (s.rows !== null) assert.equal(s.rows, rows, `manifest rows of ${s.file}`);
      const live = new Set(
        (db.prepare("SELECT key FROM blobs WHERE key >= X'6c6976653a' AND key < X'6c6976653b'").pluck().all() as Buffer[]).map((k) => Number(k.toString().slice(5))),
      );
      // The live writes that went to this shard, in order; the copy must hold a prefix of them.
      const sent = Array.from({ length: acked }, (_, i) => i).filter((i) => ring.shardOf(Buffer.from(`live:${i}`)) === s.shard);
      const prefix = sent.findIndex((i) => !live.has(i));
      const kept = prefix < 0 ? sent.length : prefix;
      assert.equal(live.size, kept, `shard ${s.shard}: live keys in the copy are not a prefix of the writes (${live.size} present, prefix ${kept})`);
      liveKept += kept;
    } finally {
      db.close();
    }
  }
  return { liveKept };
}

/** Starts a server on the backup and reads everything written before the backup began. */
async function checkRestore(dir: string, liveKept: number): Promise<void> {
  const restored = await spawnOurs(['--data-dir', dir, '--shards', String(SHARDS)]);
  const r = client(restored.port);
  try {
    const p = r.pipeline();
    for (let i = 0; i < PRE; i++) p.get(`pre:${i}`);
    for (let i = 0; i < 50; i++) p.hget(`ns:${i % 5}`, `field:${i}`);
    const res = (await p.exec())!;
    for (let i = 0; i < PRE; i++) assert.equal(res[i][1], value(i), `pre:${i}`);
    for (let i = 0; i < 50; i++) assert.equal(res[PRE + i][1], value(i), `ns field ${i}`);
    assert.equal(await r.dbsize(), PRE + 5 + liveKept);
  } finally {
    r.disconnect();
    await stop(restored);
  }
}

async function stop(c: Child): Promise<void> {
  c.proc.kill('SIGTERM');
  assert.equal(await c.exited, 0);
}

describe('online backup', () => {
  it('blobasaur backup --to DIR under write load restores with every acknowledged write', async () => {
    const data = join(tempDir('blobasaur-ops-backup-'), 'data');
    const server = await spawnOurs(['--data-dir', data, '--shards', String(SHARDS)]);
    const r = client(server.port);
    const w = client(server.port);
    try {
      await writePre(r);
      const writer = startLiveWriter(w);
      await new Promise((resolve) => setTimeout(resolve, 100));
      const to = join(tempDir('blobasaur-ops-backup-to-'), 'b');
      const ackedBefore = writer.acked();
      const { stdout } = await execFileP(process.execPath, [MAIN_JS, 'backup', '--data-dir', data, '--to', to]);
      const acked = await writer.stop();
      assert.ok(acked > 0, 'the writer ran during the backup');
      assert.match(stdout, new RegExp(`^backup of ${data} complete: 4 shards, \\d+ rows, [\\d.]+ MiB in ${to} \\(integrity ok\\)\\n$`));
      const { liveKept } = checkBackupFiles(to, acked);
      assert.ok(liveKept < acked, 'writes continued after the backup');
      assert.ok(liveKept >= ackedBefore && ackedBefore > 0, `every live write acknowledged before the backup began is in it (${liveKept} >= ${ackedBefore})`);
      await checkRestore(to, liveKept);

      // A backup never overwrites.
      await assert.rejects(execFileP(process.execPath, [MAIN_JS, 'backup', '--data-dir', data, '--to', to]), (err: { code: number; stderr: string }) => {
        assert.equal(err.code, 1);
        assert.equal(err.stderr, `blobasaur backup: failed: ${to} is not empty; a backup goes into a new or empty directory\n`);
        return true;
      });
    } finally {
      r.disconnect();
      w.disconnect();
      await stop(server);
    }
  });

  it('SAVE, BGSAVE and LASTSAVE write <data_dir>.backup (beside data_dir), restorable, under write load', async () => {
    const data = join(tempDir('blobasaur-ops-save-'), 'data');
    const server = await spawnOurs(['--data-dir', data, '--shards', String(SHARDS)]);
    const r = client(server.port);
    const w = client(server.port);
    let acked = 0;
    let ackedBeforeBgsave = 0;
    try {
      const startedAt = Math.floor(Date.now() / 1000);
      const first = await r.lastsave();
      assert.ok(first >= startedAt - 2 && first <= startedAt + 1, `LASTSAVE at start is the start time (${first})`);
      await writePre(r);
      assert.equal(await r.save(), 'OK');
      assert.equal(existsSync(join(`${data}.backup`, 'manifest.json')), true);
      assert.equal(existsSync(join(data, 'backup')), false);
      checkBackupFiles(`${data}.backup`, 0);
      assert.match(await r.info('persistence'), /\r\nrdb_changes_since_last_save:0\r\nrdb_bgsave_in_progress:0\r\n/);

      const writer = startLiveWriter(w);
      await new Promise((resolve) => setTimeout(resolve, 50));
      ackedBeforeBgsave = writer.acked();
      assert.ok(ackedBeforeBgsave > 0);
      assert.equal(await r.bgsave(), 'Background saving started');
      for (let i = 0; i < 200 && /rdb_bgsave_in_progress:1/.test(await r.info('persistence')); i++) await new Promise((res) => setTimeout(res, 25));
      acked = await writer.stop();
      assert.ok(acked > 0);
      assert.match(await r.info('persistence'), /\r\nrdb_bgsave_in_progress:0\r\nrdb_last_save_time:\d+\r\nrdb_last_bgsave_status:ok\r\n/);
      assert.ok((await r.lastsave()) >= first);
      await assert.rejects(r.call('BGSAVE', 'NOW'), /^ReplyError: ERR syntax error$/);
    } finally {
      r.disconnect();
      w.disconnect();
      await stop(server);
    }
    const { liveKept } = checkBackupFiles(`${data}.backup`, acked);
    assert.ok(liveKept >= ackedBeforeBgsave, `${liveKept} >= ${ackedBeforeBgsave}`);
    await checkRestore(`${data}.backup`, liveKept);
  });

  it('with [sqlite] locking_mode = "EXCLUSIVE" the CLI says to use SAVE, leaves nothing behind, and SAVE writes backup_dir', async () => {
    const dir = tempDir('blobasaur-ops-backup-excl-');
    const data = join(dir, 'data');
    const saves = join(dir, 'saves');
    const config = join(dir, 'config.toml');
    writeFileSync(config, `backup_dir = "${saves}"\n[sqlite]\nlocking_mode = "EXCLUSIVE"\n`);
    const server = await spawnOurs(['--config', config, '--data-dir', data, '--shards', String(SHARDS)]);
    const r = client(server.port);
    try {
      await writePre(r);
      const to = join(dir, 'b');
      await assert.rejects(execFileP(process.execPath, [MAIN_JS, 'backup', '--data-dir', data, '--to', to]), (err: { code: number; stderr: string }) => {
        assert.equal(err.code, 1);
        assert.equal(
          err.stderr,
          `blobasaur backup: failed: ${shardPath(data, 0)} is locked by another process: a server running with ` +
            '[sqlite] locking_mode = "EXCLUSIVE" (back it up from inside with SAVE or BGSAVE), or a migration or full vacuum\n',
        );
        return true;
      });
      assert.equal(existsSync(to), false);
      assert.equal(await r.save(), 'OK');
    } finally {
      r.disconnect();
      await stop(server);
    }
    checkBackupFiles(saves, 0);
    await checkRestore(saves, 0);
  });

  it('backup CLI usage errors exit 2', async () => {
    const dir = tempDir('blobasaur-ops-backup-usage-');
    mkdirSync(join(dir, 'd'));
    writeFileSync(join(dir, 'd', 'blobasaur.json'), '{"format":1,"num_shards":1}\n');
    await assert.rejects(execFileP(process.execPath, [MAIN_JS, 'backup', '--data-dir', join(dir, 'd')]), (err: { code: number; stderr: string }) => {
      assert.equal(err.code, 2);
      assert.match(err.stderr, /^blobasaur backup: --to DIR is required\nUsage: blobasaur backup --to DIR/);
      return true;
    });
  });
});
