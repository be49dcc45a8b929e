import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { ConfigError, loadConfig, type LoadedConfig } from '../../src/config/load.js';
import { INACTIVE_KEYS, inactiveKeysSet } from '../../src/config/inactive.js';
import { configSchema, defaultLevel, levelRange } from '../../src/config/schema.js';
import { parseHostPort } from '../../src/config/addr.js';

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'blobasaur-config-'));
}

/** Writes `text` as <fresh dir>/<name> and returns the absolute path. */
function writeConfig(text: string, name = 'config.toml'): string {
  const file = join(tempDir(), name);
  writeFileSync(file, text);
  return file;
}

function load(text: string): LoadedConfig {
  return loadConfig({ configPath: writeConfig(text) });
}

/** Runs `fn`, expects a ConfigError and returns its message. */
function configErrorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    return err.message;
  }
  assert.fail('expected a ConfigError');
}

function includesAll(message: string, parts: string[]): void {
  for (const part of parts) assert.ok(message.includes(part), `expected ${JSON.stringify(part)} in:\n${message}`);
}

const DEFAULTS = {
  addr: '0.0.0.0:6379',
  data_dir: './blob_data',
  num_shards: 4,
  async_write: false,
  batch_size: 1,
  batch_timeout_ms: 0,
  inflight_capacity: 10000,
  read_cache_mb: 64,
  value_cache_mb: 32,
  output_compression: false,
  storage_compression: { enabled: false, algorithm: 'zstd', level: 3 },
  sqlite: { synchronous: 'NORMAL', cache_size_mb: 16, busy_timeout_ms: 5000, mmap_size_mb: 0, locking_mode: 'NORMAL' },
  cluster: {
    enabled: false,
    node_id: 'node-1',
    seeds: [],
    gossip_interval_ms: 1000,
    node_timeout_ms: 15000,
    slot_ranges: [],
    slots: [],
    config_epoch: 0,
    namespace_routing: 'namespace',
    etcd: [],
    cluster_name: 'default',
    lease_ttl_s: 5,
  },
  replication: { backlog_mb: 1 },
  metrics: { enabled: false, addr: '127.0.0.1:9121' },
  log_level: 'info',
  protected_mode: true,
  tls_port: 0,
  tls_auth_clients: true,
  maxclients: 10000,
  proto_max_bulk_len: 536870912,
  client_query_buffer_limit: 1073741824,
  max_args: 1048576,
  client_output_buffer_limit_soft: 67108864,
  client_output_buffer_limit_hard: 268435456,
  timeout: 0,
  disk_reserve_mb: 16,
  umask: 0o077,
  busy_reply_threshold_ms: 5000,
  dashboard: { enabled: true },
  log_format: 'auto',
  auto_vacuum: true,
};

test('no config file gives exactly the defaults', () => {
  const loaded = loadConfig({ cwd: tempDir() });
  assert.equal(loaded.file, null);
  assert.deepEqual(loaded.inactive, []);
  assert.deepEqual(loaded.config, DEFAULTS);
});

test('an empty file gives the defaults too', () => {
  const loaded = load('');
  assert.deepEqual(loaded.config, DEFAULTS);
});

test('<cwd>/config.toml is picked up without --config', () => {
  const file = writeConfig('num_shards = 2\n');
  const loaded = loadConfig({ cwd: join(file, '..') });
  assert.equal(loaded.file, file);
  assert.equal(loaded.config.num_shards, 2);
});

test('the documented example file loads unchanged', () => {
  const { config, inactive } = load(`
data_dir = "/var/data/blobasaur"
num_shards = 8
async_write = true
batch_size = 50
batch_timeout_ms = 10
[storage_compression]
enabled = true
algorithm = "zstd"
level = 3
`);
  assert.equal(config.data_dir, '/var/data/blobasaur');
  assert.equal(config.num_shards, 8);
  assert.equal(config.async_write, true);
  assert.equal(config.batch_size, 50);
  assert.equal(config.batch_timeout_ms, 10);
  assert.deepEqual(config.storage_compression, { enabled: true, algorithm: 'zstd', level: 3 });
  assert.equal(config.addr, DEFAULTS.addr);
  assert.deepEqual(inactive, []);
});

