/**
 * Room kept on the data directory's file system for the day it fills up.
 *
 * In WAL mode every committed page is written twice: into the WAL, then by a checkpoint into the
 * shard file, which must grow to take it. On a full disk the checkpoint fails, the WAL cannot
 * restart, every later write needs yet more room, and opening the files again (which replays the
 * WAL) fails too: measured, writes and restarts stayed stuck until 16-32 MiB were freed.
 *
 * So the server holds a file of `bytes` (`disk_reserve_mb`) in the data directory, and watches
 * the free space after commits. When less is left than the reserve plus the WAL files (what a
 * checkpoint may have to add to the shard files), or on the first SQLITE_FULL, it gives the file
 * back: checkpoints and deletes then have the room, while writes that add data are refused with a
 * clear error. Once three times the reserve (plus the WAL files) is free, the reserve is taken
 * back and writes resume. A second, smaller file (a quarter of it, at least 256 KiB) is kept until
 * shutdown, whose last checkpoint gets it, and the start after: it gives both back before the
 * shards open (opening creates each shard's 32 KiB -shm file and may replay a WAL), takes them
 * again after.
 */
import { closeSync, existsSync, openSync, rmSync, statfsSync, writeSync } from 'node:fs';
import { join } from 'node:path';

export const RESERVE_FILE = 'disk-reserve';
export const LAST_RESERVE_FILE = 'disk-reserve.last';

/** Free space, in reserves, at which writes resume (one is taken back, two stay free). */
export const RESUME_FACTOR = 3;

/** Written in steps of this size, so a short file system fails early and cheaply. */
const STEP = 1024 * 1024;

export class DiskReserve {
  readonly file: string;
  readonly lastFile: string;
  readonly lastBytes: number;

  constructor(
    readonly dataDir: string,
    readonly bytes: number,
  ) {
    this.file = join(dataDir, RESERVE_FILE);
    this.lastFile = join(dataDir, LAST_RESERVE_FILE);
    this.lastBytes = bytes === 0 ? 0 : Math.max(256 * 1024, Math.floor(bytes / 4));
  }

  /** Bytes the data directory's file system has free for us. */
  freeBytes(): number {
    const s = statfsSync(this.dataDir);
    return s.bavail * s.bsize;
  }

  /**
   * Takes the reserve (writes the file in full). False when the room is not there: a partial file
   * is removed again, so a full disk is never made fuller by it.
   */
  take(): boolean {
    if (this.bytes === 0) return true;
    // The last reserve first: it is the one a stop and the next start cannot do without.
    if (!existsSync(this.lastFile) && !fill(this.lastFile, this.lastBytes)) return false;
    return fill(this.file, this.bytes);
  }

  /** Gives the reserve back to the file system (the last reserve stays, for shutdown). */
  release(): void {
    rmSync(this.file, { force: true });
  }

  /** Gives both files back: at shutdown, before the last checkpoint, and at start. */
  releaseAll(): void {
    rmSync(this.file, { force: true });
    rmSync(this.lastFile, { force: true });
  }

  /** Less is left than the reserve plus `walBytes` (the WAL files): time to stop adding data. */
  low(walBytes: number): boolean {
    return this.bytes > 0 && this.freeBytes() < this.bytes + walBytes;
  }

  /** Room for the reserve and twice as much again, besides `walBytes`. */
  roomToResume(walBytes: number): boolean {
    return this.freeBytes() >= RESUME_FACTOR * this.bytes + walBytes;
  }
}

/** Writes `bytes` of zeros to `file`; false (and no file) when the room is not there. */
function fill(file: string, bytes: number): boolean {
  let fd: number | null = null;
  try {
    fd = openSync(file, 'w');
    const zeros = Buffer.alloc(Math.min(STEP, bytes));
    for (let done = 0; done < bytes; ) {
      const n = Math.min(zeros.length, bytes - done);
      done += writeSync(fd, zeros, 0, n, done);
    }
    closeSync(fd);
    return true;
  } catch {
    if (fd !== null) closeSync(fd);
    rmSync(file, { force: true });
    return false;
  }
}
