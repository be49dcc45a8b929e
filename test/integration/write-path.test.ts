/**
 * The write path through real sockets: read-your-writes across connections, a full overlay, an
 * injected commit failure, shutdown drain and kill -9 crash safety.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Redis } from 'ioredis';
import { RawClient, resp } from '../helpers/raw.js';
import { spawnOurs, startOurs, tempDir } from '../helpers/servers.js';
import { registerSlotFunction, shardPath } from '../../src/storage/schema.js';

function client(port: number): Redis {
  return new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 0 });
}

/** Makes every write of `key` to shard files fail, as a full disk or I/O error would. */
function injectFailure(dataDir: string, shards: number, key: string): () => void {
  const dbs = Array.from({ length: shards }, (_, i) => new Database(shardPath(dataDir, i)));
  const hex = Buffer.from(key).toString('hex');
  for (const db of dbs) {
    db.exec(`CREATE TRIGGER inject_failure BEFORE INSERT ON blobs WHEN NEW.key = X'${hex}'
             BEGIN SELECT RAISE(ABORT, 'injected I/O failure'); END;`);
  }
  return () => {
    for (const db of dbs) {
      db.exec('DROP TRIGGER inject_failure');
      db.close();
    }
  };
}

describe('write path', () => {
  for (const async_write of [false, true]) {
    const mode = async_write ? 'async' : 'sync';

    it(`${mode}: a write is visible to another connection at once, a pending delete hides the old value`, async () => {
      const s = await startOurs({ async_write, batch_size: 100, batch_timeout_ms: 200 });
      const writer = await RawClient.connect(s.port);
      const reader = await RawClient.connect(s.port);
      try {
        writer.write(resp('SET', 'k', 'old'));
        assert.equal(await writer.reply(), '+OK\r\n');
        // With a 200 ms batch timeout the next writes sit uncommitted while the reader looks.
        writer.write(Buffer.concat([resp('SET', 'k', 'new'), resp('HSET', 'ns', 'f', 'v')]));
        await new Promise((r) => setTimeout(r, 20));
        reader.write(Buffer.concat([resp('GET', 'k'), resp('HGET', 'ns', 'f'), resp('HEXISTS', 'ns', 'f')]));
        assert.deepEqual(await reader.replies(3), ['$3\r\nnew\r\n', '$1\r\nv\r\n', ':1\r\n']);
        assert.ok(s.store.inflightOps > 0 || async_write === false, 'writes were still pending');
        assert.deepEqual(await writer.replies(2), ['+OK\r\n', ':1\r\n']);
        writer.write(Buffer.concat([resp('DEL', 'k'), resp('HDEL', 'ns', 'f')]));
        await new Promise((r) => setTimeout(r, 20));
        reader.write(Buffer.concat([resp('GET', 'k'), resp('EXISTS', 'k'), resp('HGET', 'ns', 'f')]));
        assert.deepEqual(await reader.replies(3), ['$-1\r\n', ':0\r\n', '$-1\r\n']);
        assert.deepEqual(await writer.replies(2), [':1\r\n', ':1\r\n']);
      } finally {
        writer.destroy();
        reader.destroy();
        await s.close();
      }
    });

    it(`${mode}: a full overlay makes writers wait; nothing is dropped`, async () => {
      const s = await startOurs({ async_write, inflight_capacity: 8, batch_size: 4, batch_timeout_ms: 5 });
      const clients = Array.from({ length: 4 }, () => client(s.port));
      try {
        await Promise.all(
          clients.map(async (c, ci) => {
            const p = c.pipeline();
            for (let i = 0; i < 300; i++) p.set(`full:${ci}:${i}`, `v${i}`);
            const res = await p.exec();
            assert.ok(res!.every(([err, v]) => err === null && v === 'OK'));
          }),
        );
        for (let ci = 0; ci < 4; ci++) {
          const values = await clients[0].mget(Array.from({ length: 300 }, (_, i) => `full:${ci}:${i}`)).catch(() => null);
          if (values === null) {
            for (let i = 0; i < 300; i++) assert.equal(await clients[0].get(`full:${ci}:${i}`), `v${i}`);
          }
        }
        assert.equal(await clients[0].dbsize(), 1200);
      } finally {
        clients.forEach((c) => c.disconnect());
        await s.close();
      }
    });

    it(`${mode}: a failed commit is reported and reads return what is stored`, async () => {
      const s = await startOurs({ async_write, num_shards: 2 });
      const r = client(s.port);
      const heal = injectFailure(s.dataDir, 2, 'doomed');
      try {
        assert.equal(await r.set('fine', '1'), 'OK');
        if (async_write) {
          assert.equal(await r.set('doomed', 'x'), 'OK');
          await s.store.drain();
          assert.equal(await r.get('doomed'), null, 'the overlay dropped the failed write');
          assert.match(await r.info('stats'), /async_write_failures:1\r\n/);
        } else {
          await assert.rejects(r.set('doomed', 'x'), /^ReplyError: ERR injected I\/O failure$/);
          assert.equal(await r.get('doomed'), null);
        }
        assert.equal(await r.get('fine'), '1');
        assert.equal(await r.set('after', '2'), 'OK', 'the server keeps serving');
        assert.equal(await r.get('after'), '2');
      } finally {
        heal();
        r.disconnect();
        await s.close();
      }
    });
  }

  it('SIGTERM drains queued async writes before exiting; a restart finds them all', async () => {
    const dataDir = join(tempDir(), 'data');
    const dir = tempDir();
    const configFile = join(dir, 'config.toml');
    const { writeFileSync } = await import('node:fs');
    writeFileSync(configFile, 'async_write = true\nbatch_size = 10000\nbatch_timeout_ms = 60000\nlog_level = "silent"\n');
    let child = await spawnOurs(['--config', configFile, '--data-dir', dataDir]);
    let r = client(child.port);
    const p = r.pipeline();
    for (let i = 0; i < 2000; i++) p.set(`drain:${i}`, `v${i}`);
    await p.exec();
    r.disconnect();
    child.proc.kill('SIGTERM');
    assert.equal(await child.exited, 0);
    child = await spawnOurs(['--data-dir', dataDir]);
    r = client(child.port);
    try {
      assert.equal(await r.dbsize(), 2000);
      assert.equal(await r.get('drain:1999'), 'v1999');
    } finally {
      r.disconnect();
      child.proc.kill('SIGTERM');
      await child.exited;
    }
  });

  it('SHUTDOWN drains and exits 0', async () => {
    const dataDir = join(tempDir(), 'data');
    const child = await spawnOurs(['--data-dir', dataDir]);
    const c = await RawClient.connect(child.port);
    c.write(Buffer.concat([resp('SET', 'a', '1'), resp('SHUTDOWN')]));
    assert.equal(await c.untilClosed(), '+OK\r\n');
    assert.equal(await child.exited, 0);
  });

  it('kill -9 under concurrent sync writes loses no acknowledged write; every shard passes integrity_check', async () => {
    const dataDir = join(tempDir(), 'data');
    const child = await spawnOurs(['--data-dir', dataDir, '--shards', '4']);
    const acked = new Set<string>();
    let stop = false;
    const writers = Array.from({ length: 8 }, async (_, w) => {
      const c = client(child.port);
      c.on('error', () => {});
      for (let i = 0; i < 5000 && !stop; i++) {
        const key = `crash:${w}:${i}`;
        try {
          await c.set(key, Buffer.alloc(512, w));
          acked.add(key);
        } catch {
          break;
        }
      }
      c.disconnect();
    });
    await new Promise((r) => setTimeout(r, 700));
    child.proc.kill('SIGKILL');
    stop = true;
    await Promise.all(writers);
    await child.exited;
    assert.ok(acked.size > 100, `only ${acked.size} writes were acknowledged before the kill`);
    for (let i = 0; i < 4; i++) {
      const db = new Database(shardPath(dataDir, i));
      registerSlotFunction(db); // the slot indexes (schema 4) are checked with the same function
      assert.equal(db.pragma('integrity_check', { simple: true }), 'ok');
      db.close();
    }
    const again = await spawnOurs(['--data-dir', dataDir, '--shards', '4']);
    const r = client(again.port);
    try {
      const keys = [...acked];
      for (let i = 0; i < keys.length; i += 500) {
        const values = await r.pipeline(keys.slice(i, i + 500).map((k) => ['exists', k])).exec();
        values!.forEach(([err, v], j) => assert.equal(v, 1, `${keys[i + j]} was acknowledged but is gone (${err})`));
      }
    } finally {
      r.disconnect();
      again.proc.kill('SIGTERM');
      await again.exited;
    }
  });
});