test('addr, output_compression and a full [cluster] table load', () => {
  const { config, inactive } = load(`
addr = "0.0.0.0:6381"
output_compression = false

[cluster]
enabled = true
node_id = "node-2"
seeds = ["10.0.0.1:7000", "[::1]:7001", "blob-3.internal:7000"]
advertise_addr = "10.0.0.2:7000"
port = 7000
gossip_interval_ms = 500

[[cluster.slot_ranges]]
start = 0
end = 8191

[[cluster.slot_ranges]]
start = 8192
end = 16383
`);
  assert.equal(config.addr, '0.0.0.0:6381');
  assert.equal(config.output_compression, false);
  assert.deepEqual(config.cluster, {
    ...DEFAULTS.cluster,
    enabled: true,
    node_id: 'node-2',
    seeds: ['10.0.0.1:7000', '[::1]:7001', 'blob-3.internal:7000'],
    advertise_addr: '10.0.0.2:7000',
    port: 7000,
    gossip_interval_ms: 500,
    slot_ranges: [
      { start: 0, end: 8191 },
      { start: 8192, end: 16383 },
    ],
  });
  assert.deepEqual(inactive, ['output_compression']);
});

test('compression level defaults per algorithm', () => {
  for (const [algorithm, level] of [
    ['none', 0],
    ['gzip', 6],
    ['zstd', 3],
    ['lz4', 1],
    ['brotli', 6],
  ] as const) {
    const { config } = load(`[storage_compression]\nalgorithm = "${algorithm}"\n`);
    assert.equal(config.storage_compression.level, level, algorithm);
    assert.equal(defaultLevel(algorithm), level);
  }
  assert.equal(levelRange('none'), null);
  assert.deepEqual(levelRange('gzip'), { min: 1, max: 9 });
  assert.deepEqual(levelRange('zstd'), { min: 1, max: 22 });
  assert.deepEqual(levelRange('lz4'), { min: 1, max: 1 });
  assert.deepEqual(levelRange('brotli'), { min: 0, max: 11 });
});

test('in-range levels are kept', () => {
  for (const [algorithm, level] of [
    ['gzip', 1],
    ['gzip', 9],
    ['zstd', 22],
    ['lz4', 1],
    ['brotli', 0],
    ['brotli', 11],
  ] as const) {
    const { config } = load(`[storage_compression]\nalgorithm = "${algorithm}"\nlevel = ${level}\n`);
    assert.equal(config.storage_compression.level, level);
  }
});

test('out-of-range level is rejected per algorithm with its range', () => {
  const cases: [string, number, string][] = [
    ['gzip', 0, '1..9'],
    ['gzip', 10, '1..9'],
    ['zstd', 23, '1..22'],
    ['zstd', 0, '1..22'],
    ['brotli', 12, '0..11'],
    ['lz4', 2, 'set it to 1'],
    ['none', 1, 'omit "level"'],
  ];
  for (const [algorithm, level, allowed] of cases) {
    const file = writeConfig(`[storage_compression]\nalgorithm = "${algorithm}"\nlevel = ${level}\n`);
    const message = configErrorOf(() => loadConfig({ configPath: file }));
    includesAll(message, [file, 'key "storage_compression.level"', `"${algorithm}"`, `allowed: `, allowed]);
  }
});

test('unknown top-level key names the key and lists the valid ones', () => {
  const file = writeConfig('num_shard = 3\n');
  const message = configErrorOf(() => loadConfig({ configPath: file }));
  includesAll(message, [file, 'key "num_shard"', 'unknown key "num_shard"', 'did you mean "num_shards"', 'allowed:', 'data_dir', 'num_shards', 'storage_compression']);
});

test('unknown nested key names the table and lists its keys', () => {
  const file = writeConfig('[sqlite]\nsynchronus = "FULL"\n');
  const message = configErrorOf(() => loadConfig({ configPath: file }));
  includesAll(message, [file, 'key "sqlite.synchronus"', 'unknown key "synchronus"', 'synchronous, cache_size_mb, busy_timeout_ms, mmap_size_mb']);
});

test('unknown key inside an array of tables is rejected', () => {
  const file = writeConfig('[[cluster.slot_ranges]]\nstart = 1\nend = 2\nstep = 1\n');
  const message = configErrorOf(() => loadConfig({ configPath: file }));
  includesAll(message, ['key "cluster.slot_ranges[0].step"', 'unknown key "step"', 'start, end']);
});

test('wrong type says expected vs got', () => {
  const file = writeConfig('num_shards = "eight"\nasync_write = 1\n');
  const message = configErrorOf(() => loadConfig({ configPath: file }));
  includesAll(message, [
    file,
    'key "num_shards": expected integer, got string "eight"; allowed: integer 1..1024',
    'key "async_write": expected boolean, got integer 1; allowed: true or false',
  ]);
});

test('a float where an integer is required is rejected', () => {
  const message = configErrorOf(() => load('batch_size = 1.5\n'));
  includesAll(message, ['key "batch_size": expected integer, got float 1.5', 'integer 1..100000']);
});

test('a scalar where a table is required is rejected', () => {
  const message = configErrorOf(() => load('cluster = true\n'));
  includesAll(message, ['key "cluster": expected table, got boolean true', 'a table with keys enabled, node_id']);
});

