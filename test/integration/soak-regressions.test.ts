/**
 * Bugs the combined soak (soak-combined.test.ts) found, each pinned by a focused test.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { MiB } from '../helpers/proc.js';
import { spawnOurs, tempDir } from '../helpers/servers.js';

describe('chunk files are checkpointed by the maintenance thread', () => {
  // The thread prepared its expiry sweep on every file it opened, and chunk files have no `blobs`
  // table: every checkpoint of a chunk file failed ("no such table: blobs"), so its WAL grew by
  // each value written (a 64 MiB tmpfs filled with two keys overwritten) and never shrank.
  it('overwriting a 1 MiB+ value 40 times checkpoints it and reuses the WAL, with nothing logged', async () => {
    const dir = tempDir('blobasaur-chunk-wal-');
    const data = join(dir, 'data');
    const child = await spawnOurs(['--data-dir', data]);
    const r = new Redis({ port: child.port, host: '127.0.0.1', maxRetriesPerRequest: 0, retryStrategy: () => null });
    r.on('error', () => {});
    try {
      const size = MiB + 4096;
      // With the bug the WAL holds every value written (≥ writes × size) and the file nothing. With
      // checkpoints the WAL is reused; how often depends on when the thread gets a core (a loaded
      // machine grew it to 20 MB over 30 values, 37 MB over 60), so only reuse itself is asserted.
      const writes = 40;
      for (let i = 0; i < writes; i++) {
        assert.equal(await r.set('big', Buffer.alloc(size, i)), 'OK');
        // Time for the thread's checkpoints (every 50 ms), as between the writes of a real client.
        await new Promise((res) => setTimeout(res, 60));
      }
      assert.deepEqual(await r.getBuffer('big'), Buffer.alloc(size, writes - 1));
      // Whichever shard holds it: its chunk file took the pages, and its WAL was reused.
      const files = [0, 1, 2, 3].map((s) => ({
        db: statSync(join(data, `shard-${s}.chunks.db`)).size,
        wal: statSync(join(data, `shard-${s}.chunks.db-wal`), { throwIfNoEntry: false })?.size ?? 0,
      }));
      const holder = files.reduce((a, b) => (b.wal + b.db > a.wal + a.db ? b : a));
      assert.ok(holder.db >= size, `the chunk file has ${holder.db} bytes: nothing was checkpointed into it`);
      assert.ok(holder.wal < writes * size, `the chunk file's WAL grew to ${holder.wal} bytes for ${writes} writes of one ${size}-byte value: never reused`);
      assert.doesNotMatch(child.output(), /maintenance worker problem/);
    } finally {
      r.disconnect();
      child.proc.kill('SIGTERM');
      assert.equal(await child.exited, 0);
    }
  });
});
