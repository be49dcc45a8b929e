/**
 * Storage faults (issue 18, item 2): a damaged b-tree page and a flipped bit inside a value. The
 * server runs as a child process, so an uncaught SQLite error would show as its exit: every read
 * must instead get a clean error reply, the server stays up (through restarts too), the damaged
 * shard is reported by /health, INFO and /metrics, and the other shards keep serving.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Redis } from 'ioredis';
import { ShardRing } from '../../src/storage/mpchash.js';
import { shardPath } from '../../src/storage/schema.js';
import { freePort, MAIN_JS, spawnOurs, tempDir, type Child } from '../helpers/servers.js';
import { breakPageHolding, findOnce, flipBit } from '../helpers/corrupt.js';

const SHARDS = 4;
const ring = new ShardRing(SHARDS);

function client(port: number): Redis {
  const r = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 0, enableReadyCheck: false, retryStrategy: () => null });
  r.on('error', () => {});
  return r;
}

interface Node {
  child: Child;
  metricsPort: number;
  dir: string;
}

async function start(dir: string, extra = ''): Promise<Node> {
  const metricsPort = await freePort();
  const config = join(dir, 'blobasaur.toml');
  writeFileSync(
    config,
    `data_dir = "${join(dir, 'data')}"\nnum_shards = ${SHARDS}\n${extra}\n[metrics]\nenabled = true\naddr = "127.0.0.1:${metricsPort}"\n`,
  );
  return { child: await spawnOurs(['--config', config]), metricsPort, dir };
}

async function stop(node: Node): Promise<number | null> {
  node.child.proc.kill('SIGTERM');
  return node.child.exited;
}

async function health(node: Node): Promise<{ status: number; body: { ok: boolean; shards: { shard: number; damaged: boolean; readable: boolean }[] } }> {
  const res = await fetch(`http://127.0.0.1:${node.metricsPort}/health`);
  return { status: res.status, body: (await res.json()) as never };
}

async function metrics(node: Node): Promise<string> {
  return (await fetch(`http://127.0.0.1:${node.metricsPort}/metrics`)).text();
}

function infoField(info: string, field: string): string | undefined {
  return new RegExp(`^${field}:(.*)$`, 'm').exec(info)?.[1]?.trim();
}

/** A key of the given shard, and one of another shard. */
function keyOn(shard: number, prefix: string): string {
  for (let i = 0; ; i++) if (ring.shardOf(Buffer.from(`${prefix}${i}`)) === shard) return `${prefix}${i}`;
}

/** Waits past the end of the event-loop turn (where the shared read transaction commits). */
const turn = (): Promise<void> => new Promise((r) => setTimeout(r, 50));

const started: Node[] = [];
after(async () => {
  for (const n of started) if (n.child.proc.exitCode === null) n.child.proc.kill('SIGKILL');
});

describe('a damaged b-tree page', () => {
  it('gives a clean error reply, keeps the server up, and marks the shard damaged', async () => {
    const dir = tempDir('blobasaur-corrupt-');
    let node = await start(dir);
    started.push(node);
    let r = client(node.child.port);
    const victimShard = 2;
    const victim = keyOn(victimShard, 'victim:');
    const marker = Buffer.from('MARKER-OF-THE-VICTIM-VALUE');
    // Fillers on every shard first, so the victim's page is not page 1 and other pages of the
    // damaged shard stay readable.
    const p = r.pipeline();
    for (let i = 0; i < 400; i++) p.set(`filler:${i}`, `filler-${i}-`.padEnd(900, 'f'));
    p.set(victim, Buffer.concat([marker, Buffer.alloc(1500, 'v')]));
    const res = await p.exec();
    assert.ok(res !== null && res.every(([err]) => err === null));
    r.disconnect();
    assert.equal(await stop(node), 0);

    const file = shardPath(join(dir, 'data'), victimShard);
    breakPageHolding(file, marker);

    node = await start(dir);
    started.push(node);
    r = client(node.child.port);
    await assert.rejects(r.get(victim), (err: Error) => {
      assert.match(err.message, new RegExp(`^ERR shard-${victimShard}\\.db: database disk image is malformed \\(SQLITE_CORRUPT`));
      return true;
    });
    await turn();
    // Still up, after the turn whose read transaction saw the damage has ended.
    assert.equal(await r.ping(), 'PONG');
    await assert.rejects(r.get(victim), /SQLITE_CORRUPT/);
    await turn();
    // Other shards serve.
    for (const shard of [0, 1, 3]) {
      const key = keyOn(shard, 'filler:');
      assert.equal(await r.get(key), `${key.replace(':', '-')}-`.padEnd(900, 'f'));
    }
    const elsewhere = keyOn(0, 'after:');
    assert.equal(await r.set(elsewhere, 'ok'), 'OK');
    // A write to the damaged shard may fail (its b-tree passes through the bad page), but only
    // with an error reply for that command.
    const onDamaged = await r.set(keyOn(victimShard, 'write:'), 'x').catch((err: Error) => err.message);
    assert.ok(onDamaged === 'OK' || /^ERR shard-2\.db: /.test(onDamaged), onDamaged);
    await turn();
    assert.equal(await r.ping(), 'PONG');

    const blobasaur = await r.info('blobasaur');
    assert.equal(infoField(blobasaur, 'shard_damaged'), [0, 1, 2, 3].map((s) => (s === victimShard ? 1 : 0)).join(','));
    assert.ok(Number(infoField(blobasaur, 'storage_errors')) >= 2);
    assert.equal(infoField(await r.info('persistence'), 'storage_damaged_shards'), '1');

    const h = await health(node);
    assert.equal(h.status, 503);
    assert.equal(h.body.ok, false);
    assert.deepEqual(
      h.body.shards.map((s) => s.damaged),
      [0, 1, 2, 3].map((s) => s === victimShard),
    );
    const text = await metrics(node);
    assert.match(text, new RegExp(`^blobasaur_shard_damaged\\{shard="${victimShard}"\\} 1$`, 'm'));
    assert.match(text, /^blobasaur_shard_damaged\{shard="0"\} 0$/m);
    assert.match(node.child.output(), new RegExp(`storage error: shard-${victimShard}\\.db: database disk image is malformed`));
    assert.match(node.child.output(), new RegExp(`"file":"[^"]*shard-${victimShard}\\.db"`));
    r.disconnect();
    assert.equal(await stop(node), 0);

    // And again after a restart: the damage does not take the process down at start or on reads.
    node = await start(dir);
    started.push(node);
    r = client(node.child.port);
    await assert.rejects(r.get(victim), /SQLITE_CORRUPT/);
    await turn();
    assert.equal(await r.get(keyOn(0, 'after:')), 'ok');
    r.disconnect();
    assert.equal(await stop(node), 0);
  });
});

