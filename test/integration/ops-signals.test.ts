/**
 * A SIGTERM that arrives while the server is still starting (its port may already accept) stops it
 * gracefully once it has started: exit code 0, shards closed; not the default "killed by signal".
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { freePort, MAIN_JS, tempDir } from '../helpers/servers.js';

test('SIGTERM during start-up: the server finishes starting, then shuts down and exits 0', async () => {
  const dir = tempDir();
  const port = await freePort();
  const proc = spawn(process.execPath, [MAIN_JS, '--addr', `127.0.0.1:${port}`, '--data-dir', join(dir, 'data')], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const onData = (d: Buffer): void => {
    out += d.toString();
    // The first log line is written before the store opens and the port listens.
    if (out.includes('configuration loaded') && proc.exitCode === null && !proc.killed) proc.kill('SIGTERM');
  };
  proc.stdout.on('data', onData);
  proc.stderr.on('data', onData);
  const timer = setTimeout(() => proc.kill('SIGKILL'), 20_000);
  try {
    const { code, signal } = await exited;
    assert.deepEqual({ code, signal }, { code: 0, signal: null }, out);
    assert.match(out, /ready to accept connections/);
  } finally {
    clearTimeout(timer);
  }
});
