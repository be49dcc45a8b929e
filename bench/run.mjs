#!/usr/bin/env node
// Entry point of `npm run bench` (issue #9). Modes:
//
//   npm run bench                      full matrix vs redis-server, rewrites docs/benchmarks.md and
//                                      docs/benchmarks-ratios.svg (5–10 min on 2 cores)
//   npm run bench -- --quick           < 1 min: one round, 1 KiB cases + a small 1 MiB case, default
//                                      mode only; prints the table and the change since the previous
//                                      --quick (kept in node_modules/.cache), writes nothing under docs/
//   npm run bench -- --scale [--gib N] writes N GiB (default 10) of 64 KiB values, reports RSS, disk,
//                                      random-GET latency and restart time; updates the "Scale run"
//                                      section of docs/benchmarks.md
//   options: --rounds N (matrix), --gets N (scale, default 20000), --no-write (print only)
//
// Not part of these modes (minutes, and GiBs of RAM for the client that holds the value):
//   node bench/big-blobs.mjs [--part counts|big|ratio] [--mib 500] [--clients]   a probe process's
//                                      small GETs while DBSIZE/INFO run at 300k keys, or while one
//                                      client SETs/GETs a 500 MiB value; RSS growth; GETRANGE/APPEND;
//                                      the value round-tripped through redis-cli and redis-py; SET/GET
//                                      1 MiB against redis-server (issue 17)
//
// `npm run bench` compiles first (tsc); running `node bench/run.mjs` directly uses dist/ as it is.
// Needs redis-server and redis-benchmark on PATH for the matrix (Debian: redis-server, redis-tools).
// Every server listens on 127.0.0.1 only; servers are stopped and temp dirs removed on any exit.
import { execFileSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { runMatrix } from './matrix.mjs';
import { runScale } from './scale.mjs';

const usage = 'usage: npm run bench -- [--quick | --scale [--gib N] [--gets N]] [--rounds N] [--no-write]';

function options() {
  let parsed;
  try {
    parsed = parseArgs({
      options: {
        quick: { type: 'boolean', default: false },
        scale: { type: 'boolean', default: false },
        gib: { type: 'string' },
        gets: { type: 'string' },
        rounds: { type: 'string' },
        'no-write': { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }).values;
  } catch (e) {
    fail(e.message);
  }
  if (parsed.help) {
    process.stdout.write(`${usage}\n`);
    process.exit(0);
  }
  if (parsed.quick && parsed.scale) fail('--quick and --scale are separate modes');
  const num = (name, { integer = true } = {}) => {
    if (parsed[name] === undefined) return undefined;
    const v = Number(parsed[name]);
    if (!(v > 0) || (integer && !Number.isInteger(v))) fail(`--${name} needs a positive ${integer ? 'integer' : 'number'}, got "${parsed[name]}"`);
    return v;
  };
  return { ...parsed, gib: num('gib', { integer: false }), gets: num('gets'), rounds: num('rounds'), write: !parsed['no-write'] };
}

function fail(message) {
  process.stderr.write(`bench: ${message}\n${usage}\n`);
  process.exit(2);
}

function requireTool(cmd) {
  try {
    execFileSync(cmd, ['--version'], { stdio: 'ignore' });
  } catch {
    fail(`${cmd} is not on PATH (Debian/Ubuntu: apt-get install redis-server redis-tools)`);
  }
}

const opts = options();
if (opts.scale) {
  await runScale({ gib: opts.gib ?? 10, gets: opts.gets ?? 20_000, write: opts.write });
} else {
  requireTool('redis-server');
  requireTool('redis-benchmark');
  // --quick never rewrites docs/: it is a developer's check before a commit.
  await runMatrix({ quick: opts.quick, rounds: opts.rounds, write: opts.write && !opts.quick });
}