test('bad enum lists the values', () => {
  const file = writeConfig('log_level = "verbose"\n[storage_compression]\nalgorithm = "snappy"\n');
  const message = configErrorOf(() => loadConfig({ configPath: file }));
  includesAll(message, [
    file,
    'key "log_level": string "verbose" is not a valid value',
    '"trace", "debug", "info", "warn", "error", "fatal", "silent"',
    'key "storage_compression.algorithm"',
    '"none", "gzip", "zstd", "lz4", "brotli"',
  ]);
});

test('ranges are reported with their bounds', () => {
  const message = configErrorOf(() => load('num_shards = 2000\nbatch_timeout_ms = -1\nproto_max_bulk_len = 1024\n'));
  includesAll(message, [
    'key "num_shards": integer 2000 is too big; allowed: integer 1..1024',
    'key "batch_timeout_ms": integer -1 is too small; allowed: integer 0..60000',
    'key "proto_max_bulk_len": integer 1024 is too small; allowed: integer 1048576..2147483647',
  ]);
});

test('bad addresses are rejected with the host:port format', () => {
  const bad = ['localhost', 'localhost:', ':6379', '0.0.0.0:65536', 'host:port', '::1:6379', '[::1:6379', '[nothost]:1', 'a b:1'];
  for (const addr of bad) {
    const file = writeConfig(`addr = "${addr}"\n`);
    const message = configErrorOf(() => loadConfig({ configPath: file }));
    includesAll(message, [file, 'key "addr"', '"host:port"', '0..65535']);
  }
  const message = configErrorOf(() => load('addr = 6379\n'));
  includesAll(message, ['key "addr": expected string, got integer 6379', '"host:port"']);
});

test('good addresses parse, IPv6 in brackets', () => {
  assert.deepEqual(parseHostPort('[::1]:6379'), { ok: true, host: '::1', port: 6379 });
  assert.deepEqual(parseHostPort('127.0.0.1:0'), { ok: true, host: '127.0.0.1', port: 0 });
  assert.deepEqual(parseHostPort('blob.example.com:65535'), { ok: true, host: 'blob.example.com', port: 65535 });
  assert.equal(load('addr = "[::]:6380"\n').config.addr, '[::]:6380');
});

test('seeds must be dialable host:port entries', () => {
  const message = configErrorOf(() => load('[cluster]\nseeds = ["10.0.0.1:7000", "10.0.0.2:0", "nope"]\n'));
  includesAll(message, ['key "cluster.seeds[1]"', 'key "cluster.seeds[2]"', 'port 1..65535']);
  assert.ok(!message.includes('seeds[0]'));
});

test('slot ranges need start <= end within 0..16383', () => {
  const message = configErrorOf(() => load('[[cluster.slot_ranges]]\nstart = 10\nend = 5\n[[cluster.slot_ranges]]\nstart = 0\nend = 16384\n[[cluster.slot_ranges]]\nend = 3\n'));
  includesAll(message, [
    'key "cluster.slot_ranges[0].end": end 5 is before start 10',
    'key "cluster.slot_ranges[1].end": integer 16384 is too big; allowed: integer 0..16383',
    'key "cluster.slot_ranges[2].start": missing required key',
  ]);
});

test('output buffer soft limit may not exceed the hard limit', () => {
  const message = configErrorOf(() => load('client_output_buffer_limit_soft = 300000000\n'));
  includesAll(message, ['key "client_output_buffer_limit_soft"', 'client_output_buffer_limit_soft <= client_output_buffer_limit_hard']);
});

test('TOML syntax error gives file, line and column', () => {
  const file = writeConfig('num_shards = 4\ndata_dir = "unterminated\n');
  const message = configErrorOf(() => loadConfig({ configPath: file }));
  includesAll(message, [file, 'TOML syntax error', 'line 2', 'column']);
});

test('missing explicit --config file is named', () => {
  const dir = tempDir();
  const message = configErrorOf(() => loadConfig({ configPath: 'missing.toml', cwd: dir }));
  includesAll(message, ['not found', join(dir, 'missing.toml')]);
});

test('several errors are all reported at once', () => {
  const file = writeConfig(`
bogus = 1
num_shards = 0
log_level = "loud"
[sqlite]
synchronous = "SOMETIMES"
cache_size_mb = -5
[storage_compression]
algorithm = "gzip"
level = 42
`);
  let caught: unknown;
  try {
    loadConfig({ configPath: file });
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof ConfigError);
  assert.equal(caught.problems.length, 6, caught.message);
  includesAll(caught.message, [
    '6 problems',
    'key "bogus"',
    'key "num_shards"',
    'key "log_level"',
    'key "sqlite.synchronous"',
    '"OFF", "NORMAL", "FULL"',
    'key "sqlite.cache_size_mb"',
    'key "storage_compression.level"',
  ]);
  for (const line of caught.problems) assert.ok(line.startsWith(`${file}: key "`), line);
  assert.ok(caught.message.includes(basename(file)));
});

