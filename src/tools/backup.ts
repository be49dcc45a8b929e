/**
 * Online backup: every shard copied with SQLite's backup API while the server runs and takes
 * writes, each copy a consistent snapshot of its shard, plus the layout file and a manifest. A
 * backup directory is a data directory: restore = start a server on it.
 *
 * Two ways in: `blobasaur backup --to DIR` (another process; each shard copied in one backup step,
 * which is one read transaction, so WAL lets the server keep committing meanwhile) and SAVE/BGSAVE
 * (inside the server, through each shard's own connection, in small steps between event-loop turns).
 */
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync, writeFileSync, copyFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { opsStats } from '../observability/metrics.js';
import { LAYOUT_FILE } from '../storage/layout.js';
import { chunkFileName, registerSlotFunction, shardFileName } from '../storage/schema.js';
import type { Store } from '../storage/store.js';
import { VERSION } from '../version.js';
import { readShardCount } from './vacuum.js';

export const MANIFEST_FILE = 'manifest.json';

export interface ManifestShard {
  shard: number;
  file: string;
  bytes: number;
  /** Rows in blobs + ns_blobs (expired rows included); null when not counted. */
  rows: number | null;
  /** PRAGMA integrity_check of the copy; null when not checked. */
  integrity: string | null;
  /** When this shard's snapshot was taken (ISO time, end of its copy). */
  snapshot_at: string;
}

export interface Manifest {
  format: 1;
  blobasaur_version: string;
  source: string;
  num_shards: number;
  started_at: string;
  finished_at: string;
  method: 'cli' | 'save';
  shards: ManifestShard[];
}

/** Refuses a destination that already holds something (a backup never overwrites). */
function prepareDestination(dir: string): void {
  if (existsSync(dir)) {
    if (!statSync(dir).isDirectory()) throw new Error(`${dir} exists and is not a directory`);
    if (readdirSync(dir).length > 0) throw new Error(`${dir} is not empty; a backup goes into a new or empty directory`);
  } else {
    mkdirSync(dir, { recursive: true });
  }
}