describe('sqlite locking_mode', () => {
  it('EXCLUSIVE serves and persists, and keeps other processes out while the server runs', async () => {
    const dataDir = join(tempDir(), 'data');
    const settings = { data_dir: dataDir, num_shards: 2, sqlite: { locking_mode: 'EXCLUSIVE' } };
    let s = await startOurs(settings);
    let r = client(s.port);
    try {
      const p = r.pipeline();
      for (let i = 0; i < 200; i++) p.set(`x:${i}`, `v${i}`);
      await p.exec();
      assert.equal(await r.get('x:199'), 'v199');
      const outsider = new Database(shardPath(dataDir, 0), { timeout: 0 });
      assert.throws(() => outsider.prepare('SELECT count(*) FROM blobs').get(), /database is locked/);
      outsider.close();
    } finally {
      r.disconnect();
      await s.close();
    }
    s = await startOurs(settings);
    r = client(s.port);
    try {
      assert.equal(await r.dbsize(), 200);
      assert.equal(await r.get('x:7'), 'v7');
    } finally {
      r.disconnect();
      await s.close();
    }
  });
});

describe('WAL checkpoints', () => {
  it('run in the maintenance worker: the main file grows while the server runs, below the shard\'s own threshold', async () => {
    const { statSync } = await import('node:fs');
    const s = await startOurs({ num_shards: 1 });
    const r = client(s.port);
    const file = shardPath(s.dataDir, 0);
    try {
      const before = statSync(file).size;
      // 8 MiB: far below the 64 MiB at which the shard would checkpoint inside a commit.
      const value = Buffer.alloc(8192, 1);
      const p = r.pipeline();
      for (let i = 0; i < 1024; i++) p.set(`w:${i}`, value);
      await p.exec();
      const deadline = Date.now() + 10_000;
      while (statSync(file).size < before + 8 * 1024 * 1024 && Date.now() < deadline) await new Promise((res) => setTimeout(res, 25));
      assert.ok(statSync(file).size >= before + 8 * 1024 * 1024, `main file is ${statSync(file).size} bytes`);
      // The worker's report of the checkpoint comes back as a message after the file has grown.
      let info = await r.info('persistence');
      while (!/wal_checkpoints:[1-9]/.test(info) && Date.now() < deadline) {
        await new Promise((res) => setTimeout(res, 25));
        info = await r.info('persistence');
      }
      assert.match(info, /wal_checkpoint_worker:1\r\n/);
      assert.ok(Number(/wal_checkpoints:(\d+)/.exec(info)?.[1]) >= 1, info);
      assert.match(info, /wal_checkpoint_failures:0\r\n/);
      assert.equal((await r.getBuffer('w:1023'))?.equals(value), true);
    } finally {
      r.disconnect();
      await s.close();
    }
  });
});
