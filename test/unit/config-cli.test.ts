import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CliError, HELP_TEXT, parseCli } from '../../src/config/cli.js';

function cliErrorOf(argv: string[]): string {
  try {
    parseCli(argv);
  } catch (err) {
    assert.ok(err instanceof CliError, `expected CliError, got ${String(err)}`);
    return err.message;
  }
  assert.fail(`expected a CliError for ${JSON.stringify(argv)}`);
}

test('no arguments runs with no overrides', () => {
  assert.deepEqual(parseCli([]), { kind: 'run', overrides: {} });
});

test('each flag, space form', () => {
  assert.deepEqual(parseCli(['--config', 'my.toml']), { kind: 'run', configPath: 'my.toml', overrides: {} });
  assert.deepEqual(parseCli(['--addr', '127.0.0.1:6380']), { kind: 'run', overrides: { addr: '127.0.0.1:6380' } });
  assert.deepEqual(parseCli(['--data-dir', '/tmp/blobs']), { kind: 'run', overrides: { dataDir: '/tmp/blobs' } });
  assert.deepEqual(parseCli(['--shards', '16']), { kind: 'run', overrides: { shards: 16 } });
});

test('= form and combinations', () => {
  assert.deepEqual(parseCli(['--config=c.toml', '--addr=[::1]:6379', '--data-dir=/d', '--shards=2']), {
    kind: 'run',
    configPath: 'c.toml',
    overrides: { addr: '[::1]:6379', dataDir: '/d', shards: 2 },
  });
});

test('out-of-range shard counts are left to config validation', () => {
  assert.deepEqual(parseCli(['--shards', '0']), { kind: 'run', overrides: { shards: 0 } });
  assert.deepEqual(parseCli(['--shards=-1']), { kind: 'run', overrides: { shards: -1 } });
});

test('help and version', () => {
  assert.deepEqual(parseCli(['--help']), { kind: 'help' });
  assert.deepEqual(parseCli(['-h']), { kind: 'help' });
  assert.deepEqual(parseCli(['--version']), { kind: 'version' });
  assert.deepEqual(parseCli(['-v']), { kind: 'version' });
  assert.deepEqual(parseCli(['--shards', '4', '--help']), { kind: 'help' });
  assert.deepEqual(parseCli(['--bogus', '--help']), { kind: 'help' });
});

test('help text mentions every flag and config.toml lookup', () => {
  for (const part of ['--config', '--addr', '--data-dir', '--shards', '--help', '-h', '--version', '-v', 'config.toml']) {
    assert.ok(HELP_TEXT.includes(part), part);
  }
});

test('unknown flag', () => {
  const message = cliErrorOf(['--port', '6379']);
  assert.match(message, /unknown option --port/);
  assert.match(message, /--help/);
  assert.match(cliErrorOf(['-x']), /unknown option -x/);
});

test('stray positional argument', () => {
  assert.match(cliErrorOf(['config.toml']), /unexpected argument "config.toml"/);
});

test('missing values', () => {
  assert.match(cliErrorOf(['--config']), /--config needs a value/);
  assert.match(cliErrorOf(['--addr', '--shards', '4']), /--addr needs a value/);
  assert.match(cliErrorOf(['--data-dir=']), /--data-dir needs a value/);
  assert.match(cliErrorOf(['--shards']), /--shards needs a value/);
});

test('boolean flags take no value', () => {
  assert.match(cliErrorOf(['--version=yes']), /--version takes no value/);
});

test('non-integer shards', () => {
  for (const bad of ['four', '1.5', '4x', '1e3', '99999999999999999999']) {
    assert.match(cliErrorOf(['--shards', bad]), /--shards expects a whole number/, bad);
  }
});

test('every problem on the line is reported', () => {
  const message = cliErrorOf(['--bogus', '--addr']);
  assert.match(message, /unknown option --bogus/);
  assert.match(message, /--addr needs a value/);
});
