/**
 * Servers for integration tests: ours in-process or as a child process, and a real redis-server
 * to compare replies with. Everything listens on 127.0.0.1 and lives in a fresh temp directory.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configSchema, type Config } from '../../src/config/index.js';
import { startServer, type RunningServer } from '../../src/app.js';
import { createLogger } from '../../src/observability/log.js';

export const MAIN_JS = new URL('../../src/main.js', import.meta.url).pathname;

export function tempDir(prefix = 'blobasaur-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export interface TestServer extends RunningServer {
  dataDir: string;
  config: Config;
}

/** Starts our server in this process on a free port with a fresh data directory. */
export async function startOurs(overrides: Record<string, unknown> = {}): Promise<TestServer> {
  const dataDir = (overrides.data_dir as string | undefined) ?? tempDir();
  const config = configSchema.parse({ addr: '127.0.0.1:0', data_dir: dataDir, log_level: 'silent', ...overrides });
  const running = await startServer(config, createLogger('silent', false));
  return Object.assign(running, { dataDir, config });
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Waits until something accepts TCP connections on the port. */
export async function waitForPort(port: number, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = new Socket();
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
      s.connect(port, '127.0.0.1');
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listening on ${port} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface Child {
  proc: ChildProcess;
  port: number;
  output: () => string;
  /** Resolves with the exit code once the process has exited. */
  exited: Promise<number | null>;
}

/** Starts `blobasaur` as a child process (the real CLI) and waits for its port. */
export async function spawnOurs(args: string[], port?: number, cwd?: string): Promise<Child> {
  const p = port ?? (await freePort());
  const proc = spawn(process.execPath, [MAIN_JS, '--addr', `127.0.0.1:${p}`, ...args], {
    cwd: cwd ?? tempDir(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  const ready = waitForPort(p);
  const early = exited.then((code) => {
    throw new Error(`blobasaur exited early with ${code}: ${out}`);
  });
  await Promise.race([ready, early]);
  early.catch(() => {});
  return { proc, port: p, output: () => out, exited };
}

export interface RedisServer {
  port: number;
  stop(): Promise<void>;
}

/** Starts a real redis-server (Debian package) on a free port, no persistence. */
export async function startRedis(extra: string[] = []): Promise<RedisServer> {
  const port = await freePort();
  const dir = tempDir('redis-ref-');
  const proc = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, ...extra],
    { stdio: 'ignore' },
  );
  await waitForPort(port);
  return {
    port,
    stop: async () => {
      const gone = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGKILL');
      await gone;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
