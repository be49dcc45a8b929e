/**
 * Data files are private: whatever the umask blobasaur is started with, the data directory is
 * created 0700 and every file in it (shards, -wal/-shm, blobasaur.json) 0600, and so are backups;
 * the config's `umask` chooses otherwise.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { MAIN_JS, spawnOurs, tempDir } from '../helpers/servers.js';

const run = promisify(execFile);
const mode = (path: string): string => (statSync(path).mode & 0o777).toString(8).padStart(3, '0');

/** Every entry under `dir` (recursively) with its mode, the directory itself first. */
function modes(dir: string): Array<[string, string]> {
  const out: Array<[string, string]> = [[dir, mode(dir)]];
  for (const name of readdirSync(dir)) {
    const full = join(dir, name);
    try {
      if (statSync(full).isDirectory()) out.push(...modes(full));
      else out.push([full, mode(full)]);
    } catch (err) {
      // SQLite removes -wal/-shm files of connections it closes (the maintenance worker's).
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
  return out;
}

async function exercise(args: string[], dataDir: string, backupDir: string, configArgs: string[]): Promise<Array<[string, string]>> {
  const child = await spawnOurs(args);
  const c = new Redis(child.port, '127.0.0.1');
  try {
    await c.set('k', 'v');
    await c.hset('ns', 'f', 'v');
    // The server is running, so the -wal/-shm files exist now.
    assert.ok(readdirSync(dataDir).some((f) => f.endsWith('-wal')), readdirSync(dataDir).join(' '));
    const found = modes(dataDir);
    await run(process.execPath, [MAIN_JS, 'backup', '--to', backupDir, ...configArgs]);
    return [...found, ...modes(backupDir)];
  } finally {
    c.disconnect();
    child.proc.kill('SIGTERM');
    await child.exited;
  }
}

describe('file modes', () => {
  it('default: data directory 0700, shard files, -wal/-shm, blobasaur.json and backups 0600, under umask 022', async () => {
    const previous = process.umask(0o022);
    const dir = tempDir();
    try {
      const dataDir = join(dir, 'data');
      const found = await exercise(['--data-dir', dataDir], dataDir, join(dir, 'backup'), ['--data-dir', dataDir]);
      assert.ok(found.some(([f]) => f.endsWith('blobasaur.json')) && found.some(([f]) => f.endsWith('.db-wal')), found.join(' '));
      for (const [path, m] of found) assert.equal(m, path.endsWith('data') || path.endsWith('backup') ? '700' : '600', path);
    } finally {
      process.umask(previous);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('umask = 0o027 in the config: group may read, others may not', async () => {
    const dir = tempDir();
    try {
      const dataDir = join(dir, 'data');
      const config = join(dir, 'blobasaur.toml');
      writeFileSync(config, `data_dir = "${dataDir}"\numask = 0o027\n`);
      const found = await exercise(['--config', config], dataDir, join(dir, 'backup'), ['--config', config]);
      for (const [path, m] of found) assert.equal(m, path.endsWith('data') || path.endsWith('backup') ? '750' : '640', path);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
