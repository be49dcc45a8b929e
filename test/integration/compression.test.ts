/** Storage compression through a real client: every algorithm and level range, codec switches, corruption. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Redis } from 'ioredis';
import { CODEC_IDS, type Algorithm } from '../../src/storage/codecs.js';
import { defaultLevel, levelRange } from '../../src/config/schema.js';
import { spawnOurs, startOurs, tempDir, type TestServer } from '../helpers/servers.js';
import { registerSlotFunction, shardPath } from '../../src/storage/schema.js';

const TEXT = Buffer.from('blobasaur stores blobs in SQLite; '.repeat(3000)); // ~100 KiB, compresses well
const SMALL_TEXT = Buffer.from('a compressible small value, '.repeat(8));

function client(port: number): Redis {
  return new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 0 });
}

/** Codec ids of the stored rows, read straight from the shard files. */
function storedCodecs(dataDir: string, shards: number): Map<string, number> {
  const out = new Map<string, number>();
  for (let i = 0; i < shards; i++) {
    const db = new Database(shardPath(dataDir, i), { readonly: true });
    for (const row of db.prepare('SELECT key, codec FROM blobs').all() as { key: Buffer; codec: number }[]) {
      out.set(row.key.toString(), row.codec);
    }
    db.close();
  }
  return out;
}

async function withServer<T>(overrides: Record<string, unknown>, fn: (s: TestServer, r: Redis) => Promise<T>): Promise<T> {
  const s = await startOurs(overrides);
  const r = client(s.port);
  try {
    return await fn(s, r);
  } finally {
    r.disconnect();
    await s.close();
  }
}

