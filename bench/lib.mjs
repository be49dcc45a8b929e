// Shared by the bench scripts: start our server (dist/) as a child on a free 127.0.0.1 port with a
// fresh data directory and config, wait until it answers, and clean up on exit or Ctrl-C.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const root = new URL('..', import.meta.url).pathname;

export function freePort() {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = s.address().port;
      s.close(() => resolve(p));
    });
  });
}

export async function waitForPort(port, tries = 100) {
  for (let i = 0; ; i++) {
    const up = await new Promise((resolve) => {
      const s = createConnection(port, '127.0.0.1', () => (s.destroy(), resolve(true)));
      s.on('error', () => resolve(false));
    });
    if (up) return;
    if (i > tries) throw new Error(`nothing listening on ${port}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Starts blobasaur with `configToml`; resolves to { port, dataDir, stop }. */
export async function startBlobasaur(configToml, prefix = 'blobasaur-bench-') {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const dataDir = join(dir, 'data');
  const port = await freePort();
  writeFileSync(join(dir, 'config.toml'), configToml);
  const server = spawn(
    process.execPath,
    [join(root, 'dist/src/main.js'), '--config', join(dir, 'config.toml'), '--addr', `127.0.0.1:${port}`, '--data-dir', dataDir],
    { stdio: 'inherit' },
  );
  const stop = () => {
    server.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  process.on('SIGINT', () => {
    stop();
    process.exit(130);
  });
  try {
    await waitForPort(port);
  } catch (err) {
    stop();
    throw err;
  }
  return { port, dataDir, stop };
}
