/**
 * `npm start` stops the server on SIGTERM to the npm process (what a service manager or a shell's
 * `kill` sends): npm forwards the signal to its script, and the script execs node so there is no
 * shell in between to swallow it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, tempDir, waitForPort } from '../helpers/servers.js';

const REPO = new URL('../../../', import.meta.url).pathname;

/** PIDs of processes whose command line contains `needle` (Linux /proc). */
function processesWith(needle: string): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (readFileSync(`/proc/${name}/cmdline`, 'latin1').replaceAll('\0', ' ').includes(needle)) out.push(Number(name));
    } catch {
      // The process ended while we looked.
    }
  }
  return out;
}

test('SIGTERM to `npm start` stops the server gracefully', { timeout: 60_000 }, async () => {
  const port = await freePort();
  const dir = tempDir();
  const addr = `127.0.0.1:${port}`;
  const npm = spawn('npm', ['start', '--', '--addr', addr, '--data-dir', join(dir, 'data')], {
    cwd: REPO,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  npm.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  npm.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const npmExited = new Promise<number | null>((resolve) => npm.once('exit', (code) => resolve(code)));
  try {
    await waitForPort(port, 30_000);
    const servers = processesWith(`--addr ${addr}`).filter((pid) => pid !== npm.pid);
    assert.ok(servers.length >= 1, `no server process found: ${out}`);
    npm.kill('SIGTERM');
    await npmExited;
    // The server finishes its graceful shutdown and exits: nothing is left listening or running.
    const deadline = Date.now() + 15_000;
    while (processesWith(`--addr ${addr}`).length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(processesWith(`--addr ${addr}`), [], `still running after SIGTERM to npm:\n${out}`);
    assert.match(out, /shutdown complete/);
  } finally {
    // Only what this test started, by PID.
    for (const pid of processesWith(`--addr ${addr}`)) process.kill(pid, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});
