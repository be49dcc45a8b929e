/**
 * A bounded soak: for a few seconds, tens of connections send random bytes, truncated and mutated
 * commands, absurd declared lengths and abrupt disconnects to a live server (a child process, so a
 * crash shows as an exit), while one well-behaved ioredis client writes and reads back its own data.
 * The server must stay up and that client must see no error and no wrong byte.
 *
 * The byte streams come from a seeded generator; the seed is printed, and SOAK_SEED=<n> replays it.
 * SOAK_MS and SOAK_CONNECTIONS scale the run (defaults: 4000 ms, 30 connections).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { mib, MiB, procMemory } from '../helpers/proc.js';
import { fuzzer, rng } from '../helpers/hostile.js';
import { spawnOurs, tempDir, type Child } from '../helpers/servers.js';

const SOAK_MS = Number(process.env.SOAK_MS ?? 4000);
const CONNECTIONS = Number(process.env.SOAK_CONNECTIONS ?? 30);
const SEED = Number(process.env.SOAK_SEED ?? Date.now() % 2 ** 31);

/** What a run must reach to count; under load it runs past SOAK_MS (up to a minute more) to get there. */
const MIN_GOOD_OPS = 100;
const MIN_BURSTS = 500;
const OVERTIME_MS = 60_000;

describe(`soak: ${CONNECTIONS} hostile connections for ${SOAK_MS} ms, and one good client (seed ${SEED})`, () => {
  let dir: string;
  let child: Child;
  before(async () => {
    dir = tempDir();
    child = await spawnOurs(['--data-dir', join(dir, 'data')]);
  });
  after(async () => {
    child.proc.kill('SIGTERM');
    await child.exited;
    rmSync(dir, { recursive: true, force: true });
  });

  it('the server stays up and the good client sees no error and no wrong byte', async (t) => {
    const pid = child.proc.pid!;
    const base = procMemory(pid);
    const good = new Redis({ host: '127.0.0.1', port: child.port, lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
    const goodErrors: string[] = [];
    good.on('error', (err: Error) => goodErrors.push(`error event: ${err.message}`));
    good.on('close', () => goodErrors.push('the good connection closed'));
    await good.connect();

    const until = Date.now() + SOAK_MS;
    const stats = { bursts: 0, connections: 0 };
    let ops = 0;
    // The good client and the fuzzers go on together until the time is up and both did enough: a
    // loaded machine makes the run longer, not the checks weaker.
    const enough = (): boolean => Date.now() > until + OVERTIME_MS || (Date.now() >= until && ops >= MIN_GOOD_OPS && stats.bursts >= MIN_BURSTS);
    let goodDone = false;
    const fuzzers = Array.from({ length: CONNECTIONS }, (_, i) => fuzzer(child.port, rng(SEED + i + 1), () => goodDone, stats));

    const expected = new Map<string, Buffer>();
    const gr = rng(SEED ^ 0x5eed);
    const randomValue = (): Buffer => {
      const b = Buffer.alloc(Math.floor(gr() * (gr() < 0.05 ? 256 * 1024 : 2048)));
      for (let i = 0; i < b.length; i++) b[i] = Math.floor(gr() * 256);
      return b;
    };
    try {
      for (let i = 0; !enough(); i++) {
        const key = `well-behaved:${i % 200}`;
        const v = randomValue();
        assert.equal(await good.set(key, v), 'OK');
        expected.set(key, v);
        assert.deepEqual(await good.getBuffer(key), v, `GET ${key}`);
        assert.equal(await good.hset('well-behaved-ns', key, v), i < 200 ? 1 : 0);
        assert.deepEqual(await good.hgetBuffer('well-behaved-ns', key), v, `HGET ${key}`);
        if (i % 17 === 0) {
          const pipe = good.pipeline();
          for (let j = 0; j < 50; j++) pipe.echo(`pipelined-${j}`);
          const res = (await pipe.exec())!;
          res.forEach(([err, val], j) => {
            assert.equal(err, null);
            assert.equal(val, `pipelined-${j}`);
          });
        }
        ops += 4;
      }
    } catch (err) {
      goodErrors.push(`command failed: ${err instanceof Error ? err.message : String(err)}`);
    }
    goodDone = true;
    await Promise.all(fuzzers);

    // Everything the good client wrote is there, byte for byte.
    for (const [key, v] of expected) {
      assert.deepEqual(await good.getBuffer(key), v);
      assert.deepEqual(await good.hgetBuffer('well-behaved-ns', key), v);
    }
    const info = await good.info('stats');
    // Every hostile connection is gone from the server too (refused ones linger at most 2 s).
    let clients = -1;
    for (let i = 0; i < 50 && clients !== 1; i++) {
      clients = Number(/connected_clients:(\d+)/.exec(await good.info('clients'))?.[1]);
      if (clients !== 1) await new Promise((res) => setTimeout(res, 100));
    }
    good.disconnect();
    assert.equal(clients, 1, 'hostile connections left behind on the server');
    const protocolErrors = Number(/total_error_replies:(\d+)/.exec(info)?.[1] ?? 0);
    const m = procMemory(pid);
    t.diagnostic(
      `${ops} good commands; ${stats.connections} hostile connections sent ${stats.bursts} bursts; ` +
        `${protocolErrors} error replies; RSS ${mib(base.rss)} -> ${mib(m.rss)} (peak ${mib(m.peak)})`,
    );
    assert.deepEqual(goodErrors, []);
    assert.equal(child.proc.exitCode, null, `the server exited: ${child.output().slice(-2000)}`);
    assert.ok(ops >= MIN_GOOD_OPS, `only ${ops} good commands ran`);
    assert.ok(stats.bursts >= MIN_BURSTS, `only ${stats.bursts} hostile bursts`);
    assert.ok(protocolErrors > 100, 'the hostile input hardly reached the parser');
    assert.ok(m.peak < base.rss + 512 * MiB, `peak RSS ${mib(m.peak)}`);
  });
});
