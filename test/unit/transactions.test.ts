/** EXEC's writes commit together: one COMMIT and one savepoint group per shard (socket-free). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Harness, WRITE_MODES } from '../helpers/harness.js';
import type { ShardWrite } from '../../src/storage/shard.js';

/** Records, per shard, the savepoint group sizes of every commit. */
function recordCommits(h: Harness): number[][][] {
  const seen: number[][][] = h.store.queues.map(() => []);
  h.store.queues.forEach((q, i) => {
    const apply = q.shard.applyGroups.bind(q.shard);
    q.shard.applyGroups = (groups: readonly (readonly ShardWrite[])[]) => {
      seen[i].push(groups.map((g) => g.length));
      return apply(groups);
    };
  });
  return seen;
}

for (const { name, opts } of WRITE_MODES) {
  test(`${name}: a transaction's writes land in one commit and one savepoint group per shard`, async () => {
    const h = Harness.open({ ...opts, numShards: 4 });
    try {
      const seen = recordCommits(h);
      assert.equal(await h.resp('MULTI'), '+OK\r\n');
      for (let i = 0; i < 40; i++) assert.equal(await h.resp('SET', `k${i}`, `v${i}`), '+QUEUED\r\n');
      assert.equal(await h.resp('DEL', 'k0'), '+QUEUED\r\n');
      assert.equal(await h.resp('HSET', 'ns', 'a', '1', 'b', '2'), '+QUEUED\r\n');
      const reply = await h.resp('EXEC');
      assert.equal(reply, `*42\r\n${'+OK\r\n'.repeat(40)}:1\r\n:2\r\n`);
      await h.store.drain();
      // The harness' batch_size is 1: outside a transaction each write would be a group of its own.
      for (const [shard, commits] of seen.entries()) {
        assert.equal(commits.length, 1, `shard ${shard}: ${JSON.stringify(commits)}`);
        assert.equal(commits[0].length, 1, `shard ${shard}: ${JSON.stringify(commits)}`);
      }
      assert.equal(seen.reduce((n, c) => n + c[0][0], 0), 43);
      assert.equal(await h.resp('GET', 'k39'), '$3\r\nv39\r\n');
      assert.equal(await h.resp('EXISTS', 'k0'), ':0\r\n');
      assert.deepEqual(h.failures, []);
    } finally {
      await h.close();
    }
  });
}

test('a transaction larger than one commit\'s cap (4096 writes) is still one commit on its shard', async () => {
  const h = Harness.open({ numShards: 1 });
  try {
    const seen = recordCommits(h);
    await h.run('MULTI');
    for (let i = 0; i < 5000; i++) await h.run('SET', `k${i}`, 'v');
    const reply = await h.run('EXEC');
    assert.ok(Array.isArray(reply) && reply.length === 5000);
    await h.store.drain();
    assert.deepEqual(seen, [[[5000]]]);
  } finally {
    await h.close();
  }
});

test('the same writes without MULTI are split by batch_size (the contrast)', async () => {
  const h = Harness.open({ numShards: 1 });
  try {
    const seen = recordCommits(h);
    await Promise.all([h.run('SET', 'a', '1'), h.run('SET', 'b', '2'), h.run('SET', 'c', '3')]);
    await h.store.drain();
    assert.deepEqual(seen, [[[1, 1, 1]]]);
  } finally {
    await h.close();
  }
});

test('WATCH in the harness: the keyspace tells the watcher, and nobody is told once UNWATCHed', async () => {
  const h = Harness.open();
  try {
    await h.run('SET', 'k', 'v');
    await h.run('WATCH', 'k');
    await h.run('SET', 'k', 'w');
    await h.run('MULTI');
    assert.equal(await h.resp('EXEC'), '*-1\r\n');
    await h.run('WATCH', 'k');
    await h.run('UNWATCH');
    await h.run('SET', 'k', 'x');
    await h.run('MULTI');
    await h.run('GET', 'k');
    assert.equal(await h.resp('EXEC'), '*1\r\n$1\r\nx\r\n');
    // Expired by time between WATCH and EXEC (the harness' clock moves by hand).
    await h.run('SET', 'k', 'v', 'PX', '100');
    await h.run('WATCH', 'k');
    await h.run('MULTI');
    h.now += 101;
    assert.equal(await h.resp('EXEC'), '*-1\r\n');
  } finally {
    await h.close();
  }
});

for (const cmd of ['FLUSHALL', 'FLUSHDB']) {
  test(`${cmd} decides what it removes at the command's clock: a watched key alive then fails EXEC`, async () => {
    const h = Harness.open();
    try {
      // The command clock is a day behind the wall clock: at the wall clock the key has expired,
      // at the command's clock it is alive, so the flush removes it and must touch its watchers.
      h.now = Date.now() - 24 * 3600 * 1000;
      assert.equal(await h.resp('SET', 'k', 'v', 'PX', 3600 * 1000), '+OK\r\n');
      assert.equal(await h.resp('WATCH', 'k'), '+OK\r\n');
      assert.equal(await h.resp(cmd), '+OK\r\n');
      assert.equal(await h.resp('MULTI'), '+OK\r\n');
      assert.equal(await h.resp('SET', 'other', '1'), '+QUEUED\r\n');
      assert.equal(await h.resp('EXEC'), '*-1\r\n');
      assert.deepEqual(h.failures, []);
    } finally {
      await h.close();
    }
  });
}

for (const { name, opts } of WRITE_MODES) {
  test(`${name}: a script's writes land in one commit and one savepoint group per shard, like EXEC's`, async () => {
    const h = Harness.open({ ...opts, numShards: 4 });
    try {
      const seen = recordCommits(h);
      const script = "for i = 0, 39 do redis.call('SET', 'k' .. i, 'v' .. i) end redis.call('DEL', 'k0') return redis.call('HSET', 'ns', 'a', '1', 'b', '2')";
      assert.equal(await h.resp('EVAL', script, 0), ':2\r\n');
      await h.store.drain();
      // The harness' batch_size is 1: outside a group each write would be a savepoint of its own.
      for (const [shard, commits] of seen.entries()) {
        assert.equal(commits.length, 1, `shard ${shard}: ${JSON.stringify(commits)}`);
        assert.equal(commits[0].length, 1, `shard ${shard}: ${JSON.stringify(commits)}`);
      }
      assert.equal(seen.reduce((n, c) => n + c[0][0], 0), 43);
      assert.equal(await h.resp('GET', 'k39'), '$3\r\nv39\r\n');
      assert.equal(await h.resp('EXISTS', 'k0'), ':0\r\n');
      assert.deepEqual(h.failures, []);
    } finally {
      await h.close();
    }
  });
}