describe('a flipped bit inside a stored value', () => {
  for (const algorithm of ['none', 'lz4', 'zstd', 'gzip'] as const) {
    it(`is an error naming the key, never wrong bytes (${algorithm})`, async () => {
      const dir = tempDir('blobasaur-bitflip-');
      const compression = algorithm === 'none' ? '' : `[storage_compression]\nenabled = true\nalgorithm = "${algorithm}"\n`;
      let node = await start(dir, compression);
      started.push(node);
      let r = client(node.child.port);
      const key = keyOn(1, `flip-${algorithm}:`);
      const neighbour = keyOn(1, `ok-${algorithm}:`);
      const value = Buffer.from(`${algorithm}:`.padEnd(2048, 'abcdefgh'));
      await r.set(key, value);
      await r.hset('ns', 'field', 'kept');
      await r.set(neighbour, 'fine');
      assert.deepEqual(await r.getBuffer(key), value);
      r.disconnect();
      assert.equal(await stop(node), 0);

      const file = shardPath(join(dir, 'data'), 1);
      // One bit in the middle of the value's stored bytes (compressed or raw), found in the file.
      const db = new Database(file, { readonly: true });
      const stored = db.prepare('SELECT data, codec FROM blobs WHERE key = ?').get(Buffer.from(key)) as { data: Buffer; codec: number };
      db.close();
      assert.equal(stored.codec === 0, algorithm === 'none', 'stored with the codec under test');
      flipBit(file, findOnce(file, stored.data) + Math.floor(stored.data.length / 2), 3);

      node = await start(dir, compression);
      started.push(node);
      r = client(node.child.port);
      await assert.rejects(r.getBuffer(key), (err: Error) => {
        assert.equal(err.message, `ERR stored value of key '${key}' is corrupt: checksum mismatch`);
        return true;
      });
      assert.equal(await r.get(neighbour), 'fine');
      assert.equal(await r.hget('ns', 'field'), 'kept');
      assert.equal(infoField(await r.info('blobasaur'), 'shard_damaged'), '0,1,0,0');
      r.disconnect();
      assert.equal(await stop(node), 0);
    });
  }
});

describe('a shard file that cannot be opened', () => {
  it('stops the start with one line naming the file and the cause, exit code 1', async () => {
    const dir = tempDir('blobasaur-notadb-');
    const node = await start(dir);
    started.push(node);
    assert.equal(await stop(node), 0);
    const file = shardPath(join(dir, 'data'), 3);
    writeFileSync(file, Buffer.alloc(8192, 'not a database '));
    const port = await freePort();
    const proc = spawn(process.execPath, [MAIN_JS, '--config', join(dir, 'blobasaur.toml'), '--addr', `127.0.0.1:${port}`], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => proc.once('exit', resolve));
    assert.equal(code, 1);
    assert.equal(stderr, `blobasaur: cannot open shard file ${file}: file is not a database (SQLITE_NOTADB)\n`);
  });
});
