/**
 * The managed-cluster walk-through of docs/cluster.md, run as written: the blocks between
 * `<!-- walkthrough:managed -->` and `<!-- /walkthrough:managed -->` run in order in a temp
 * directory (with `dist` linked to this build), `sh` blocks as bash scripts, `console` blocks one
 * `$ command` at a time on a terminal (script(1), so redis-cli formats its replies as a user sees
 * them), each output compared with the lines the doc shows after it. In the doc's output, a line
 * `...` stands for any lines and `...` within a line for any text. The doc's ports are used unless
 * one is taken here; then all of them move to free ports (the doc says so).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { MAIN_JS, tempDir } from '../helpers/servers.js';

const DOC = new URL('../../../docs/cluster.md', import.meta.url).pathname;
const DIST = dirname(dirname(MAIN_JS));
const STEP_TIMEOUT_MS = 180_000;

interface Block {
  lang: 'sh' | 'console';
  text: string;
}

/** The walk-through's fenced blocks, in order. */
export function walkthroughBlocks(markdown: string, name: string): Block[] {
  const start = markdown.indexOf(`<!-- walkthrough:${name} -->`);
  const end = markdown.indexOf(`<!-- /walkthrough:${name} -->`);
  if (start < 0 || end < start) throw new Error(`no walkthrough:${name} markers in the doc`);
  const out: Block[] = [];
  for (const m of markdown.slice(start, end).matchAll(/^```(sh|console)\n([\s\S]*?)^```$/gm)) out.push({ lang: m[1] as Block['lang'], text: m[2] });
  return out;
}

/** A console block's commands, each with the output lines the doc shows for it. */
export function consoleSteps(text: string): { command: string; expected: string[] }[] {
  const steps: { command: string; expected: string[] }[] = [];
  for (const line of text.replace(/\n$/, '').split('\n')) {
    if (line.startsWith('$ ')) steps.push({ command: line.slice(2), expected: [] });
    else if (steps.length === 0) throw new Error(`console block starts with output: ${line}`);
    else steps[steps.length - 1].expected.push(line);
  }
  return steps;
}

/** Whether `actual` lines match the doc's `expected` lines (`...` wildcards). */
export function outputMatches(expected: string[], actual: string[]): boolean {
  if (expected.length === 0) return actual.length === 0;
  const [e, ...rest] = expected;
  if (e === '...') {
    for (let skip = 0; skip <= actual.length; skip++) if (outputMatches(rest, actual.slice(skip))) return true;
    return false;
  }
  if (actual.length === 0) return false;
  const re = new RegExp(`^${e.split('...').map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
  return re.test(actual[0]) && outputMatches(rest, actual.slice(1));
}

async function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/**
 * The doc's ports if all are free, else a rewrite of the text onto free ones: etcd's two and six
 * consecutive node ports (the doc computes them as `6380 + i`).
 */
async function portPlan(): Promise<(text: string) => string> {
  const doc = [2379, 2380, 6381, 6382, 6383, 6384, 6385, 6386];
  if ((await Promise.all(doc.map(portFree))).every(Boolean)) return (t) => t;
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 30_000);
    const wanted = [base - 2, base - 1, ...[1, 2, 3, 4, 5, 6].map((i) => base + i)];
    if (!(await Promise.all(wanted.map(portFree))).every(Boolean)) continue;
    return (t) =>
      t
        .replace(/\b2379\b/g, String(base - 2))
        .replace(/\b2380\b/g, String(base - 1))
        .replace(/\b6380 \+ i\b/g, `${base} + i`)
        .replace(/\b638([1-6])\b/g, (_, d: string) => String(base + Number(d)));
  }
  throw new Error('no free ports for the walk-through');
}

interface Ran {
  code: number | null;
  output: string;
}

function runIn(cwd: string, file: string, args: string[]): Promise<Ran> {
  return new Promise((resolve) => {
    // stdin stays open: script(1) ends with its command, not with its input.
    const p = spawn(file, args, { cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    p.stdout.on('data', (d: Buffer) => (output += d.toString()));
    p.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => p.kill('SIGKILL'), STEP_TIMEOUT_MS);
    p.once('close', (code) => {
      clearTimeout(timer);
      p.stdin.destroy();
      resolve({ code, output });
    });
  });
}

/** Terminal output as a reader sees it: no carriage returns or colour codes. */
function plain(output: string): string[] {
  // eslint-disable-next-line no-control-regex
  const text = output.replace(/\r/g, '').replace(/\x1b\[[0-9;]*m/g, '');
  return text === '' ? [] : text.replace(/\n$/, '').split('\n');
}

describe('docs/cluster.md: the managed-cluster walk-through runs as written', () => {
  let dir: string;
  let rewrite: (t: string) => string;
  /** Every PID the walk-through saved, so nothing outlives the test if a step fails. */
  const pids = new Set<number>();
  const collectPids = (): void => {
    const d = join(dir, 'managed-demo');
    if (!existsSync(d)) return;
    for (const f of readdirSync(d)) if (f.endsWith('.pid')) for (const p of readFileSync(join(d, f), 'utf8').split(/\s+/)) if (/^\d+$/.test(p)) pids.add(Number(p));
  };

  before(async () => {
    dir = tempDir('blobasaur-walkthrough-');
    symlinkSync(DIST, join(dir, 'dist'));
    rewrite = await portPlan();
  });
  after(async () => {
    if (existsSync(join(dir, 'managed-demo'))) collectPids();
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone (the walk-through stops them itself)
      }
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it('every block runs and shows what the doc shows', async () => {
    const blocks = walkthroughBlocks(readFileSync(DOC, 'utf8'), 'managed');
    assert.ok(blocks.length >= 5, `only ${blocks.length} blocks`);
    let commands = 0;
    for (const block of blocks) {
      if (block.lang === 'sh') {
        const script = rewrite(block.text);
        const r = await runIn(dir, 'bash', ['-e', '-c', script]);
        collectPids();
        assert.equal(r.code, 0, `block failed:\n${script}\n--- output:\n${r.output}`);
        commands++;
        continue;
      }
      for (const step of consoleSteps(block.text)) {
        const command = rewrite(step.command);
        const r = await runIn(dir, 'script', ['-qec', command, '/dev/null']);
        collectPids();
        const actual = plain(r.output);
        const expected = step.expected.map(rewrite);
        assert.equal(r.code, 0, `$ ${command}\n${actual.join('\n')}`);
        assert.ok(outputMatches(expected, actual), `$ ${command}\n--- the doc shows:\n${expected.join('\n')}\n--- it printed:\n${actual.join('\n')}`);
        commands++;
      }
    }
    assert.ok(commands > 20, `${commands} commands`);
    assert.equal(existsSync(join(dir, 'managed-demo')), false, 'the last block removes managed-demo/');
  });

  it('the wildcard matcher: `...` lines and `...` within a line', () => {
    assert.ok(outputMatches(['a', '...', 'd'], ['a', 'b', 'c', 'd']));
    assert.ok(outputMatches(['a', '...', 'd'], ['a', 'd']));
    assert.ok(outputMatches(['x (76f3...) y'], ['x (76f3697a...) y']));
    assert.ok(!outputMatches(['a', 'd'], ['a', 'b', 'd']));
    assert.ok(!outputMatches(['moved ... keys'], ['moved 5 slots']));
    assert.ok(!outputMatches(['a'], ['a', 'b']));
    assert.ok(!outputMatches(['(integer) 1'], ['(integer) 0']));
  });
});
