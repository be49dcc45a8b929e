/**
 * INFO sections (redis-cli, redis-py), the Prometheus /metrics endpoint (parsed strictly) and
 * /health, against the real CLI with `[metrics] enabled`.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { python, redisCli } from '../helpers/cli.js';
import { parsePrometheusText, sampleValue, type Family } from '../helpers/prom-text.js';
import { RawClient, resp } from '../helpers/raw.js';
import { freePort, spawnOurs, tempDir, type Child } from '../helpers/servers.js';
import { shardPath } from '../../src/storage/schema.js';

async function httpGet(port: number, path: string): Promise<{ status: number; type: string; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: res.status, type: res.headers.get('content-type') ?? '', body: await res.text() };
}

describe('operations: INFO, /metrics, /health', () => {
  let child: Child;
  let metricsPort: number;
  let client: RawClient;
  const dir = tempDir('blobasaur-ops-metrics-');

  before(async () => {
    metricsPort = await freePort();
    const config = join(dir, 'config.toml');
    writeFileSync(config, `log_level = "warn"\nnum_shards = 4\n[metrics]\nenabled = true\naddr = "127.0.0.1:${metricsPort}"\n`);
    child = await spawnOurs(['--config', config, '--data-dir', join(dir, 'data')]);
    client = await RawClient.connect(child.port);
    // One at a time, so each write is its own commit.
    client.write(resp('SET', 'a', '1'));
    assert.equal(await client.reply(), '+OK\r\n');
    client.write(resp('SET', 'b', '22'));
    assert.equal(await client.reply(), '+OK\r\n');
    client.write(resp('GET', 'a'));
    assert.equal(await client.reply(), '$1\r\n1\r\n');
    client.write(resp('SELECT', '5'));
    assert.equal(await client.reply(), '-ERR DB index is out of range\r\n');
    client.write(resp('HGET', 'x'));
    assert.equal(await client.reply(), "-ERR wrong number of arguments for 'hget' command\r\n");
  });

  after(async () => {
    client.destroy();
    child.proc.kill('SIGTERM');
    assert.equal(await child.exited, 0);
  });

  it('/metrics is valid Prometheus text with exact command, error, commit and shard figures', async () => {
    const res = await httpGet(metricsPort, '/metrics');
    assert.equal(res.status, 200);
    assert.match(res.type, /^text\/plain; version=0\.0\.4/);
    const m = parsePrometheusText(res.body);
    const type = (name: string): Family['type'] | undefined => m.get(name)?.type;
    assert.equal(type('blobasaur_commands_total'), 'counter');
    assert.equal(type('blobasaur_command_duration_seconds'), 'histogram');
    assert.equal(type('blobasaur_commit_duration_seconds'), 'histogram');
    assert.equal(type('blobasaur_commit_batch_size'), 'histogram');
    assert.equal(type('blobasaur_queue_depth'), 'gauge');
    assert.equal(type('blobasaur_overlay_entries'), 'gauge');
    assert.equal(type('blobasaur_shard_file_bytes'), 'gauge');
    assert.equal(type('blobasaur_read_cache_hits_total'), 'counter');
    assert.equal(type('blobasaur_read_cache_bytes'), 'gauge');
    assert.equal(type('blobasaur_wal_checkpoints_total'), 'counter');
    // Nothing here is 256 KiB or more, so nothing was cached.
    assert.equal(sampleValue(m, 'blobasaur_read_cache_hits_total'), 0);
    assert.equal(sampleValue(m, 'blobasaur_read_cache_bytes'), 0);

    assert.equal(sampleValue(m, 'blobasaur_commands_total', { command: 'set' }), 2);
    assert.equal(sampleValue(m, 'blobasaur_commands_total', { command: 'get' }), 1);
    assert.equal(sampleValue(m, 'blobasaur_commands_total', { command: 'select' }), 1);
    assert.equal(sampleValue(m, 'blobasaur_command_duration_seconds_count', { command: 'set' }), 2);
    assert.equal(sampleValue(m, 'blobasaur_command_duration_seconds_bucket', { command: 'get', le: '+Inf' }), 1);
    assert.equal(sampleValue(m, 'blobasaur_command_errors_total', { command: 'select', kind: 'ERR' }), 1);
    // SELECT's error, and HGET's arity error, which Redis' errorstats count too.
    assert.equal(sampleValue(m, 'blobasaur_errors_total', { kind: 'reply_ERR' }), 2);
    // SELECT's error and HGET's arity error (rejected before it ran).
    assert.equal(sampleValue(m, 'blobasaur_error_replies_total'), 2);
    // spawnOurs' port probe and the test client.
    assert.equal(sampleValue(m, 'blobasaur_connections_received_total'), 2);
    assert.equal(sampleValue(m, 'blobasaur_connected_clients'), 1);
    assert.ok((sampleValue(m, 'blobasaur_inflight_ops') ?? -1) <= 4);

    // The expiry sweeper commits a queued sweep on every shard every 100 ms, so commit counts are
    // not 2; what must hold exactly is that each shard's histograms and counters agree.
    let commits = 0;
    for (let shard = 0; shard < 4; shard++) {
      const labels = { shard: String(shard) };
      // At most the sweeper's own queued sweep (pushed in a timer, committed in the next check phase).
      assert.ok([0, 1].includes(sampleValue(m, 'blobasaur_queue_depth', labels) ?? -1));
      assert.equal(sampleValue(m, 'blobasaur_overlay_entries', labels), 0);
      assert.ok((sampleValue(m, 'blobasaur_shard_file_bytes', labels) ?? 0) >= 4096, `shard ${shard} has a file`);
      const count = sampleValue(m, 'blobasaur_commit_duration_seconds_count', labels) ?? 0;
      assert.equal(sampleValue(m, 'blobasaur_commit_batch_size_count', labels) ?? 0, count);
      assert.equal(sampleValue(m, 'blobasaur_commit_batch_size_sum', labels) ?? 0, sampleValue(m, 'blobasaur_committed_writes_total', labels));
      assert.equal(sampleValue(m, 'blobasaur_failed_writes_total', labels), 0);
      commits += count;
    }
    assert.ok(commits >= 2, `${commits} commits`);
  });

  it("Prometheus' own Python client parser reads /metrics (python3-prometheus-client)", async (t) => {
    const has = await python('import importlib.util; print(importlib.util.find_spec("prometheus_client") is not None)');
    if (has.trim() !== 'True') {
      t.skip('python3-prometheus-client is not installed (Debian package; .ci/run does not install it yet)');
      return;
    }
    const out = await python(
      `import json, urllib.request
from prometheus_client.parser import text_string_to_metric_families
text = urllib.request.urlopen('http://127.0.0.1:${metricsPort}/metrics').read().decode()
fams = {f.name: f for f in text_string_to_metric_families(text)}
def value(fam, name, **labels):
    return [s.value for s in fams[fam].samples if s.name == name and s.labels == labels]
print(json.dumps({
  'types': {n: fams[n].type for n in ['blobasaur_commands', 'blobasaur_command_duration_seconds', 'blobasaur_commit_batch_size', 'blobasaur_queue_depth']},
  'set': value('blobasaur_commands', 'blobasaur_commands_total', command='set'),
  'select_err': value('blobasaur_command_errors', 'blobasaur_command_errors_total', command='select', kind='ERR'),
  'get_inf': value('blobasaur_command_duration_seconds', 'blobasaur_command_duration_seconds_bucket', command='get', le='+Inf'),
  'depth0': value('blobasaur_queue_depth', 'blobasaur_queue_depth', shard='0'),
}))`,
    );
    assert.deepEqual(JSON.parse(out), {
      types: {
        blobasaur_commands: 'counter',
        blobasaur_command_duration_seconds: 'histogram',
        blobasaur_commit_batch_size: 'histogram',
        blobasaur_queue_depth: 'gauge',
      },
      set: [2],
      select_err: [1],
      get_inf: [1],
      depth0: [0],
    });
  });

  it('/health answers JSON with every shard readable and writable; other paths 404', async () => {
    const res = await httpGet(metricsPort, '/health');
    assert.equal(res.status, 200);
    assert.equal(res.type, 'application/json');
    assert.deepEqual(JSON.parse(res.body), {
      ok: true,
      shards: [0, 1, 2, 3].map((shard) => ({ shard, readable: true, writable: true, damaged: false, error: null })),
      cluster: { enabled: false, state: 'ok' },
    });
    assert.equal((await httpGet(metricsPort, '/nope')).status, 404);
  });

  it('/health answers 503 naming the shard whose write lock another process holds, and recovers', async () => {
    const holder = new Database(shardPath(join(dir, 'data'), 2));
    holder.exec('BEGIN IMMEDIATE');
    try {
      const started = Date.now();
      const res = await httpGet(metricsPort, '/health');
      assert.ok(Date.now() - started < 1000, 'the probe does not wait out busy_timeout');
      assert.equal(res.status, 503);
      const h = JSON.parse(res.body) as { ok: boolean; shards: unknown[] };
      assert.equal(h.ok, false);
      assert.deepEqual(h.shards[2], { shard: 2, readable: true, writable: false, damaged: false, error: 'database is locked' });
      assert.deepEqual(h.shards[1], { shard: 1, readable: true, writable: true, damaged: false, error: null });
    } finally {
      holder.exec('ROLLBACK');
      holder.close();
    }
    assert.equal((await httpGet(metricsPort, '/health')).status, 200);
  });

  it('INFO: default and all sections, commandstats and errorstats with exact counts', async () => {
    client.write(resp('INFO'));
    const def = await client.reply();
    const titles = (text: string): string[] => [...text.matchAll(/^# (\w+)\r$/gm)].map((x) => x[1]);
    assert.deepEqual(titles(def), ['Server', 'Clients', 'Memory', 'Persistence', 'Stats', 'Replication', 'Cpu', 'Errorstats', 'Cluster', 'Keyspace']);
    client.write(resp('INFO', 'commandstats'));
    const cmd = await client.reply();
    assert.match(cmd, /\r\ncmdstat_set:calls=2,usec=\d+,usec_per_call=\d+\.\d\d,rejected_calls=0,failed_calls=0\r\n/);
    assert.match(cmd, /\r\ncmdstat_get:calls=1,usec=\d+,usec_per_call=\d+\.\d\d,rejected_calls=0,failed_calls=0\r\n/);
    assert.match(cmd, /\r\ncmdstat_select:calls=1,usec=\d+,usec_per_call=\d+\.\d\d,rejected_calls=0,failed_calls=1\r\n/);
    assert.match(cmd, /\r\ncmdstat_info:calls=1,/);
    client.write(resp('INFO', 'errorstats', 'cluster', 'replication'));
    const body = (await client.reply()).replace(/^\$\d+\r\n/, '');
    assert.equal(
      body.replace(/master_replid:[0-9a-f]{40}/, 'master_replid:X'),
      '# Replication\r\nrole:master\r\nconnected_slaves:0\r\nmaster_failover_state:no-failover\r\nmaster_replid:X\r\n' +
        'master_replid2:0000000000000000000000000000000000000000\r\nmaster_repl_offset:0\r\nsecond_repl_offset:-1\r\n' +
        'repl_backlog_active:0\r\nrepl_backlog_size:1048576\r\nrepl_backlog_first_byte_offset:0\r\nrepl_backlog_histlen:0\r\n\r\n# Errorstats\r\nerrorstat_ERR:count=2\r\n\r\n# Cluster\r\ncluster_enabled:0\r\n\r\n');
    // Commands that never run (unknown, wrong arity) count in errorstats too, as in Redis.
    client.write(Buffer.concat([resp('NOSUCHCMD'), resp('GET')]));
    await client.replies(2);
    client.write(resp('INFO', 'errorstats'));
    assert.match(await client.reply(), /\r\nerrorstat_ERR:count=4\r\n/);

    const all = await redisCli(child.port, ['INFO', 'all']);
    assert.deepEqual(titles(all), [
      'Server', 'Clients', 'Memory', 'Persistence', 'Stats', 'Replication', 'Cpu', 'Commandstats', 'Errorstats', 'Cluster', 'Keyspace', 'Blobasaur',
    ]);
    assert.match(all, /\r\ndb0:keys=2,expires=0,avg_ttl=0\r\n/);
    assert.match(all, /\r\nshards:4\r\nasync_write:0\r\n/);
    assert.match(all, /\r\nqueue_depths:[01],[01],[01],[01]\r\n/);
    const committed = /\r\ncommits:(\d+)\r\ncommitted_writes:(\d+)\r\nfailed_writes:0\r\navg_commit_batch:(\d+\.\d\d)\r\n/.exec(all);
    assert.ok(committed !== null, all);
    assert.ok(Number(committed[2]) >= 2);
    assert.equal(committed[3], (Number(committed[2]) / Number(committed[1])).toFixed(2));
    assert.match(all, /\r\nlogical_bytes:3\r\nstored_bytes:3\r\n/);
    assert.match(all, /\r\nrdb_bgsave_in_progress:0\r\n/);
  });

  it("redis-py's info() parses every section", async () => {
    const out = await python(
      `import json, redis
r = redis.Redis(host='127.0.0.1', port=${child.port})
everything = r.info('all')
sections = {s: sorted(r.info(s).keys()) for s in ['server','clients','memory','persistence','stats','replication','cpu','commandstats','errorstats','cluster','keyspace','blobasaur']}
print(json.dumps({'set': everything['cmdstat_set']['calls'], 'select_failed': everything['cmdstat_select']['failed_calls'],
  'err': everything['errorstat_ERR'], 'role': everything['role'], 'cluster': everything['cluster_enabled'],
  'db0': everything['db0'], 'shards': everything['shards'], 'committed': everything['committed_writes'] >= 2,
  'empty': [s for s, k in sections.items() if not k]}))`,
    );
    assert.deepEqual(JSON.parse(out), {
      set: 2,
      select_failed: 1,
      // redis-py 4.3 splits a value into a dict only when it has both ',' and '='; real Redis' line is the same.
      err: 'count=4',
      role: 'master',
      cluster: 0,
      db0: { keys: 2, expires: 0, avg_ttl: 0 },
      shards: 4,
      committed: true,
      empty: [],
    });
  });
});
