/** Filling a small file system the test mounted, to make the server meet a full disk. */
import { closeSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';

/** Fills the file system with a ballast file until ENOSPC; returns its path. */
export function fillUp(dir: string, name: string): string {
  const file = join(dir, name);
  const fd = openSync(file, 'w');
  const chunk = Buffer.alloc(64 * 1024);
  try {
    for (;;) writeSync(fd, chunk);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    closeSync(fd);
  }
  return file;
}
