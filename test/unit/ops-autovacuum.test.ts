/** The server's background incremental vacuum: adaptive rate, bounded time slices, files that shrink. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger } from '../../src/observability/log.js';
import { startAutoVacuum, vacuumActivity } from '../../src/tools/vacuum.js';
import { startOurs } from '../helpers/servers.js';

const silent = createLogger('silent', false);

async function fillAndEmpty(s: Awaited<ReturnType<typeof startOurs>>, n: number): Promise<void> {
  for (let i = 0; i < n; i++) await s.store.write(null, Buffer.from(`k${i}`), Buffer.alloc(8192, i), null, Date.now());
  for (let i = 0; i < n; i++) await s.store.remove(null, Buffer.from(`k${i}`));
}

test('auto-vacuum frees at least floorPagesPerRun per run, and returns everything above minFreePages', async () => {
  const s = await startOurs({ num_shards: 1 });
  try {
    await fillAndEmpty(s, 300);
    const [before] = s.store.pageStats();
    assert.equal(before.autoVacuum, 2);
    assert.ok(before.freelistCount > 500, `${before.freelistCount} free pages`);
    // A backlog this small wants fewer than 50 pages a run to finish in 100 s: the floor decides.
    const opts = { intervalMs: 20, minFreePages: 10, targetSeconds: 100, floorPagesPerRun: 50, maxSliceMs: 50 };
    const started = Date.now();
    const stop = startAutoVacuum(s.store, silent, opts);
    await new Promise((resolve) => setTimeout(resolve, 30));
    stop();
    const runs = Math.floor((Date.now() - started) / opts.intervalMs);
    const freed = before.freelistCount - s.store.pageStats()[0].freelistCount;
    assert.ok(runs >= 1 && freed === 50 * runs, `${freed} pages freed in ${runs} runs`);

    const stop2 = startAutoVacuum(s.store, silent, opts);
    for (let i = 0; i < 200 && s.store.pageStats()[0].freelistCount >= 10; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    stop2();
    const after = s.store.pageStats()[0];
    // It stops below minFreePages: the remainder is left as slack; the file lost what was freed.
    assert.ok(after.freelistCount < 10, `${after.freelistCount}`);
    assert.equal(after.pageCount, before.pageCount - (before.freelistCount - after.freelistCount));
    const act = vacuumActivity(s.store);
    assert.equal(act.pages, before.freelistCount - after.freelistCount);
    assert.equal(act.bytes, act.pages * before.pageSize);
  } finally {
    await s.close();
  }
});

test('auto-vacuum raises its rate with the backlog: targetSeconds decides when above the floor', async () => {
  const s = await startOurs({ num_shards: 1 });
  try {
    await fillAndEmpty(s, 300);
    const [before] = s.store.pageStats();
    // ceil(free * 20 / 200) = a tenth of the backlog per run.
    const opts = { intervalMs: 20, minFreePages: 10, targetSeconds: 0.2, floorPagesPerRun: 1, maxSliceMs: 50 };
    const stop = startAutoVacuum(s.store, silent, opts);
    await new Promise((resolve) => setTimeout(resolve, 30));
    stop();
    const freed = before.freelistCount - s.store.pageStats()[0].freelistCount;
    const perRun = Math.ceil(before.freelistCount / 10);
    assert.ok(freed > 0 && freed % perRun === 0, `${freed} pages freed, ${perRun} per run`);
  } finally {
    await s.close();
  }
});
