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
import { connect, type Socket } from 'node:net';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { mib, MiB, procMemory } from '../helpers/proc.js';
import { resp } from '../helpers/raw.js';
import { spawnOurs, tempDir, type Child } from '../helpers/servers.js';

const SOAK_MS = Number(process.env.SOAK_MS ?? 4000);
const CONNECTIONS = Number(process.env.SOAK_CONNECTIONS ?? 30);
const SEED = Number(process.env.SOAK_SEED ?? Date.now() % 2 ** 31);

/** xorshift32: small, fast, reproducible. */
function rng(seed: number): () => number {
  let x = seed | 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

/** Commands the fuzzers may send whole or in pieces: nothing that flushes, shuts down or saves. */
function fuzzCommand(r: () => number, bytes: (n: number) => Buffer): Buffer {
  const key = Buffer.concat([Buffer.from('fuzz:'), bytes(Math.floor(r() * 12))]);
  const value = bytes(Math.floor(r() * (r() < 0.1 ? 100_000 : 200)));
  const pick = Math.floor(r() * 14);
  switch (pick) {
    case 0: return resp('SET', key, value);
    case 1: return resp('GET', key);
    case 2: return resp('HSET', key, bytes(4), value, bytes(3), value);
    case 3: return resp('HGET', key, bytes(4));
    case 4: return resp('DEL', key, key);
    case 5: return resp('EXISTS', key);
    case 6: return resp('PING', value.subarray(0, 50));
    case 7: return resp('ECHO', value);
    case 8: return resp('HELLO', r() < 0.5 ? '3' : '2');
    case 9: return resp('CLIENT', 'SETNAME', bytes(5));
    case 10: return resp('COMMAND', 'INFO', 'get', 'set');
    case 11: return resp('AUTH', bytes(6));
    case 12: return Buffer.from(`SET ${key.toString('latin1')} "a\\x41'b" \r\n`); // inline
    default: return resp('HDEL', key, bytes(4));
  }
}

/** One burst of hostile input. */
function hostileBytes(r: () => number): Buffer {
  const bytes = (n: number): Buffer => {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = Math.floor(r() * 256);
    return b;
  };
  const kind = Math.floor(r() * 9);
  switch (kind) {
    case 0: // random bytes
      return bytes(1 + Math.floor(r() * 4096));
    case 1: { // a valid command cut short
      const c = fuzzCommand(r, bytes);
      return c.subarray(0, Math.floor(r() * c.length));
    }
    case 2: { // a valid command with a few bytes changed
      const c = Buffer.from(fuzzCommand(r, bytes));
      for (let i = 0; i < 1 + r() * 3; i++) c[Math.floor(r() * c.length)] = Math.floor(r() * 256);
      return c;
    }
    case 3: { // a pipeline of valid commands, then garbage
      const parts: Buffer[] = [];
      for (let i = 0; i < 1 + r() * 20; i++) parts.push(fuzzCommand(r, bytes));
      parts.push(bytes(Math.floor(r() * 64)));
      return Buffer.concat(parts);
    }
    case 4: // absurd declared sizes, then a little
      return Buffer.concat([Buffer.from(r() < 0.5 ? '*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$536870912\r\n' : '*1048576\r\n$1\r\nx\r\n'), bytes(Math.floor(r() * 100))]);
    case 5: // structural nonsense
      return Buffer.from(['*-1\r\n', '*0\r\n', '$-1\r\n', '*1\r\n$-5\r\n', '*2\r\n%1\r\n', '*1\r\n$3\r\nab\r\n\r\n', '*a\r\n', '\r\n\r\n', '*1\r\n_\r\n'][Math.floor(r() * 9)]);
    case 6: // unbalanced inline quotes and long lines
      return Buffer.from(r() < 0.5 ? `SET "unterminated ${'x'.repeat(Math.floor(r() * 1000))}\r\n` : `${'y'.repeat(70 * 1024)}`);
    case 7: // a valid pipeline (real work for the server)
      return Buffer.concat(Array.from({ length: 1 + Math.floor(r() * 50) }, () => fuzzCommand(r, bytes)));
    default: // lone CRs and LFs in odd places
      return Buffer.from(`*2\r\n$4\r\nECHO\r\n$3\r\na\rb\n\r\n`.slice(0, Math.floor(r() * 30)));
  }
}

async function fuzzer(port: number, r: () => number, until: number, stats: { bursts: number; connections: number }): Promise<void> {
  while (Date.now() < until) {
    const s: Socket = connect(port, '127.0.0.1');
    stats.connections++;
    s.on('error', () => {});
    s.on('data', () => {}); // read replies so output limits are not what ends the connection
    const closed = new Promise<void>((resolve) => s.once('close', () => resolve()));
    await new Promise<void>((resolve) => {
      s.once('connect', () => resolve());
      s.once('close', () => resolve());
    });
    const bursts = 1 + Math.floor(r() * 5);
    for (let i = 0; i < bursts && !s.destroyed; i++) {
      s.write(hostileBytes(r));
      stats.bursts++;
      await new Promise((res) => setTimeout(res, Math.floor(r() * 15)));
    }
    // Leave abruptly, half-close politely, or linger a little.
    const end = r();
    if (end < 0.4) s.destroy();
    else if (end < 0.7) s.end();
    else await Promise.race([closed, new Promise((res) => setTimeout(res, 50))]);
    s.destroy();
    await closed;
  }
}

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
    const fuzzers = Array.from({ length: CONNECTIONS }, (_, i) => fuzzer(child.port, rng(SEED + i + 1), until, stats));

    const expected = new Map<string, Buffer>();
    let ops = 0;
    const gr = rng(SEED ^ 0x5eed);
    const randomValue = (): Buffer => {
      const b = Buffer.alloc(Math.floor(gr() * (gr() < 0.05 ? 256 * 1024 : 2048)));
      for (let i = 0; i < b.length; i++) b[i] = Math.floor(gr() * 256);
      return b;
    };
    try {
      for (let i = 0; Date.now() < until; i++) {
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
    assert.ok(ops > 100, `only ${ops} good commands ran`);
    assert.ok(stats.bursts > 500, `only ${stats.bursts} hostile bursts`);
    assert.ok(protocolErrors > 100, 'the hostile input hardly reached the parser');
    assert.ok(m.peak < base.rss + 512 * MiB, `peak RSS ${mib(m.peak)}`);
  });
});
