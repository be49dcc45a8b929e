/**
 * `blobasaur migrate`: 20,000 keys on 4 shards moved to 6 with the process SIGKILLed several times
 * mid-way (the first time as soon as progress shows), then run to completion; every key and value
 * checked through a server on 6 shards, each key in exactly one shard file (its home), counts
 * equal. Then shrunk to 3 shards, checked from the files.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { Redis } from 'ioredis';
import { ShardRing } from '../../src/storage/mpchash.js';
import { MAIN_JS, freePort, spawnOurs, tempDir } from '../helpers/servers.js';
import { registerSlotFunction, shardPath } from '../../src/storage/schema.js';

const execFileP = promisify(execFile);
const KEYS = 20_000;
const FIELDS = 300;

const val = (i: number): string => `value:${i}:`.padEnd(64 + (i % 200), String.fromCharCode(65 + (i % 26)));

function client(port: number): Redis {
  return new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 0 });
}

/** Every row of every shard file: plain keys and namespaced fields, with the shard they are in. */
function rowsByShard(data: string, shards: number): { keys: Map<string, number[]>; fields: Map<string, number[]>; total: number } {
  const keys = new Map<string, number[]>();
  const fields = new Map<string, number[]>();
  let total = 0;
  for (let s = 0; s < shards; s++) {
    const db = new Database(shardPath(data, s), { readonly: true });
    try {
      for (const k of db.prepare('SELECT key FROM blobs').pluck().all() as Buffer[]) {
        const list = keys.get(k.toString()) ?? [];
        list.push(s);
        keys.set(k.toString(), list);
        total++;
      }
      for (const row of db.prepare('SELECT namespace, key FROM ns_blobs').all() as { namespace: Buffer; key: Buffer }[]) {
        const id = `${row.namespace.toString()}/${row.key.toString()}`;
        const list = fields.get(id) ?? [];
        list.push(s);
        fields.set(id, list);
        total++;
      }
      registerSlotFunction(db); // the slot indexes (schema 4) are checked with the same function
      assert.equal(db.pragma('integrity_check', { simple: true }), 'ok');
    } finally {
      db.close();
    }
  }
  return { keys, fields, total };
}

/** Each key in exactly one shard file, its home under `shards`; nothing lost. */
function checkPlacement(data: string, shards: number): void {
  const ring = new ShardRing(shards);
  const { keys, fields, total } = rowsByShard(data, shards);
  assert.equal(total, KEYS + FIELDS);
  assert.equal(keys.size, KEYS);
  assert.equal(fields.size, FIELDS);
  for (let i = 0; i < KEYS; i++) {
    const where = keys.get(`key:${i}`);
    assert.deepEqual(where, [ring.shardOf(Buffer.from(`key:${i}`))], `key:${i} is in shards ${where}`);
  }
  for (let i = 0; i < FIELDS; i++) {
    assert.deepEqual(fields.get(`ns:${i % 7}/f:${i}`), [ring.shardOf(Buffer.from(`f:${i}`))]);
  }
}

/** Starts the real CLI on `shards` and reads back every key, field and the counts. */
async function checkThroughServer(data: string, shards: number): Promise<void> {
  const server = await spawnOurs(['--data-dir', data, '--shards', String(shards)]);
  const r = client(server.port);
  try {
    assert.equal(await r.dbsize(), KEYS + 7);
    const got = await r.pipeline(Array.from({ length: KEYS }, (_, i) => ['get', `key:${i}`])).exec();
    got!.forEach(([err, v], i) => {
      assert.equal(err, null);
      assert.equal(v, val(i), `key:${i}`);
    });
    const hf = await r.pipeline(Array.from({ length: FIELDS }, (_, i) => ['hget', `ns:${i % 7}`, `f:${i}`])).exec();
    hf!.forEach(([err, v], i) => {
      assert.equal(err, null);
      assert.equal(v, `field-value:${i}`);
    });
  } finally {
    r.disconnect();
    server.proc.kill('SIGTERM');
    assert.equal(await server.exited, 0);
  }
}

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs `blobasaur migrate`; SIGKILLs it when `killWhen` says so (given the stderr so far). */
function migrate(data: string, to: number, killWhen: ((stderr: string, ms: number) => boolean) | null): Promise<Run> {
  const started = Date.now();
  const proc = spawn(process.execPath, [MAIN_JS, 'migrate', '--data-dir', data, '--to-shards', String(to), '--batch', '200'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  let timer: NodeJS.Timeout | null = null;
  const check = (): void => {
    if (killWhen !== null && proc.exitCode === null && killWhen(stderr, Date.now() - started)) proc.kill('SIGKILL');
  };
  proc.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  proc.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
    check();
  });
  if (killWhen !== null) timer = setInterval(check, 5);
  return new Promise((resolve) =>
    proc.once('exit', (code, signal) => {
      if (timer !== null) clearInterval(timer);
      resolve({ code, signal, stdout, stderr });
    }),
  );
}

