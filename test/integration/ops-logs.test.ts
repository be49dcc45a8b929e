/**
 * Start-up logs of the real CLI: JSON lines when stdout is not a terminal (effective config with
 * secrets masked, data layout, listening addresses), readable lines on a terminal.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { VERSION } from '../../src/version.js';
import { redisCli } from '../helpers/cli.js';
import { MAIN_JS, freePort, spawnOurs, tempDir, waitForPort } from '../helpers/servers.js';
import { shardPath } from '../../src/storage/schema.js';

async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('start-up logs', () => {
  it('JSON lines: effective config with the password masked, data layout, listening addresses', async () => {
    const dir = tempDir('blobasaur-ops-logs-');
    const metricsPort = await freePort();
    const config = join(dir, 'config.toml');
    // The full configuration and the file layout are logged at debug level.
    writeFileSync(config, `log_level = "debug"\nrequirepass = "s3cret-pw"\nnum_shards = 3\n[metrics]\nenabled = true\naddr = "127.0.0.1:${metricsPort}"\n`);
    const child = await spawnOurs(['--config', config, '--data-dir', join(dir, 'data')]);
    try {
      await until(() => child.output().includes('ready to accept connections'), 'the ready line');
      const lines = child
        .output()
        .split('\n')
        .filter((l) => l.length > 0)
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      const byMsg = (msg: string): Record<string, unknown> => {
        const found = lines.find((l) => l.msg === msg);
        assert.ok(found !== undefined, `a "${msg}" line in ${child.output()}`);
        return found;
      };
      assert.equal(child.output().includes('s3cret-pw'), false, 'the password never appears');
      const effective = byMsg('effective configuration').config as Record<string, unknown>;
      assert.equal(effective.requirepass, '***');
      assert.equal(effective.num_shards, 3);
      assert.equal(effective.data_dir, join(dir, 'data'));
      assert.deepEqual(effective.metrics, { enabled: true, addr: `127.0.0.1:${metricsPort}` });
      const layout = byMsg('data layout').layout as { shards: number; files: { file: string; bytes: number }[] };
      assert.equal(layout.shards, 3);
      assert.deepEqual(layout.files.map((f) => f.file), [0, 1, 2].map((i) => shardPath(join(dir, 'data'), i)));
      const http = byMsg('HTTP endpoint serving the dashboard, /metrics and /health');
      assert.equal(http.metrics_addr, `127.0.0.1:${metricsPort}`);
      assert.equal(http.dashboard, `http://127.0.0.1:${metricsPort}/`);
      assert.equal(byMsg('effective configuration').level, 20);
      assert.equal(byMsg(`blobasaur ${VERSION} ready to accept connections`).addr, `127.0.0.1:${child.port}`);
      for (const l of lines) assert.equal(typeof l.time, 'number');
    } finally {
      child.proc.kill('SIGTERM');
      assert.equal(await child.exited, 0);
    }
  });

  it('at info level the full configuration is not logged; --print-config prints it as TOML', async () => {
    const dir = tempDir('blobasaur-ops-logs-info-');
    const child = await spawnOurs(['--data-dir', join(dir, 'data')]);
    try {
      await until(() => child.output().includes('ready to accept connections'), 'the ready line');
      const msgs = child
        .output()
        .split('\n')
        .filter((l) => l.length > 0)
        .map((l) => (JSON.parse(l) as { msg: string }).msg);
      assert.deepEqual(msgs.slice(0, 2), ['configuration loaded', `blobasaur ${VERSION} ready to accept connections`]);
    } finally {
      child.proc.kill('SIGTERM');
      assert.equal(await child.exited, 0);
    }
    const config = join(dir, 'config.toml');
    writeFileSync(config, 'requirepass = "s3cret-pw"\nnum_shards = 2\n');
    const printed = await new Promise<string>((resolve, reject) => {
      const p = spawn(process.execPath, [MAIN_JS, '--config', config, '--print-config'], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      p.stdout.on('data', (d: Buffer) => (out += d.toString()));
      p.once('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`exit ${code}`))));
    });
    assert.match(printed, new RegExp(`^# effective configuration of blobasaur ${VERSION.replace(/\./g, '\\.')}; from ${config}\n`));
    assert.match(printed, /\nnum_shards = 2\n/);
    assert.match(printed, /\nrequirepass = "\*\*\*"\n/);
    assert.match(printed, /\n\[sqlite\]\nsynchronous = "NORMAL"\n/);
    assert.equal(printed.includes('s3cret-pw'), false);
  });

  it('readable lines on a terminal', async () => {
    const port = await freePort();
    const dir = tempDir('blobasaur-ops-logs-tty-');
    // script(1) gives the server a pseudo-terminal as stdout.
    const cmd = `${process.execPath} ${MAIN_JS} --addr 127.0.0.1:${port} --data-dir ${join(dir, 'data')}`;
    const proc = spawn('script', ['-qfc', cmd, '/dev/null'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => proc.once('exit', resolve));
    try {
      await waitForPort(port);
      await until(() => out.includes('ready to accept connections'), 'the ready line');
      await until(() => out.includes('(Ctrl-C to stop)'), 'the banner');
      // pino-pretty: "[HH:MM:SS.mmm] INFO: message {fields}" on one line, not JSON.
      // Colours depend on the environment (NO_COLOR, TERM=dumb), so the escape codes are optional.
      const c = '(?:\\x1b\\[\\d+m)?';
      assert.match(out, new RegExp(`\\[\\d\\d:\\d\\d:\\d\\d\\.\\d\\d\\d\\] ${c}INFO${c}: ${c}blobasaur ${VERSION.replace(/\./g, '\\.')} ready to accept connections${c} ${c}\\{"addr":"127\\.0\\.0\\.1:${port}"`));
      assert.equal(/^\{"level"/m.test(out), false);
      // The banner: short, with where everything is, ending in "ready".
      const plain = out.replace(/\x1b\[\d+m/g, '').replace(/\r/g, '');
      const start = plain.indexOf(`blobasaur ${VERSION} — a Redis-protocol blob store on SQLite`);
      assert.ok(start >= 0, plain);
      const lines = plain.slice(start).split('\n').slice(0, 8);
      assert.deepEqual(lines.map((l) => l.trim().split(/\s+/)[0]), ['blobasaur', 'listening', 'data', 'backups', 'mode', 'dashboard', 'config', 'ready']);
      assert.match(lines[1], new RegExp(`listening +127\\.0\\.0\\.1:${port} +try: redis-cli -p ${port} ping`));
      assert.match(lines[2], new RegExp(`data +${join(dir, 'data')} \\(4 shards\\)`));
      assert.match(lines[3], new RegExp(`backups +${join(dir, 'data')}\\.backup \\(SAVE, BGSAVE\\)`));
      assert.match(lines[5], /dashboard +off \(set \[metrics\] enabled = true in the config file\)/);
      // The whole configuration is not on the first screen.
      assert.equal(plain.includes('effective configuration'), false);
    } finally {
      await redisCli(port, ['SHUTDOWN']).catch(() => '');
      assert.equal(await exited, 0);
    }
  });

  it('log_format = "json" keeps JSON lines (and no banner) on a terminal', async () => {
    const port = await freePort();
    const dir = tempDir('blobasaur-ops-logs-json-');
    const config = join(dir, 'config.toml');
    writeFileSync(config, 'log_format = "json"\n');
    const cmd = `${process.execPath} ${MAIN_JS} --config ${config} --addr 127.0.0.1:${port} --data-dir ${join(dir, 'data')}`;
    const proc = spawn('script', ['-qfc', cmd, '/dev/null'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => proc.once('exit', resolve));
    try {
      await waitForPort(port);
      await until(() => out.includes('ready to accept connections'), 'the ready line');
      const lines = out.split(/\r?\n/).filter((l) => l.length > 0);
      assert.ok(lines.length >= 2);
      for (const l of lines) assert.equal(typeof (JSON.parse(l) as { level: unknown }).level, 'number', l);
      assert.equal(out.includes('(Ctrl-C to stop)'), false);
    } finally {
      await redisCli(port, ['SHUTDOWN']).catch(() => '');
      assert.equal(await exited, 0);
    }
  });
});
