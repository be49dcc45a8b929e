/** Data through the wire: binary safety, sizes, pipelining, read-your-writes, restarts. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { RawClient, resp } from '../helpers/raw.js';
import { MAIN_JS, spawnOurs, startOurs, tempDir } from '../helpers/servers.js';

const run = promisify(execFile);

function client(port: number): Redis {
  return new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 0 });
}

for (const mode of [{ async_write: false }, { async_write: true, batch_size: 50, batch_timeout_ms: 10 }]) {
  describe(`data, ${mode.async_write ? 'async' : 'sync'} writes`, () => {
    it('every byte value in keys, namespaces and values', async () => {
      const s = await startOurs(mode);
      const r = client(s.port);
      try {
        for (let b = 0; b < 256; b++) {
          const key = Buffer.from([b, 0x6b, b]);
          const value = Buffer.from([b, b, 0, 13, 10, b]);
          assert.equal(await r.set(key, value), 'OK');
          assert.equal(await r.hset(key, key, value), 1);
        }
        const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
        assert.equal(await r.set(all, all), 'OK');
        for (let b = 0; b < 256; b++) {
          const key = Buffer.from([b, 0x6b, b]);
          const value = Buffer.from([b, b, 0, 13, 10, b]);
          assert.deepEqual(await r.getBuffer(key), value, `byte ${b}`);
          assert.deepEqual(await r.hgetBuffer(key, key), value, `byte ${b} (namespaced)`);
        }
        assert.deepEqual(await r.getBuffer(all), all);
      } finally {
        r.disconnect();
        await s.close();
      }
    });

    it('empty value, and a 64 MiB value', async () => {
      const s = await startOurs(mode);
      const r = client(s.port);
      try {
        assert.equal(await r.set('empty', ''), 'OK');
        assert.deepEqual(await r.getBuffer('empty'), Buffer.alloc(0));
        assert.equal(await r.exists('empty'), 1);
        const big = randomBytes(64 * 1024 * 1024);
        assert.equal(await r.set('big', big), 'OK');
        assert.ok((await r.getBuffer('big'))!.equals(big));
        assert.equal(await r.hset('ns', 'big', big), 1);
        assert.ok((await r.hgetBuffer('ns', 'big'))!.equals(big));
      } finally {
        r.disconnect();
        await s.close();
      }
    });

    it('10,000 pipelined commands answered in order, each read seeing the writes before it', async () => {
      const s = await startOurs(mode);
      const c = await RawClient.connect(s.port);
      try {
        const parts: Buffer[] = [];
        const expected: string[] = [];
        for (let i = 0; i < 2000; i++) {
          parts.push(resp('SET', `p${i % 300}`, `v${i}`));
          expected.push('+OK\r\n');
          parts.push(resp('GET', `p${i % 300}`));
          expected.push(`$${`v${i}`.length}\r\nv${i}\r\n`);
          parts.push(resp('DEL', `p${i % 300}`));
          expected.push(':1\r\n');
          parts.push(resp('GET', `p${i % 300}`));
          expected.push('$-1\r\n');
          parts.push(resp('HSET', 'ns', `f${i}`, 'x'));
          expected.push(':1\r\n');
        }
        c.write(Buffer.concat(parts));
        const got = await c.replies(10_000, 60_000);
        assert.equal(got.length, 10_000);
        for (let i = 0; i < expected.length; i++) assert.equal(got[i], expected[i], `reply ${i}`);
      } finally {
        c.destroy();
        await s.close();
      }
    });
  });
}

describe('restarts and layout', () => {
  it('data is intact after a graceful restart of the real CLI', async () => {
    const dir = tempDir();
    const dataDir = join(dir, 'data');
    let child = await spawnOurs(['--data-dir', dataDir, '--shards', '8']);
    let r = client(child.port);
    const values = new Map<string, Buffer>();
    for (let i = 0; i < 500; i++) values.set(`restart:${i}`, randomBytes(i * 7));
    for (const [k, v] of values) await r.set(k, v);
    await r.hset('restart:ns', 'a', '1', 'b', '2');
    await r.del('restart:0');
    r.disconnect();
    child.proc.kill('SIGTERM');
    assert.equal(await child.exited, 0);

    child = await spawnOurs(['--data-dir', dataDir, '--shards', '8']);
    r = client(child.port);
    try {
      assert.equal(await r.get('restart:0'), null);
      for (const [k, v] of values) if (k !== 'restart:0') assert.deepEqual(await r.getBuffer(k), v, k);
      assert.equal(await r.hget('restart:ns', 'b'), '2');
      assert.equal(await r.dbsize(), 500);
    } finally {
      r.disconnect();
      child.proc.kill('SIGTERM');
      await child.exited;
    }
  });

  it('refuses a data directory made with another shard count, saying what to do', async () => {
    const dataDir = join(tempDir(), 'data');
    const child = await spawnOurs(['--data-dir', dataDir, '--shards', '4']);
    child.proc.kill('SIGTERM');
    await child.exited;
    const err = await run(process.execPath, [MAIN_JS, '--data-dir', dataDir, '--shards', '8', '--addr', '127.0.0.1:0']).catch(
      (e: { code: number; stderr: string }) => e,
    );
    assert.equal((err as { code: number }).code, 1);
    assert.match((err as { stderr: string }).stderr, /holds 4 shards but num_shards is 8\. Start with num_shards = 4/);
  });

  it('refuses a bad config file naming the file, the key and what is allowed', async () => {
    const dir = tempDir();
    const file = join(dir, 'config.toml');
    writeFileSync(file, 'num_shards = 0\nbogus = 1\n[storage_compression]\nalgorithm = "snappy"\n');
    const err = (await run(process.execPath, [MAIN_JS, '--config', file]).catch((e: unknown) => e)) as {
      code: number;
      stderr: string;
    };
    assert.equal(err.code, 2);
    assert.match(err.stderr, new RegExp(`${file}: key "num_shards"`));
    assert.match(err.stderr, /key "storage_compression\.algorithm".*allowed: .*"zstd"/);
    assert.match(err.stderr, /unknown key "bogus"/);
  });

  it('reads ./config.toml when no --config is given; flags override it', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'config.toml'), 'num_shards = 2\ndata_dir = "./from-file"\n');
    const child = await spawnOurs(['--shards', '3'], undefined, dir);
    const r = client(child.port);
    try {
      const info = await r.info('blobasaur');
      assert.match(info, /shards:3\r\n/);
      assert.match(info, new RegExp(`data_dir:${join(dir, 'from-file')}\\r\\n`));
    } finally {
      r.disconnect();
      child.proc.kill('SIGTERM');
      await child.exited;
    }
  });

  it('--help and --version', async () => {
    const help = await run(process.execPath, [MAIN_JS, '--help']);
    assert.match(help.stdout, /--config FILE/);
    const version = await run(process.execPath, [MAIN_JS, '--version']);
    assert.match(version.stdout, /^blobasaur \d+\.\d+\.\d+\n$/);
  });
});