describe('storage compression', () => {
  for (const algorithm of ['gzip', 'zstd', 'lz4', 'brotli'] as const) {
    const range = levelRange(algorithm)!;
    const levels = [...new Set([range.min, defaultLevel(algorithm), range.max])];
    for (const level of levels) {
      it(`${algorithm} level ${level}: values round-trip and compressible ones are stored compressed`, async () => {
        const random = randomBytes(20_000);
        const binary = Buffer.from(Array.from({ length: 1024 }, (_, i) => i % 256));
        await withServer({ storage_compression: { enabled: true, algorithm, level } }, async (s, r) => {
          await r.set('text', TEXT);
          await r.set('small', SMALL_TEXT);
          await r.set('random', random);
          await r.set('binary', binary);
          await r.set('empty', '');
          await r.hset('ns', 'text', TEXT);
          assert.ok((await r.getBuffer('text'))!.equals(TEXT));
          assert.ok((await r.getBuffer('small'))!.equals(SMALL_TEXT));
          assert.ok((await r.getBuffer('random'))!.equals(random));
          assert.ok((await r.getBuffer('binary'))!.equals(binary));
          assert.deepEqual(await r.getBuffer('empty'), Buffer.alloc(0));
          assert.ok((await r.hgetBuffer('ns', 'text'))!.equals(TEXT));
          await s.store.drain();
          const codecs = storedCodecs(s.dataDir, s.config.num_shards);
          assert.equal(codecs.get('text'), CODEC_IDS[algorithm]);
          assert.equal(codecs.get('random'), 0, 'incompressible data is stored raw');
          assert.equal(codecs.get('empty'), 0);
          const info = await r.info('blobasaur');
          const logical = Number(/logical_bytes:(\d+)/.exec(info)![1]);
          const stored = Number(/stored_bytes:(\d+)/.exec(info)![1]);
          assert.equal(logical, TEXT.length * 2 + SMALL_TEXT.length + random.length + binary.length);
          assert.ok(stored < logical / 2, `stored ${stored} of ${logical}`);
          assert.match(info, new RegExp(`compression:${algorithm}:${level}\\r\\n`));
        });
      });
    }
  }

  it('a directory written with zstd reads back after switching to lz4 and then to none', async () => {
    const dataDir = join(tempDir(), 'data');
    const base = { data_dir: dataDir, num_shards: 2 };
    await withServer({ ...base, storage_compression: { enabled: true, algorithm: 'zstd' } }, async (_s, r) => {
      await r.set('z', TEXT);
      await r.hset('ns', 'z', TEXT);
    });
    await withServer({ ...base, storage_compression: { enabled: true, algorithm: 'lz4' } }, async (_s, r) => {
      assert.ok((await r.getBuffer('z'))!.equals(TEXT));
      await r.set('l', TEXT);
    });
    await withServer({ ...base, storage_compression: { enabled: false } }, async (_s, r) => {
      assert.ok((await r.getBuffer('z'))!.equals(TEXT));
      assert.ok((await r.hgetBuffer('ns', 'z'))!.equals(TEXT));
      assert.ok((await r.getBuffer('l'))!.equals(TEXT));
      await r.set('n', TEXT);
    });
    const codecs = storedCodecs(dataDir, 2);
    assert.deepEqual([codecs.get('z'), codecs.get('l'), codecs.get('n')], [CODEC_IDS.zstd, CODEC_IDS.lz4, CODEC_IDS.none]);
  });

  for (const algorithm of ['gzip', 'zstd', 'lz4', 'brotli'] as Algorithm[]) {
    it(`${algorithm}: a corrupted stored payload answers an error naming the key; the server keeps serving`, async () => {
      const dataDir = join(tempDir(), 'data');
      const settings = { data_dir: dataDir, num_shards: 1, storage_compression: { enabled: true, algorithm } };
      await withServer(settings, async (_s, r) => {
        await r.set('victim', TEXT);
        await r.hset('ns', 'victim', TEXT);
        await r.set('healthy', 'fine');
      });
      const db = new Database(shardPath(dataDir, 0));
      registerSlotFunction(db); // rows of tables with a slot index (schema 4) are written with it
      // The rows' own checksums are cleared, as on rows written before schema migration 3: the
      // codecs are then the only check (storage-faults.test.ts covers the checksum). A truncated
      // payload must be detected by every codec. A rewritten body is detected only by the
      // checksummed formats (gzip, zstd); lz4 and brotli carry no checksum.
      db.prepare('UPDATE blobs SET checksum = NULL').run();
      db.prepare('UPDATE ns_blobs SET checksum = NULL').run();
      db.prepare("UPDATE blobs SET data = substr(data, 1, length(data) / 2) WHERE key = CAST('victim' AS BLOB)").run();
      const body = algorithm === 'gzip' || algorithm === 'zstd'
        ? 'substr(data, 1, 10) || randomblob(length(data) - 10)'
        : 'substr(data, 1, length(data) - 7)';
      db.prepare(`UPDATE ns_blobs SET data = ${body} WHERE key = CAST('victim' AS BLOB)`).run();
      db.close();
      await withServer(settings, async (_s, r) => {
        const err = await r.getBuffer('victim').then(
          (v) => (v !== null && v.equals(TEXT) ? null : new Error('corrupt value returned as data')),
          (e: Error) => e,
        );
        assert.ok(err !== null);
        assert.match(err.message, /^ERR stored value of key 'victim' cannot be decoded: /);
        await assert.rejects(r.hgetBuffer('ns', 'victim'), /^ReplyError: ERR stored value of field 'victim' of 'ns' cannot be decoded: /);
        assert.equal(await r.get('healthy'), 'fine');
        assert.equal(await r.set('after', 'ok'), 'OK');
      });
    });
  }

  it('output_compression is accepted and logged as having no effect', async () => {
    const dir = tempDir();
    const file = join(dir, 'config.toml');
    writeFileSync(file, 'output_compression = true\n[storage_compression]\nenabled = true\nalgorithm = "brotli"\n');
    const child = await spawnOurs(['--config', file, '--data-dir', join(dir, 'data')]);
    child.proc.kill('SIGTERM');
    assert.equal(await child.exited, 0);
    assert.match(child.output(), /config key \\"output_compression\\" has no effect: there is no HTTP data API to compress/);
    // storage_compression is active: no line but the effective-configuration dump mentions it.
    const lines = child.output().split('\n').filter((l) => !l.includes('"msg":"effective configuration"'));
    assert.doesNotMatch(lines.join('\n'), /storage_compression/);
  });
});
