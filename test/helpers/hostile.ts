/**
 * Hostile clients for the soak tests: seeded byte streams of random bytes, truncated and mutated
 * commands, absurd declared lengths, structural nonsense, and (for clients that know the password)
 * the expensive commands a hostile client would pick: glob bombs, huge counts, slow reading.
 * Everything is drawn from a seeded generator, so a seed replays the same bytes.
 */
import { connect, type Socket } from 'node:net';
import { resp } from './raw.js';

export type Rng = () => number;

/** xorshift32: small, fast, reproducible. */
export function rng(seed: number): Rng {
  let x = seed | 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

export function randomBytes(r: Rng, n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(r() * 256);
  return b;
}

export interface FuzzShape {
  /** Largest value a fuzzed write carries (rarely); most carry up to 200 bytes. */
  bigValue: number;
  /** Fuzzed keys are `fuzz:` and this many random bytes at most (a small number bounds the data written). */
  keyBytes: number;
}

export const SECURITY_SOAK_SHAPE: FuzzShape = { bigValue: 100_000, keyBytes: 12 };

/** Commands the fuzzers may send whole or in pieces: nothing that flushes, shuts down or saves. */
export function fuzzCommand(r: Rng, shape: FuzzShape = SECURITY_SOAK_SHAPE): Buffer {
  const bytes = (n: number): Buffer => randomBytes(r, n);
  const key = Buffer.concat([Buffer.from('fuzz:'), bytes(Math.floor(r() * shape.keyBytes))]);
  const value = bytes(Math.floor(r() * (r() < 0.1 ? shape.bigValue : 200)));
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
export function hostileBytes(r: Rng, shape: FuzzShape = SECURITY_SOAK_SHAPE): Buffer {
  const kind = Math.floor(r() * 9);
  switch (kind) {
    case 0: // random bytes
      return randomBytes(r, 1 + Math.floor(r() * 4096));
    case 1: { // a valid command cut short
      const c = fuzzCommand(r, shape);
      return c.subarray(0, Math.floor(r() * c.length));
    }
    case 2: { // a valid command with a few bytes changed
      const c = Buffer.from(fuzzCommand(r, shape));
      for (let i = 0; i < 1 + r() * 3; i++) c[Math.floor(r() * c.length)] = Math.floor(r() * 256);
      return c;
    }
    case 3: { // a pipeline of valid commands, then garbage
      const parts: Buffer[] = [];
      for (let i = 0; i < 1 + r() * 20; i++) parts.push(fuzzCommand(r, shape));
      parts.push(randomBytes(r, Math.floor(r() * 64)));
      return Buffer.concat(parts);
    }
    case 4: // absurd declared sizes, then a little
      return Buffer.concat([Buffer.from(r() < 0.5 ? '*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$536870912\r\n' : '*1048576\r\n$1\r\nx\r\n'), randomBytes(r, Math.floor(r() * 100))]);
    case 5: // structural nonsense
      return Buffer.from(['*-1\r\n', '*0\r\n', '$-1\r\n', '*1\r\n$-5\r\n', '*2\r\n%1\r\n', '*1\r\n$3\r\nab\r\n\r\n', '*a\r\n', '\r\n\r\n', '*1\r\n_\r\n'][Math.floor(r() * 9)]);
    case 6: // unbalanced inline quotes and long lines
      return Buffer.from(r() < 0.5 ? `SET "unterminated ${'x'.repeat(Math.floor(r() * 1000))}\r\n` : `${'y'.repeat(70 * 1024)}`);
    case 7: // a valid pipeline (real work for the server)
      return Buffer.concat(Array.from({ length: 1 + Math.floor(r() * 50) }, () => fuzzCommand(r, shape)));
    default: // lone CRs and LFs in odd places
      return Buffer.from(`*2\r\n$4\r\nECHO\r\n$3\r\na\rb\n\r\n`.slice(0, Math.floor(r() * 30)));
  }
}

/** A pattern that made Redis' matcher exponential (CVE-2022-36021): many stars, no match. */
export function globBomb(r: Rng): string {
  const stars = 5 + Math.floor(r() * 20);
  return `${'*a'.repeat(stars)}*b`;
}

/**
 * What an authenticated hostile client sends to make the server work: glob bombs in KEYS, SCAN and
 * HSCAN MATCH, absurd counts for SCAN and HRANDFIELD, and a big value to read back slowly.
 */
export function expensiveCommand(r: Rng): Buffer {
  const huge = (): string => String([2 ** 31 - 1, 600_000_000, 100_000_000, 2 ** 53, 1e18][Math.floor(r() * 5)]);
  switch (Math.floor(r() * 8)) {
    case 0: return resp('KEYS', globBomb(r));
    case 1: return resp('SCAN', '0', 'MATCH', globBomb(r), 'COUNT', r() < 0.5 ? '1000' : huge());
    case 2: return resp('SCAN', '0', 'COUNT', huge());
    case 3: return resp('HSCAN', 'fuzz:ns', '0', 'MATCH', globBomb(r), 'COUNT', huge());
    case 4: return resp('HRANDFIELD', 'fuzz:ns', `-${huge()}`, ...(r() < 0.5 ? ['WITHVALUES'] : []));
    case 5: return resp('HRANDFIELD', 'fuzz:ns', huge());
    case 6: return resp('HSET', 'fuzz:ns', `f${Math.floor(r() * 64)}`, randomBytes(r, Math.floor(r() * 64)));
    default: return resp('KEYS', `fuzz:${'?'.repeat(Math.floor(r() * 4))}*`);
  }
}

export interface FuzzStats {
  bursts: number;
  connections: number;
}

export interface FuzzerOptions {
  shape?: FuzzShape;
  /** Sent first on every connection (AUTH for a client that knows the password). */
  greeting?: Buffer;
  /** Share of bursts that are expensiveCommand() pipelines instead of hostileBytes(). */
  expensive?: number;
  /** Share of connections that stop reading their replies for a while (slow readers). */
  slowReaders?: number;
}

/**
 * One hostile client: connection after connection until `stop()` says so, each sending a few
 * bursts and then leaving abruptly, half-closing, or lingering.
 */
export async function fuzzer(port: number, r: Rng, stop: () => boolean, stats: FuzzStats, opts: FuzzerOptions = {}): Promise<void> {
  while (!stop()) {
    const s: Socket = connect(port, '127.0.0.1');
    stats.connections++;
    s.on('error', () => {});
    s.on('data', () => {}); // read replies so output limits are not what ends the connection
    // Drawn only when asked for, so a seed of security-soak replays the bytes it always did.
    const slow = opts.slowReaders !== undefined && r() < opts.slowReaders;
    const closed = new Promise<void>((resolve) => s.once('close', () => resolve()));
    await new Promise<void>((resolve) => {
      s.once('connect', () => resolve());
      s.once('close', () => resolve());
    });
    if (opts.greeting !== undefined) s.write(opts.greeting);
    if (slow) s.pause(); // replies pile up in the server's output buffer and the kernel's
    const bursts = 1 + Math.floor(r() * 5);
    for (let i = 0; i < bursts && !s.destroyed; i++) {
      if (opts.expensive !== undefined && r() < opts.expensive) {
        s.write(Buffer.concat(Array.from({ length: 1 + Math.floor(r() * 4) }, () => expensiveCommand(r))));
      } else {
        s.write(hostileBytes(r, opts.shape));
      }
      stats.bursts++;
      await new Promise((res) => setTimeout(res, Math.floor(r() * 15)));
    }
    if (slow) {
      await Promise.race([closed, new Promise((res) => setTimeout(res, 50 + Math.floor(r() * 400)))]);
      s.resume();
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

/**
 * A client that has not authenticated and pipelines commands without reading a reply: the server
 * must cap its unsent -NOAUTH replies and disconnect it. Resolves with true when the server closed
 * the connection within `timeoutMs`.
 */
export async function preAuthFlood(port: number, r: Rng, timeoutMs: number): Promise<boolean> {
  const s = connect(port, '127.0.0.1');
  s.on('error', () => {});
  s.pause();
  let closedByServer = false;
  s.once('end', () => (closedByServer = true));
  const closed = new Promise<void>((resolve) => s.once('close', () => resolve()));
  await new Promise<void>((resolve) => {
    s.once('connect', () => resolve());
    s.once('close', () => resolve());
  });
  const chunk = Buffer.concat(Array.from({ length: 512 }, () => resp(r() < 0.5 ? 'GET' : 'PING', 'x')));
  const deadline = Date.now() + timeoutMs;
  const pump = (): void => {
    while (!s.destroyed && Date.now() < deadline) if (!s.write(chunk)) return void s.once('drain', pump);
  };
  pump();
  const timer = setTimeout(() => s.destroy(), timeoutMs);
  // The server's close shows as a write error (EPIPE/ECONNRESET) or an end on the paused socket.
  s.once('error', () => (closedByServer = true));
  await closed;
  clearTimeout(timer);
  return closedByServer;
}
