/**
 * glibc's malloc_trim() and mallopt(), called through koffi (an optional dependency), so that the
 * memory a large value passed through is given back to the system once the value is gone.
 *
 * Why: a large value passes through the server as thousands of short-lived buffers — 64 KiB socket
 * reads on the event loop, 256 KiB chunks read by the chunk I/O thread — which V8 frees only at its
 * next collection. By then malloc has grown its arenas to hold them, and later allocations above
 * them keep the freed pages resident: measured +31 MiB in the main thread's heap and +18 MiB in the
 * chunk I/O thread's arena 2 s after a 500 MiB SET, GET and DEL, with the JS heap and external
 * memory back at their start (docs/benchmarks.md, "RSS after DEL"). Only malloc_trim gives back
 * free pages in the middle of an arena, and Node.js has no binding for it.
 *
 * malloc_trim does not shorten a thread arena's top, though: glibc cuts that only when a free
 * leaves more than M_TRIM_THRESHOLD there, and by default that threshold follows the largest
 * buffer freed (twice malloc's dynamic mmap threshold, a few MiB here: +6–10 MiB left in one run
 * of four). So the thresholds are fixed: mmap above 4 MiB — not the 128 KiB of
 * `MALLOC_MMAP_THRESHOLD_=131072`, which makes every 256 KiB–1 MiB buffer a fresh mapping (+32 %
 * server CPU per SET of 1 MiB) — and trim in two steps:
 * - from the start, and again once large values stop moving (trimWhenIdle, after TRIM_IDLE_MS
 *   without their traffic), 128 KiB (IDLE_TRIM_THRESHOLD_BYTES): what the collector frees is given
 *   back as it is freed. After large values, the thread that trims also frees a block of its own
 *   so glibc cuts its arena's top, and malloc_trim gives back the main arena's top and every
 *   arena's free pages;
 * - while values of 256 KiB and more move (whenBusy, on their first traffic), above 64 MiB
 *   (BUSY_TRIM_THRESHOLD_BYTES). V8 frees the young generation's buffers in bursts of ~32 MiB, one
 *   per scavenge; a low threshold gave that memory back at once and the next requests faulted it
 *   in again, page by page: ~140 page faults and a third of the CPU of a GET of 1 MiB read from
 *   SQLite, half of a SET's (docs/benchmarks.md, "Page faults"). Smaller values do not switch it:
 *   with the busy threshold from the start, the 10 GiB scale run of 64 KiB values kept up to
 *   64 MiB of freed memory resident (peak RSS 267–276 MiB against 258 MiB with glibc's own
 *   thresholds; docs/benchmarks.md, "Scale run: malloc's trim threshold").
 *
 * Null where there is no glibc malloc (musl, macOS) or koffi is not installed: memory then stays
 * as malloc keeps it, as before.
 */
export interface GlibcMalloc {
  /** malloc_trim(0): true when memory was given back. */
  trim(): boolean;
  /** mallopt(param, value): true when accepted. */
  option(param: number, value: number): boolean;
  /** malloc(bytes) and free() on the calling thread: a free is when glibc cuts the thread's arena top. */
  churn(bytes: number): void;
}

/** mallopt parameters (glibc's malloc.h). */
export const M_TRIM_THRESHOLD = -1;
export const M_MMAP_THRESHOLD = -3;

/** What tuneMalloc() sets. */
export const MMAP_THRESHOLD_BYTES = 4 * 1024 * 1024;
export const BUSY_TRIM_THRESHOLD_BYTES = 64 * 1024 * 1024;
/** The trim threshold while trimWhenIdle() runs. */
export const IDLE_TRIM_THRESHOLD_BYTES = 128 * 1024;
/** What trimWhenIdle() frees on its own thread: above glibc's 64 KiB, where a free looks at the top. */
const CHURN_BYTES = 256 * 1024;

export async function loadGlibcMalloc(): Promise<GlibcMalloc | null> {
  if (process.platform !== 'linux') return null;
  try {
    const koffi = (await import('koffi')).default;
    const libc = koffi.load('libc.so.6');
    const trim = libc.func('int malloc_trim(size_t pad)');
    const mallopt = libc.func('int mallopt(int param, int value)');
    const malloc = libc.func('void *malloc(size_t size)');
    const free = libc.func('void free(void *ptr)');
    return {
      trim: () => trim(0) === 1,
      option: (param, value) => mallopt(param, value) === 1,
      churn: (bytes) => free(malloc(bytes)),
    };
  } catch {
    return null;
  }
}

/** Whether malloc's parameters were set in the environment the process started with: then they stay as set. */
export function mallocSetByEnvironment(env: NodeJS.ProcessEnv = process.env): boolean {
  return Object.keys(env).some((k) => /^MALLOC_[A-Z_]+_$/.test(k)) || /\bglibc\.malloc\./.test(env.GLIBC_TUNABLES ?? '');
}

/**
 * Fixes malloc's mmap threshold and sets the idle trim threshold (see above; whenBusy() raises it
 * when large values move), unless the environment set malloc's parameters.
 */
export function tuneMalloc(m: GlibcMalloc, env: NodeJS.ProcessEnv = process.env): boolean {
  if (mallocSetByEnvironment(env)) return false;
  return m.option(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) && m.option(M_TRIM_THRESHOLD, IDLE_TRIM_THRESHOLD_BYTES);
}

/**
 * Gives free memory back once values have stopped moving: malloc_trim(0), and with the thresholds
 * tuneMalloc() fixed (`tuned`), the idle trim threshold from now until whenBusy(), and the calling
 * thread's arena top cut under it. True when memory was given back.
 */
export function trimWhenIdle(m: GlibcMalloc, tuned: boolean): boolean {
  if (tuned) {
    m.option(M_TRIM_THRESHOLD, IDLE_TRIM_THRESHOLD_BYTES);
    m.churn(CHURN_BYTES);
  }
  return m.trim();
}

/** Large values move (the first time, or again after trimWhenIdle()): the busy trim threshold. */
export function whenBusy(m: GlibcMalloc, tuned: boolean): void {
  if (tuned) m.option(M_TRIM_THRESHOLD, BUSY_TRIM_THRESHOLD_BYTES);
}
