/**
 * A full disk (issue 18, item 8), on a small tmpfs this test mounts (as root; skipped with the
 * reason logged where the machine cannot mount one). Writes fail with a clear error reply while
 * the disk is full, reads and deletes keep working, SIGTERM exits 0, the server starts again on
 * the full disk, and writes resume once room is freed (disk-reserve.ts: 3 x disk_reserve_mb).
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { fillUp } from '../helpers/ballast.js';
import { spawnOurs, tempDir, type Child } from '../helpers/servers.js';

const FS_BYTES = 8 * 1024 * 1024;
const VALUE = Buffer.alloc(64 * 1024, 'x');
const DISK_FULL = /^ERR disk full: writes that add data are refused until \d+(\.\d)? MiB are free in .*\/data \(deletes still work\)$/;
const SQLITE_FULL = /^ERR shard-\d\.db: database or disk is full \(SQLITE_FULL\)$/;

let mnt: string | null = null;
let cannotMount: string | null = null;

before(() => {
  const dir = tempDir('blobasaur-diskfull-');
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${FS_BYTES}`, 'tmpfs', dir], { stdio: 'pipe' });
    mnt = dir;
  } catch (err) {
    cannotMount = `cannot mount a tmpfs here (${(err as { stderr?: Buffer }).stderr?.toString().trim() || (err as Error).message})`;
  }
});

after(() => {
  if (mnt !== null) execFileSync('umount', ['-l', mnt]);
});


function client(port: number): Redis {
  const r = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 0, retryStrategy: () => null });
  r.on('error', () => {});
  return r;
}

async function stop(child: Child): Promise<number | null> {
  child.proc.kill('SIGTERM');
  return child.exited;
}

describe('a full disk', () => {
  it('refuses writes cleanly, exits 0 on SIGTERM, restarts, and resumes writes once room is freed', async (t) => {
    if (mnt === null) {
      t.diagnostic(`skipped: ${cannotMount}`);
      t.skip(cannotMount ?? 'no tmpfs');
      return;
    }
    const data = join(mnt, 'data');
    mkdirSync(data);
    const config = join(mnt, 'blobasaur.toml');
    writeFileSync(config, `data_dir = "${data}"\nnum_shards = 2\ndisk_reserve_mb = 1\n`);
    const ballast = join(mnt, 'ballast');
    writeFileSync(ballast, Buffer.alloc(2 * 1024 * 1024));

    let child = await spawnOurs(['--config', config]);
    let r = client(child.port);
    let written = 0;
    let refusal = '';
    for (; written < 200; written++) {
      const err = await r.set(`k${written}`, VALUE).then(() => null, (e: Error) => e.message);
      if (err !== null) {
        refusal = err;
        break;
      }
    }
    assert.ok(written > 10 && written < 200, `wrote ${written} values of 64 KiB on an 8 MiB file system`);
    assert.ok(DISK_FULL.test(refusal) || SQLITE_FULL.test(refusal), refusal);
    // While full: writes refused with the clear text, reads and deletes served.
    await assert.rejects(r.set('more', VALUE), (e: Error) => DISK_FULL.test(e.message));
    await assert.rejects(r.append('k0', 'x'), (e: Error) => DISK_FULL.test(e.message));
    assert.deepEqual(await r.getBuffer('k1'), VALUE);
    assert.equal(await r.del(`k${written - 1}`), 1);
    assert.match(await r.info('blobasaur'), /^disk_full:1$/m);
    // Whatever room is left goes too, then the server is stopped on a disk with no room at all.
    const filler = fillUp(mnt, 'filler');
    r.disconnect();
    assert.equal(await stop(child), 0, child.output());

    // It starts again on the full disk (the reserve it kept is what opening the shards needs).
    child = await spawnOurs(['--config', config]);
    r = client(child.port);
    assert.deepEqual(await r.getBuffer('k0'), VALUE);
    await assert.rejects(r.set('more', 'x'), (e: Error) => DISK_FULL.test(e.message));

    // Room comes back: writes resume within a few seconds, without a restart.
    rmSync(filler);
    rmSync(ballast);
    const deadline = Date.now() + 10_000;
    let resumed = false;
    while (!resumed && Date.now() < deadline) {
      resumed = await r.set('after', 'room').then(() => true, () => false);
      if (!resumed) await new Promise((res) => setTimeout(res, 200));
    }
    assert.ok(resumed, 'writes resumed after room was freed');
    assert.equal(await r.set('big-after', VALUE), 'OK');
    assert.match(await r.info('blobasaur'), /^disk_full:0$/m);
    assert.equal(await r.get('after'), 'room');
    r.disconnect();
    assert.equal(await stop(child), 0, child.output());
    assert.match(child.output(), /has room again: the reserve is taken back and writes resume/);
  });
});
