/**
 * The packaging files are checked here because this machine cannot run them: no container runtime
 * builds the Dockerfile (it is linted instead, as docs/operations.md says), and the systemd unit is
 * verified by systemd-analyze without being started.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { validate } from 'dockerfile-utils';

const ROOT = new URL('../../../', import.meta.url).pathname;
const run = promisify(execFile);

test('the Dockerfile lints clean, runs as a non-root user, keeps data in a volume and has a health check', () => {
  const text = readFileSync(`${ROOT}Dockerfile`, 'utf8');
  const problems = validate(text).map((d) => `line ${d.range.start.line + 1}: ${d.message}`);
  assert.deepEqual(problems, []);
  // The linter is not asleep: a broken file gets diagnostics.
  assert.ok(validate('FROM node\nEXPOSE abc\nHEALTHCHECK NONE extra\n').length >= 2);
  assert.match(text, /^USER node$/m);
  assert.match(text, /^VOLUME \["\/data"/m);
  assert.match(text, /^HEALTHCHECK [^\n]*(\\\n[^\n]*)*\/health/m);
  assert.match(text, /^FROM .* AS build$/m, 'multi-stage: the build tools stay out of the image');
});

test('the systemd unit passes systemd-analyze verify and is sandboxed', async () => {
  const unit = `${ROOT}packaging/blobasaur.service`;
  const text = readFileSync(unit, 'utf8');
  for (const line of ['UMask=0077', 'ProtectSystem=strict', 'NoNewPrivileges=yes']) assert.ok(text.includes(line), line);
  const { stderr } = await run('systemd-analyze', ['verify', unit]);
  assert.equal(stderr.trim(), '');
});
