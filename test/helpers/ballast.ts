/** Filling a small file system the test mounted, to make the server meet a full disk. */
import { closeSync, openSync, statfsSync, writeSync } from 'node:fs';
import { join } from 'node:path';

/** Bytes free for an unprivileged writer on the file system of `dir`. */
export function freeBytes(dir: string): number {
  const s = statfsSync(dir);
  return s.bavail * s.bsize;
}

/**
 * Fills the file system with a ballast file until ENOSPC, or until `limit` bytes are written;
 * returns its path. A limit of what was free when the fill began models a burst from another
 * writer that stops: without it, room the server gives back while the fill still runs (its disk
 * reserve, released as free space runs low) is taken by the ballast too, and no reserve can help.
 */
export function fillUp(dir: string, name: string, limit = Infinity): string {
  const file = join(dir, name);
  const fd = openSync(file, 'w');
  const chunk = Buffer.alloc(64 * 1024);
  try {
    for (let written = 0; written < limit; ) written += writeSync(fd, chunk, 0, Math.min(chunk.length, limit - written));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    closeSync(fd);
  }
  return file;
}
