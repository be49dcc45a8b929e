/**
 * Chunk I/O off the event loop (issue 17 point 5): the chunks of a streamed SET are written, and
 * those of a streamed GET read, by the chunk I/O thread through its own connection — the server's
 * connection to the chunk file makes none of those calls — and an idle chunk file's WAL is cut
 * down by that thread, not by the next small write on the loop (an APPEND); once chunk traffic
 * stops, the server's RSS comes back to where it was before a big value came and went.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { spawnOurs, startOurs, tempDir } from '../helpers/servers.js';
import { mib, procMemory } from '../helpers/proc.js';
import { ChunkFile, CHUNK_JOURNAL_SIZE_LIMIT, chunkCount } from '../../src/storage/chunks.js';
import type { ChunkIO } from '../../src/storage/chunk-io.js';

const MiB = 1024 * 1024;
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const sleep = (ms: number): Promise<void> => new Promise((res) => setTimeout(res, ms));

/**
 * Counts the chunk writes and reads made through the server's own connections to chunk files (on
 * the event loop) until restore() is called.
 */
function countChunkCallsOnLoop(): { counts: { put: number; read: number }; restore(): void } {
  const proto = ChunkFile.prototype;
  const { putChunks, readStored } = proto;
  const counts = { put: 0, read: 0 };
  proto.putChunks = function (this: ChunkFile, ...a: Parameters<ChunkFile['putChunks']>) {
    counts.put++;
    return putChunks.apply(this, a);
  };
  proto.readStored = function (this: ChunkFile, ...a: Parameters<ChunkFile['readStored']>) {
    counts.read++;
    return readStored.apply(this, a);
  };
  const restore = (): void => {
    proto.putChunks = putChunks;
    proto.readStored = readStored;
  };
  return { counts, restore };
}

function walBytes(path: string): number {
  try {
    return statSync(`${path}-wal`).size;
  } catch {
    return 0;
  }
}