describe('shard migration', () => {
  it('4 -> 6 shards survives SIGKILLs mid-way, then 6 -> 3; no key lost or duplicated', async () => {
    const data = join(tempDir('blobasaur-ops-migrate-'), 'data');
    const server = await spawnOurs(['--data-dir', data, '--shards', '4']);
    const r = client(server.port);
    try {
      for (let start = 0; start < KEYS; start += 5000) {
        const res = await r.pipeline(Array.from({ length: 5000 }, (_, j) => ['set', `key:${start + j}`, val(start + j)])).exec();
        assert.ok(res!.every(([err]) => err === null));
      }
      const res = await r.pipeline(Array.from({ length: FIELDS }, (_, i) => ['hset', `ns:${i % 7}`, `f:${i}`, `field-value:${i}`])).exec();
      assert.ok(res!.every(([err]) => err === null));
      // Not while the server has the files open.
      const busy = await migrate(data, 6, null);
      assert.equal(busy.code, 1);
      assert.equal(busy.stderr, `blobasaur migrate: ${shardPath(data, 0)} is in use by another process (is the server running?); stop the server before migrating\n`);
      assert.equal(existsSync(join(data, 'migrate.json')), false);
    } finally {
      r.disconnect();
      server.proc.kill('SIGTERM');
      assert.equal(await server.exited, 0);
    }
    checkPlacement(data, 4);

    // Kill #1: as soon as progress shows.
    const first = await migrate(data, 6, (stderr) => /rows scanned/.test(stderr));
    assert.equal(first.signal, 'SIGKILL', `killed mid-way; it printed ${first.stdout}${first.stderr}`);
    assert.match(first.stderr, /^migrate: 200\/20300 rows scanned \(0%\), source shard 1\/4, \d+ moved\n/);
    const state = JSON.parse(readFileSync(join(data, 'migrate.json'), 'utf8')) as { from: number; to: number; rows_before: number };
    assert.deepEqual([state.from, state.to, state.rows_before], [4, 6, KEYS + FIELDS]);
    assert.deepEqual(JSON.parse(readFileSync(join(data, 'blobasaur.json'), 'utf8')), { format: 1, num_shards: 4 });

    // The server refuses a directory in the middle of a migration, with either count.
    for (const shards of ['4', '6']) {
      const port = await freePort();
      await assert.rejects(execFileP(process.execPath, [MAIN_JS, '--addr', `127.0.0.1:${port}`, '--data-dir', data, '--shards', shards]), (err: { code: number; stderr: string }) => {
        assert.equal(err.code, 1);
        assert.match(err.stderr, /migrate\.json exists: a shard migration of this directory was interrupted\. Run the same `blobasaur migrate` command again/);
        return true;
      });
    }
    // Another target count is refused while this one is unfinished.
    const other = await migrate(data, 5, null);
    assert.equal(other.code, 1);
    assert.equal(other.stderr, `blobasaur migrate: a migration from 4 to 6 shards is in progress in ${data}; run it again with --to-shards 6 to finish it\n`);

    // Kills at more points, wherever the process happens to be (some may land after it finished).
    let finished = false;
    for (const ms of [700, 1000]) {
      const run = await migrate(data, 6, (_stderr, elapsed) => elapsed >= ms);
      if (run.signal === null) {
        assert.equal(run.code, 0, run.stderr);
        finished = true;
        break;
      }
    }
    if (!finished) {
      const last = await migrate(data, 6, null);
      assert.equal(last.code, 0, last.stderr);
      assert.match(last.stdout, new RegExp(`^migrated ${data} from 4 to 6 shards \\(resumed\\): ${KEYS + FIELDS} rows verified, \\d+ moved in this run\\n$`));
    }
    assert.equal(existsSync(join(data, 'migrate.json')), false);
    assert.deepEqual(JSON.parse(readFileSync(join(data, 'blobasaur.json'), 'utf8')), { format: 1, num_shards: 6 });
    checkPlacement(data, 6);
    await checkThroughServer(data, 6);

    const again = await migrate(data, 6, null);
    assert.equal(again.stdout, `${data} already has 6 shards: nothing to do\n`);

    const shrink = await migrate(data, 3, null);
    assert.equal(shrink.code, 0, shrink.stderr);
    assert.match(shrink.stdout, new RegExp(`^migrated ${data} from 6 to 3 shards: ${KEYS + FIELDS} rows verified, \\d+ moved in this run\\n$`));
    for (const s of [3, 4, 5]) assert.equal(existsSync(shardPath(data, s)), false);
    checkPlacement(data, 3);
  });
});
