/**
 * glibc malloc through koffi (src/storage/malloc-trim.ts): found on this Linux/glibc machine, and
 * malloc's parameters left alone when the environment the server started with set any of them.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { loadGlibcMalloc, mallocSetByEnvironment, tuneMalloc } from '../../src/storage/malloc-trim.js';

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
    assert.equal(tuneMalloc(m, { MALLOC_MMAP_THRESHOLD_: '131072' }), false);
    assert.equal(tuneMalloc(m, {}), true);
  });
});
