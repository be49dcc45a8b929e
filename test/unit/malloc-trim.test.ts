/**
 * glibc malloc through koffi (src/storage/malloc-trim.ts): found on this Linux/glibc machine, and
 * malloc's parameters left alone when the environment the server started with set any of them.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  BUSY_TRIM_THRESHOLD_BYTES,
  IDLE_TRIM_THRESHOLD_BYTES,
  loadGlibcMalloc,
  M_MMAP_THRESHOLD,
  M_TRIM_THRESHOLD,
  mallocSetByEnvironment,
  MMAP_THRESHOLD_BYTES,
  trimWhenIdle,
  tuneMalloc,
  whenBusy,
  type GlibcMalloc,
} from '../../src/storage/malloc-trim.js';

describe('glibc malloc trim and thresholds', () => {
  it('MALLOC_*_ variables and glibc.malloc tunables count as set by the environment; others do not', () => {
    assert.equal(mallocSetByEnvironment({}), false);
    assert.equal(mallocSetByEnvironment({ MALLOC_MMAP_THRESHOLD_: '131072' }), true);
    assert.equal(mallocSetByEnvironment({ MALLOC_TRIM_THRESHOLD_: '0' }), true);
    assert.equal(mallocSetByEnvironment({ MALLOC_ARENA_MAX: '2' }), false, 'glibc reads MALLOC_ARENA_MAX without the trailing underscore, and it sets no threshold');
    assert.equal(mallocSetByEnvironment({ GLIBC_TUNABLES: 'glibc.malloc.trim_threshold=131072' }), true);
    assert.equal(mallocSetByEnvironment({ GLIBC_TUNABLES: 'glibc.pthread.rseq=0' }), false);
  });

  it('on Linux with glibc, malloc_trim and mallopt are found and answer; with MALLOC_MMAP_THRESHOLD_ set, no threshold is changed', async () => {
    const m = await loadGlibcMalloc();
    assert.ok(m !== null, 'koffi and glibc are installed here: loadGlibcMalloc() must find malloc_trim');
    assert.equal(typeof m.trim(), 'boolean');
    m.churn(256 * 1024);
    assert.equal(tuneMalloc(m, { MALLOC_MMAP_THRESHOLD_: '131072' }), false);
    assert.equal(tuneMalloc(m, {}), true);
  });

  it('the trim threshold starts idle; the idle trim lowers it again and cuts its own arena before malloc_trim; traffic raises it', () => {
    const calls: string[] = [];
    const fake: GlibcMalloc = {
      trim: () => (calls.push('trim'), true),
      option: (param, value) => (calls.push(`option ${param} ${value}`), true),
      churn: (bytes) => void calls.push(`churn ${bytes}`),
    };
    assert.equal(tuneMalloc(fake, {}), true);
    // Idle from the start: a server that never moves a large value keeps glibc's usual 128 KiB.
    assert.deepEqual(calls.splice(0), [`option ${M_MMAP_THRESHOLD} ${MMAP_THRESHOLD_BYTES}`, `option ${M_TRIM_THRESHOLD} ${IDLE_TRIM_THRESHOLD_BYTES}`]);
    whenBusy(fake, true);
    assert.deepEqual(calls.splice(0), [`option ${M_TRIM_THRESHOLD} ${BUSY_TRIM_THRESHOLD_BYTES}`]);
    assert.equal(trimWhenIdle(fake, true), true);
    // The free that makes glibc look at the thread's arena top must come after the threshold is low,
    // and must be larger than glibc's 64 KiB consolidation threshold, or the top is not looked at.
    const [lower, churn, trim, ...rest] = calls.splice(0);
    assert.equal(lower, `option ${M_TRIM_THRESHOLD} ${IDLE_TRIM_THRESHOLD_BYTES}`);
    assert.ok(Number(/^churn (\d+)$/.exec(churn)?.[1]) > 64 * 1024, churn);
    assert.equal(trim, 'trim');
    assert.deepEqual(rest, [], 'the threshold stays low until traffic');
    whenBusy(fake, true);
    assert.deepEqual(calls.splice(0), [`option ${M_TRIM_THRESHOLD} ${BUSY_TRIM_THRESHOLD_BYTES}`]);
    // Thresholds the environment set are left alone: only malloc_trim.
    assert.equal(trimWhenIdle(fake, false), true);
    whenBusy(fake, false);
    assert.deepEqual(calls, ['trim']);
    assert.ok(IDLE_TRIM_THRESHOLD_BYTES < BUSY_TRIM_THRESHOLD_BYTES);
  });
});
