#!/usr/bin/env node
// Runs every compiled test file with node's built-in runner. Node 20's `--test` takes no globs,
// so the file list is gathered here. Usage: node scripts/run-tests.mjs [substring-filter]
//
// Every temp directory the tests and the servers they start make (data dirs of hundreds of MiB
// among them) goes under one TMPDIR of this run, removed at its end: a run used to leave GiBs in
// /tmp. BLOBASAUR_KEEP_TEST_TMP=1 keeps it (its path is printed) to look at after a failure.
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

const root = new URL('../dist/test', import.meta.url).pathname;
const filter = process.argv[2] ?? '';

function collect(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const full = join(dir, name);
    if (statSync(full).isDirectory()) out.push(...collect(full));
    else if (name.endsWith('.test.js') && full.includes(filter)) out.push(full);
  }
  return out;
}

const files = collect(root);
if (files.length === 0) {
  console.error(`no test files under ${root} matching "${filter}"`);
  process.exit(1);
}
const runTmp = mkdtempSync(join(tmpdir(), 'blobasaur-tests-'));
const keep = process.env.BLOBASAUR_KEEP_TEST_TMP === '1';
const result = spawnSync(process.execPath, ['--test', '--test-concurrency=1', ...files], {
  stdio: 'inherit',
  env: { ...process.env, TMPDIR: runTmp },
});
if (keep) console.error(`test temp files kept in ${runTmp}`);
else {
  try {
    rmSync(runTmp, { recursive: true, force: true });
  } catch (err) {
    // A file system a failed test left mounted there: say so, do not fail the run for it.
    console.error(`could not remove ${runTmp} entirely: ${err.message}`);
  }
}
process.exit(result.status ?? 1);