function writeJsonAtomic(path: string, value: unknown): void {
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(value, null, 2)}\n`);
  renameSync(tmp, path);
}

/** Opens a copy to check and count it; also leaves it in rollback-journal mode with no -wal beside it. */
function inspectCopy(file: string, check: boolean): { rows: number | null; integrity: string | null } {
  const db = new Database(file);
  registerSlotFunction(db);
  try {
    db.pragma('journal_mode = DELETE');
    if (!check) return { rows: null, integrity: null };
    const integrity = String(db.pragma('integrity_check', { simple: true }));
    const rows =
      Number(db.prepare('SELECT count(*) FROM blobs').pluck().get()) + Number(db.prepare('SELECT count(*) FROM ns_blobs').pluck().get());
    return { rows, integrity };
  } finally {
    db.close();
  }
}

export interface BackupOptions {
  /** Run integrity_check on every copy and count its rows (default true). */
  verify?: boolean;
  progress?: (shard: number, of: number, bytes: number) => void;
}

/** `blobasaur backup`: copies every shard of `dataDir` into `toDir` while a server may be running. */
export async function backupDataDir(dataDir: string, toDir: string, opts: BackupOptions = {}): Promise<Manifest> {
  const verify = opts.verify ?? true;
  const source = resolve(dataDir);
  const dest = resolve(toDir);
  if (dest === source) throw new Error('--to must differ from the data directory');
  const numShards = readShardCount(source);
  const created = !existsSync(dest);
  prepareDestination(dest);
  try {
    return await copyAll(source, dest, numShards, verify, opts);
  } catch (err) {
    // Leave nothing that looks like a backup behind: the directory as it was (absent or empty).
    if (created) rmSync(dest, { recursive: true, force: true });
    else for (const f of readdirSync(dest)) rmSync(join(dest, f), { recursive: true, force: true });
    throw err;
  }
}

async function copyAll(source: string, dest: string, numShards: number, verify: boolean, opts: BackupOptions): Promise<Manifest> {
  const startedAt = new Date().toISOString();
  copyFileSync(join(source, LAYOUT_FILE), join(dest, LAYOUT_FILE));
  const shards: ManifestShard[] = [];
  for (let id = 0; id < numShards; id++) {
    const name = shardFileName(id);
    const src = new Database(join(source, name), { fileMustExist: true });
    try {
      src.pragma('busy_timeout = 2000');
      // better-sqlite3 reports a source it cannot lock as an empty, finished backup: read it first
      // so a lock shows as SQLITE_BUSY, and refuse a copy of no pages.
      src.prepare('SELECT count(*) FROM sqlite_master').get();
      // One step of all pages is one read transaction: a consistent snapshot that a commit by the
      // server cannot restart (steps of a few pages would restart on every commit under load).
      const copied = await src.backup(join(dest, name), { progress: () => 0x7fffffff });
      if (copied.totalPages === 0) throw new Error(`${join(source, name)} could not be read (0 pages copied)`);
    } catch (err) {
      if (String((err as { code?: unknown }).code).startsWith('SQLITE_BUSY')) {
        throw new Error(
          `${join(source, name)} is locked by another process: a server running with [sqlite] locking_mode = "EXCLUSIVE" ` +
            '(back it up from inside with SAVE or BGSAVE), or a migration or full vacuum',
        );
      }
      throw err;
    } finally {
      src.close();
    }
    const snapshotAt = new Date().toISOString();
    // The shard's chunk file (values over 1 MiB), copied after it: every blob the shard copy
    // references was live then. A server running meanwhile may reclaim a blob that died between
    // the two copies; SAVE / BGSAVE hold its reclamation back and are exact (docs/operations.md).
    const chunks = chunkFileName(id);
    if (existsSync(join(source, chunks))) {
      const c = new Database(join(source, chunks), { fileMustExist: true });
      try {
        c.pragma('busy_timeout = 2000');
        c.prepare('SELECT count(*) FROM sqlite_master').get();
        const copied = await c.backup(join(dest, chunks), { progress: () => 0x7fffffff });
        if (copied.totalPages === 0) throw new Error(`${join(source, chunks)} could not be read (0 pages copied)`);
      } finally {
        c.close();
      }
    }
    const { rows, integrity } = inspectCopy(join(dest, name), verify);
    if (integrity !== null && integrity !== 'ok') throw new Error(`copy of ${name} fails integrity_check: ${integrity}`);
    const bytes = statSync(join(dest, name)).size;
    shards.push({ shard: id, file: name, bytes, rows, integrity, snapshot_at: snapshotAt });
    opts.progress?.(id, numShards, bytes);
  }
  const manifest: Manifest = {
    format: 1,
    blobasaur_version: VERSION,
    source,
    num_shards: numShards,
    started_at: startedAt,
    finished_at: new Date().toISOString(),
    method: 'cli',
    shards,
  };
  // Written last: a directory with a manifest is a complete backup.
  writeJsonAtomic(join(dest, MANIFEST_FILE), manifest);
  return manifest;
}

/**
 * Where SAVE and BGSAVE put their copy (`backup_dir`), replaced whole by each save: by default
 * `<data_dir>.backup`, beside the data directory so a disk or directory lost with it is not the
 * only copy and a backup does not count against the data directory's space.
 */
export function defaultSaveDir(dataDir: string): string {
  return `${resolve(dataDir)}.backup`;
}

/** A save directory that is the data directory or holds it would replace the data: refused at start. */
export function checkSaveDir(saveDir: string, dataDir: string): string | null {
  const s = resolve(saveDir);
  const d = resolve(dataDir);
  if (s === d || d.startsWith(`${s}/`)) return `backup_dir ${s} is the data directory or contains it; choose a directory beside data_dir`;
  return null;
}

/**
 * SAVE / BGSAVE: an online backup of every shard into `saveDir`, built beside it and swapped in
 * when complete, so the directory always holds the last complete save. One at a time.
 */
export function startSave(server: object, store: Store, saveDir: string = defaultSaveDir(store.dataDir)): Promise<void> {
  const state = opsStats(server).save;
  if (state.inProgress !== null) return state.inProgress;
  const started = Date.now();
  const changes = opsStats(server).writeCommands;
  const run = (async () => {
    const final = resolve(saveDir);
    const building = `${final}.tmp`;
    rmSync(building, { recursive: true, force: true });
    mkdirSync(building, { recursive: true });
    copyFileSync(join(store.dataDir, LAYOUT_FILE), join(building, LAYOUT_FILE));
    const shards: ManifestShard[] = [];
    // Async mode acknowledges before the commit: wait for those writes so the save has them too.
    await store.drain();
    await store.backup(building, (id) => {
      const file = shardFileName(id);
      shards.push({ shard: id, file, bytes: statSync(join(building, file)).size, rows: null, integrity: null, snapshot_at: new Date().toISOString() });
    });
    for (const s of shards) inspectCopy(join(building, s.file), false);
    const manifest: Manifest = {
      format: 1,
      blobasaur_version: VERSION,
      source: store.dataDir,
      num_shards: store.numShards,
      started_at: new Date(started).toISOString(),
      finished_at: new Date().toISOString(),
      method: 'save',
      shards,
    };
    writeJsonAtomic(join(building, MANIFEST_FILE), manifest);
    const old = `${final}.old`;
    rmSync(old, { recursive: true, force: true });
    if (existsSync(final)) renameSync(final, old);
    renameSync(building, final);
    rmSync(old, { recursive: true, force: true });
  })();
  state.inProgress = run.then(
    () => {
      state.lastSaveMs = Date.now();
      state.lastStatus = 'ok';
      state.lastError = null;
      state.lastDurationMs = Date.now() - started;
      state.changesAtLastSave = changes;
      state.inProgress = null;
    },
    (err: unknown) => {
      state.lastStatus = 'err';
      state.lastError = err instanceof Error ? err.message : String(err);
      state.lastDurationMs = Date.now() - started;
      state.inProgress = null;
      throw err;
    },
  );
  return state.inProgress;
}
