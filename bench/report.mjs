// Helpers for bench reports: the machine description, number formatting, and docs/benchmarks.md
// as three parts — the generated matrix part, the scale-run section and the hand-written analysis —
// so each mode rewrites only its own part and the analysis survives every regeneration.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { readIfExists, root } from './lib.mjs';

export const DOC_PATH = join(root, 'docs', 'benchmarks.md');
export const SVG_PATH = join(root, 'docs', 'benchmarks-ratios.svg');

export const SCALE_BEGIN = '<!-- BEGIN SCALE RUN: written by `npm run bench -- --scale`; other runs keep it as it is -->';
export const SCALE_END = '<!-- END SCALE RUN -->';
export const ANALYSIS_MARKER = '<!-- ANALYSIS: everything below this line is kept as it is when `npm run bench` regenerates this file; write by hand here. -->';

// ---- machine -----------------------------------------------------------------------------------

function sh(cmd, args) {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return 'unknown';
  }
}

export function machineInfo() {
  const cpuinfo = readIfExists('/proc/cpuinfo') ?? '';
  const osRelease = readIfExists('/etc/os-release') ?? '';
  const srcStatus = sh('git', ['-C', root, 'status', '--porcelain', '--', 'src']);
  return {
    date: new Date().toISOString(),
    cpu: /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1].trim() ?? os.cpus()[0]?.model ?? 'unknown',
    cores: os.availableParallelism?.() ?? os.cpus().length,
    ramGiB: os.totalmem() / 2 ** 30,
    os: `${/^PRETTY_NAME="?([^"\n]+)"?/m.exec(osRelease)?.[1] ?? os.type()}, kernel ${os.release()}`,
    node: process.version,
    redis: sh('redis-server', ['--version']),
    redisBenchmark: sh('redis-benchmark', ['--version']),
    commit: sh('git', ['-C', root, 'rev-parse', '--short', 'HEAD']),
    srcChanges: srcStatus && srcStatus !== 'unknown' ? srcStatus.split('\n').length : 0,
    loadavg: os.loadavg(),
  };
}

export function machineMarkdown(mi, loadEnd) {
  const load = (l) => l.map((x) => x.toFixed(2)).join(' / ');
  return [
    `- CPU: ${mi.cpu}, ${mi.cores} cores; RAM ${mi.ramGiB.toFixed(1)} GiB; ${mi.os}`,
    `- Node ${mi.node}; ${mi.redis}; ${mi.redisBenchmark}`,
    `- Blobasaur: git ${mi.commit}${mi.srcChanges ? ` plus ${mi.srcChanges} uncommitted change(s) under src/` : ''}, built with \`tsc\` (copied once at start so a rebuild during the run changes nothing)`,
    `- Load average (1/5/15 min) at start ${load(mi.loadavg)}${loadEnd ? `, at end ${load(loadEnd)}` : ''}; the client (redis-benchmark), the server under test and the idle servers share these ${mi.cores} cores`,
    `- Date: ${mi.date}`,
  ].join('\n');
}

// ---- formatting --------------------------------------------------------------------------------

export const fmtInt = (x) => (Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : 'n/a');
export const fmt1 = (x) => (Number.isFinite(x) ? x.toLocaleString('en-US', { minimumFractionDigits: 1, maximumFractionDigits: 1 }) : 'n/a');
export const fmt2 = (x) => (Number.isFinite(x) ? x.toFixed(2) : 'n/a');
export const fmtMiB = (bytes) => (Number.isFinite(bytes) ? `${(bytes / 2 ** 20).toFixed(1)} MiB` : 'n/a');
export const fmtGiB = (bytes) => (Number.isFinite(bytes) ? `${(bytes / 2 ** 30).toFixed(2)} GiB` : 'n/a');

/** "met" or "not met (0.42, 48% short of ≥ 0.8)" for a ratio against a lower bound. */
export function verdict(ratio, target) {
  if (!Number.isFinite(ratio)) return 'no result';
  if (ratio >= target) return 'met';
  return `not met (${Math.round((1 - ratio / target) * 100)}% short)`;
}

/** A markdown table from a header row and rows; `align` is 'l' or 'r' per column. */
export function mdTable(header, rows, align) {
  const sep = header.map((_, i) => (align?.[i] === 'r' ? '---:' : '---'));
  return [header, sep, ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n');
}

/** The same table for a terminal: padded columns. */
export function textTable(header, rows, align) {
  const all = [header, ...rows].map((r) => r.map(String));
  const w = header.map((_, i) => Math.max(...all.map((r) => r[i].length)));
  const line = (r) => r.map((c, i) => (align?.[i] === 'r' ? c.padStart(w[i]) : c.padEnd(w[i]))).join('  ');
  return [line(all[0]), w.map((n) => '-'.repeat(n)).join('  '), ...all.slice(1).map(line)].join('\n');
}

export function shellQuote(a) {
  return a === '' ? "''" : /^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`;
}

// ---- docs/benchmarks.md parts ------------------------------------------------------------------

const DEFAULT_SCALE = `${SCALE_BEGIN}
## Scale run

Not run yet on this machine. \`npm run bench -- --scale\` writes 10 GiB of 64 KiB values
(\`--gib N\` for another size) and replaces this section with what it measured.
${SCALE_END}`;

const DEFAULT_ANALYSIS = `${ANALYSIS_MARKER}
## Analysis

_To be written: what the CPU profiles (\`node --cpu-prof dist/src/main.js …\`) show for each case
that misses its target, and what is left to do. \`npm run bench\` keeps this section as it is._
`;

/** Splits the current file into { matrix, scale, analysis } (null for a part that is missing). */
export function readDocParts(path = DOC_PATH) {
  const text = readIfExists(path);
  if (text === null) return { matrix: null, scale: null, analysis: null };
  let rest = text;
  let analysis = null;
  const a = rest.indexOf(ANALYSIS_MARKER);
  const heading = /^## Analysis\s*$/m.exec(rest);
  if (a >= 0) {
    analysis = rest.slice(a);
    rest = rest.slice(0, a);
  } else if (heading) {
    // Someone removed the marker but kept the heading: keep from the heading, re-add the marker.
    analysis = `${ANALYSIS_MARKER}\n${rest.slice(heading.index)}`;
    rest = rest.slice(0, heading.index);
  }
  let scale = null;
  const b = rest.indexOf(SCALE_BEGIN);
  const e = rest.indexOf(SCALE_END);
  if (b >= 0 && e > b) {
    scale = rest.slice(b, e + SCALE_END.length);
    rest = rest.slice(0, b) + rest.slice(e + SCALE_END.length);
  }
  return { matrix: rest.trimEnd() || null, scale, analysis };
}

export function writeDoc({ matrix, scale, analysis }, path = DOC_PATH) {
  const parts = [
    (matrix ?? '# Benchmarks\n\nThe throughput matrix has not been run yet: `npm run bench`.').trimEnd(),
    (scale ?? DEFAULT_SCALE).trim(),
    (analysis ?? DEFAULT_ANALYSIS).trimEnd(),
  ];
  writeFileSync(path, `${parts.join('\n\n')}\n`);
}