test('CLI overrides beat the file', () => {
  const file = writeConfig('addr = "0.0.0.0:6381"\ndata_dir = "/from/file"\nnum_shards = 8\n');
  const { config } = loadConfig({ configPath: file, overrides: { addr: '127.0.0.1:7777', dataDir: '/from/cli', shards: 2 } });
  assert.equal(config.addr, '127.0.0.1:7777');
  assert.equal(config.data_dir, '/from/cli');
  assert.equal(config.num_shards, 2);

  const partial = loadConfig({ configPath: file, overrides: { shards: 16 } }).config;
  assert.equal(partial.addr, '0.0.0.0:6381');
  assert.equal(partial.num_shards, 16);
});

test('overrides are validated and blamed on the flag', () => {
  const message = configErrorOf(() => loadConfig({ cwd: tempDir(), overrides: { shards: 0, addr: 'nowhere' } }));
  includesAll(message, ['--shards', 'key "num_shards"', 'integer 1..1024', '--addr', 'key "addr"']);
});

test('an override hides an invalid file value for the same key', () => {
  const { config } = loadConfig({ configPath: writeConfig('num_shards = "lots"\n'), overrides: { shards: 3 } });
  assert.equal(config.num_shards, 3);
});

test('inactive keys are detected only when set', () => {
  assert.deepEqual(inactiveKeysSet({}), []);
  assert.deepEqual(inactiveKeysSet({ num_shards: 4, sqlite: {} }), []);
  // output_compression stays listed for good (it has no effect); metrics is active, so not listed.
  assert.deepEqual(inactiveKeysSet({ metrics: {}, output_compression: true }), ['output_compression']);
  assert.deepEqual(inactiveKeysSet(null), []);
  const { inactive } = load('num_shards = 2\noutput_compression = true\n[metrics]\n');
  assert.deepEqual(inactive, ['output_compression']);
  // The list shrinks as features land; every entry must stay a real key of the schema.
  const top = Object.keys(configSchema.shape);
  for (const key of INACTIVE_KEYS) assert.ok(top.includes(key.split('.')[0]), `${key} is not a config key`);
});

test('a managed cluster: etcd endpoints, not together with seeds or slot ranges', () => {
  const ok = load('[cluster]\nenabled = true\netcd = ["http://127.0.0.1:2379"]\ncluster_name = "prod"\nlease_ttl_s = 3\n');
  assert.deepEqual(ok.config.cluster.etcd, ['http://127.0.0.1:2379']);
  assert.equal(ok.config.cluster.cluster_name, 'prod');
  assert.equal(ok.config.cluster.lease_ttl_s, 3);
  const both = configErrorOf(() => load('[cluster]\netcd = ["http://127.0.0.1:2379"]\nseeds = ["127.0.0.1:7000"]\n'));
  includesAll(both, ['key "cluster.etcd"', 'not from slot_ranges, slots or seeds']);
  const bad = configErrorOf(() => load('[cluster]\netcd = ["127.0.0.1:2379"]\n'));
  includesAll(bad, ['key "cluster.etcd[0]"', 'http://host:port']);
  const half = configErrorOf(() => load('[cluster]\netcd = ["https://e:2379"]\netcd_cert_file = "c.pem"\n'));
  includesAll(half, ['key "cluster.etcd_key_file"', 'go together']);
});

test('every key in the schema has a description', () => {
  const missing: string[] = [];
  const walk = (shape: Record<string, { description?: string | undefined }>, prefix: string): void => {
    for (const [key, schema] of Object.entries(shape)) {
      if (!schema.description) missing.push(prefix + key);
    }
  };
  walk(configSchema.shape, '');
  for (const table of ['sqlite', 'cluster', 'replication', 'metrics'] as const) {
    walk(configSchema.shape[table].unwrap().shape, `${table}.`);
  }
  walk(configSchema.shape.storage_compression.unwrap().in.shape, 'storage_compression.');
  assert.deepEqual(missing, []);
});

test("the README's example config loads as written", () => {
  const readme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');
  const block = /```toml\n([\s\S]*?)```/.exec(readme);
  assert.ok(block !== null, 'README has a toml block');
  const { config } = load(block[1]);
  assert.equal(config.addr, '0.0.0.0:6379');
  assert.equal(config.sqlite.synchronous, 'NORMAL');
  assert.equal(config.maxclients, 10000);
});