describe('chunk I/O thread', () => {
  it('a streamed SET and GET make no chunk write or read through the server connection, and the bytes round-trip', async () => {
    const s = await startOurs({ num_shards: 1 });
    const r = new Redis({ port: s.port, host: '127.0.0.1' });
    const { counts: onLoop, restore } = countChunkCallsOnLoop();
    try {
      const file = s.store.chunkFiles[0];
      assert.equal(file.offLoop, true);
      const value = randomBytes(12 * MiB + 5);
      const written = file.chunksWritten;
      const read = file.chunksRead;
      await r.set('big', value);
      assert.equal(sha((await r.getBuffer('big'))!), sha(value));
      assert.equal(file.chunksWritten - written, chunkCount(value.length));
      assert.equal(file.chunksRead - read, chunkCount(value.length));
      assert.deepEqual(onLoop, { put: 0, read: 0 });
      // The server's own connection still does what it did: APPEND derives a blob there.
      assert.equal(await r.append('big', 'abc'), value.length + 3);
      assert.equal(sha((await r.getBuffer('big'))!), sha(Buffer.concat([value, Buffer.from('abc')])));
      assert.equal(onLoop.read, 1, 'APPEND reads the old last chunk on the loop');
    } finally {
      restore();
      r.disconnect();
      await s.close();
    }
  });

  it('RENAME and COPY across shards copy the stored chunks through the thread, bytes equal', async () => {
    const s = await startOurs({ num_shards: 4 });
    const r = new Redis({ port: s.port, host: '127.0.0.1' });
    const { counts: onLoop, restore } = countChunkCallsOnLoop();
    try {
      const shardOf = (k: string): number => s.store.queueOf(Buffer.from(k)).shard.id;
      const names = Array.from({ length: 64 }, (_, i) => `k${i}`);
      const src = names[0];
      const [renamed, copied] = names.filter((k) => shardOf(k) !== shardOf(src));
      assert.ok(renamed !== undefined && copied !== undefined && shardOf(renamed) !== shardOf(src));
      const value = randomBytes(4 * MiB + 11);
      await r.set(src, value);
      assert.equal(await r.copy(src, copied), 1);
      assert.equal(await r.rename(src, renamed), 'OK');
      assert.equal(sha((await r.getBuffer(renamed))!), sha(value));
      assert.equal(sha((await r.getBuffer(copied))!), sha(value));
      assert.equal(await r.exists(src), 0);
      assert.deepEqual(onLoop, { put: 0, read: 0 });
    } finally {
      restore();
      r.disconnect();
      await s.close();
    }
  });

  it('an idle chunk file has its WAL cut to journal_size_limit by the thread, so the next APPEND does not cut it on the loop', async () => {
    const s = await startOurs({ num_shards: 1, proto_max_bulk_len: 256 * MiB });
    const r = new Redis({ port: s.port, host: '127.0.0.1' });
    try {
      const file = s.store.chunkFiles[0];
      const value = randomBytes(96 * MiB);
      await r.set('big', value);
      assert.ok(walBytes(file.path) >= 90 * MiB, `WAL after the SET: ${walBytes(file.path)} bytes`);
      // The thread waits for a second without staged writes, and for the maintenance thread's checkpoint.
      const deadline = Date.now() + 20_000;
      while (walBytes(file.path) > CHUNK_JOURNAL_SIZE_LIMIT && Date.now() < deadline) await sleep(100);
      // Cut, not truncated to nothing: chunk writes still find room in it while the disk is full.
      assert.ok(walBytes(file.path) > 0 && walBytes(file.path) <= CHUNK_JOURNAL_SIZE_LIMIT, `WAL when idle: ${walBytes(file.path)} bytes`);
      assert.equal(await r.append('big', 'abc'), 96 * MiB + 3);
      assert.deepEqual(await r.getrangeBuffer('big', 96 * MiB - 2, -1), Buffer.concat([value.subarray(-2), Buffer.from('abc')]));
    } finally {
      r.disconnect();
      await s.close();
    }
  });

  it('when the thread dies, chunk writes and reads go back to the event loop and values still round-trip', async () => {
    const s = await startOurs({ num_shards: 1 });
    const r = new Redis({ port: s.port, host: '127.0.0.1' });
    try {
      const file = s.store.chunkFiles[0];
      const before = randomBytes(3 * MiB);
      await r.set('before', before);
      // Private: the test reaches the store's thread to end it as a crash would.
      const io = s.store['chunkIO'] as ChunkIO;
      await io['worker'].terminate();
      assert.equal(io.alive, false);
      assert.equal(file.offLoop, false);
      const after = randomBytes(5 * MiB + 7);
      await r.set('after', after);
      assert.equal(sha((await r.getBuffer('after'))!), sha(after));
      assert.equal(sha((await r.getBuffer('before'))!), sha(before));
    } finally {
      r.disconnect();
      await s.close();
    }
  });

  it('chunk traffic is followed by one trim once quiet for a second, none while it goes on', async () => {
    const s = await startOurs({ num_shards: 1 });
    const r = new Redis({ port: s.port, host: '127.0.0.1' });
    try {
      const io = s.store['chunkIO'] as ChunkIO;
      const runs = io.trimStats.runs;
      const value = randomBytes(6 * MiB);
      await r.set('big', value);
      // Chunk reads every 200 ms for 2 s: never a second without chunk traffic, unless this
      // process was held up for one (a loaded machine), which is then the only way to a trim.
      let last = performance.now();
      let longestGap = 0;
      for (let i = 0; i < 10; i++) {
        assert.deepEqual(await r.getrangeBuffer('big', (i % 6) * MiB, (i % 6) * MiB + 9), value.subarray((i % 6) * MiB, (i % 6) * MiB + 10));
        longestGap = Math.max(longestGap, performance.now() - last);
        last = performance.now();
        await sleep(200);
      }
      assert.ok(io.trimStats.runs === runs || longestGap >= 1000, `a trim while chunks were read at most ${Math.round(longestGap)} ms apart`);
      const before = io.trimStats.runs;
      const deadline = Date.now() + 10_000;
      while (io.trimStats.runs === before && Date.now() < deadline) await sleep(100);
      assert.equal(io.trimStats.unavailable, false, 'malloc_trim is there on this Linux/glibc machine');
      assert.equal(io.trimStats.runs, before + 1);
      await sleep(1500);
      assert.equal(io.trimStats.runs, before + 1, 'one trim per quiet spell');
    } finally {
      r.disconnect();
      await s.close();
    }
  });

  it('values under 256 KiB received and read on the loop are not large-value traffic: no trim, the threshold stays idle', async () => {
    const s = await startOurs({ num_shards: 1 });
    const r = new Redis({ port: s.port, host: '127.0.0.1' });
    try {
      const io = s.store['chunkIO'] as ChunkIO;
      const value = randomBytes(200 * 1024);
      for (let i = 0; i < 20; i++) await r.set(`mid${i}`, value);
      for (let i = 0; i < 20; i++) assert.deepEqual(await r.getBuffer(`mid${i}`), value);
      await sleep(1500);
      assert.equal(io.trimStats.runs, 0, 'no trim: nothing raised the trim threshold');
      assert.equal(io['idleThreshold'], true, 'the idle threshold since the start: no busy sent');
    } finally {
      r.disconnect();
      await s.close();
    }
  });

  it('values received and read on the loop (1 MiB, inline: no chunk) are followed by one trim once quiet too', async () => {
    const s = await startOurs({ num_shards: 1 });
    const r = new Redis({ port: s.port, host: '127.0.0.1' });
    try {
      const io = s.store['chunkIO'] as ChunkIO;
      await sleep(1500);
      const before = io.trimStats.runs;
      const value = randomBytes(MiB);
      for (let i = 0; i < 4; i++) await r.set(`inline${i}`, value);
      for (let i = 0; i < 4; i++) assert.deepEqual(await r.getBuffer(`inline${i}`), value);
      const deadline = Date.now() + 10_000;
      while (io.trimStats.runs === before && Date.now() < deadline) await sleep(100);
      assert.equal(io.trimStats.runs, before + 1, 'a trim after the inline traffic');
      await sleep(1500);
      assert.equal(io.trimStats.runs, before + 1, 'one trim per quiet spell');
    } finally {
      r.disconnect();
      await s.close();
    }
  });

  // A generous bound on a smaller value than the bench's 500 MiB: before the trim after idle
  // (chunk-io.ts, malloc-trim.ts), this sequence left +40–42 MiB 5 s after the DEL (the main
  // thread's malloc heap and the chunk I/O thread's arena holding freed buffers); with it, +1–8 MiB.
  it('after a 128 MiB SET, GET and DEL, the server RSS comes back within 20 MiB of where it was, within 6 s', async () => {
    const child = await spawnOurs(['--data-dir', join(tempDir('blobasaur-chunk-io-rss-'), 'data'), '--shards', '2']);
    const pid = child.proc.pid!;
    const r = new Redis({ port: child.port, host: '127.0.0.1' });
    try {
      // Warm up the paths a big value uses (the chunk I/O thread, the first trim), so the baseline is the server's working size.
      await r.set('warm', randomBytes(4 * MiB));
      assert.equal((await r.getBuffer('warm'))!.length, 4 * MiB);
      await r.del('warm');
      await sleep(2000);
      const base = procMemory(pid).rss;
      const value = randomBytes(128 * MiB);
      await r.set('big', value);
      assert.equal(sha((await r.getBuffer('big'))!), sha(value));
      const grown = procMemory(pid).rss - base;
      assert.equal(await r.del('big'), 1);
      const deadline = Date.now() + 6000;
      let over = procMemory(pid).rss - base;
      while (over > 20 * MiB && Date.now() < deadline) {
        await sleep(250);
        over = procMemory(pid).rss - base;
      }
      assert.ok(over <= 20 * MiB, `RSS ${mib(over)} over its ${mib(base)} before the SET, 6 s after the DEL (${mib(grown)} after the GET)`);
    } finally {
      r.disconnect();
      child.proc.kill('SIGTERM');
      await child.exited;
    }
  });
});
