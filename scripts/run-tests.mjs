#!/usr/bin/env node
// Runs every compiled test file with node's built-in runner. Node 20's `--test` takes no globs,
// so the file list is gathered here. Usage: node scripts/run-tests.mjs [substring-filter]
import { readdirSync, statSync } from 'node:fs';
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
const result = spawnSync(process.execPath, ['--test', '--test-concurrency=1', ...files], { stdio: 'inherit' });
process.exit(result.status ?? 1);
