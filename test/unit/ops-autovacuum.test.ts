/** The server's background incremental vacuum frees at most pagesPerRun pages per shard per run. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger } from '../../src/observability/log.js';
import { startAutoVacuum } from '../../src/tools/vacuum.js';
import { startOurs } from '../helpers/servers.js';

test('auto-vacuum returns free pages of a running store, a bounded number per run', async () => {
  const s = await startOurs({ num_shards: 1 });
  try {
    const shard = s.store.queues[0].shard;
    for (let i = 0; i < 300; i++) await s.store.write(null, Buffer.from(`k${i}`), Buffer.alloc(8192, i), null, Date.now());
    for (let i = 0; i < 300; i++) await s.store.remove(null, Buffer.from(`k${i}`));
    const before = shard.pageStats();
    assert.equal(before.autoVacuum, 2);
    assert.ok(before.freelistCount > 200, `${before.freelistCount} free pages`);
    const stop = startAutoVacuum(s.store, createLogger('silent', false), { intervalMs: 20, minFreePages: 10, pagesPerRun: 100 });
    await new Promise((resolve) => setTimeout(resolve, 30));
    stop();
    const afterOne = shard.pageStats();
    // One run (or two, timers permitting) of 100 pages.
    assert.ok([before.freelistCount - 100, before.freelistCount - 200].includes(afterOne.freelistCount), `${afterOne.freelistCount}`);
    const stop2 = startAutoVacuum(s.store, createLogger('silent', false), { intervalMs: 10, minFreePages: 10, pagesPerRun: 100 });
    for (let i = 0; i < 100 && shard.pageStats().freelistCount >= 10; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    stop2();
    // It stops below minFreePages: the remainder is left as slack.
    assert.ok(shard.pageStats().freelistCount < 10);
    assert.equal(shard.pageStats().pageCount, before.pageCount - (before.freelistCount - shard.pageStats().freelistCount));
  } finally {
    await s.close();
  }
});
