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
 * of four). Fixing the thresholds — mmap above 4 MiB, trim above 128 KiB — keeps arena tops short.
 * Not the 128 KiB mmap threshold of `MALLOC_MMAP_THRESHOLD_=131072`: every 256 KiB–1 MiB buffer
 * would then be a fresh mapping, measured +32 % server CPU per SET of 1 MiB.
 *
 * Null where there is no glibc malloc (musl, macOS) or koffi is not installed: memory then stays
 * as malloc keeps it, as before.
 */
export interface GlibcMalloc {
  /** malloc_trim(0): true when memory was given back. */
  trim(): boolean;
  /** mallopt(param, value): true when accepted. */
  option(param: number, value: number): boolean;
}

/** mallopt parameters (glibc's malloc.h). */
export const M_TRIM_THRESHOLD = -1;
export const M_MMAP_THRESHOLD = -3;

/** What tuneMalloc() sets. */
export const MMAP_THRESHOLD_BYTES = 4 * 1024 * 1024;
export const TRIM_THRESHOLD_BYTES = 128 * 1024;

export async function loadGlibcMalloc(): Promise<GlibcMalloc | null> {
  if (process.platform !== 'linux') return null;
  try {
    const koffi = (await import('koffi')).default;
    const libc = koffi.load('libc.so.6');
    const trim = libc.func('int malloc_trim(size_t pad)');
    const mallopt = libc.func('int mallopt(int param, int value)');
    return { trim: () => trim(0) === 1, option: (param, value) => mallopt(param, value) === 1 };
  } catch {
    return null;
  }
}

/** Whether malloc's parameters were set in the environment the process started with: then they stay as set. */
export function mallocSetByEnvironment(env: NodeJS.ProcessEnv = process.env): boolean {
  return Object.keys(env).some((k) => /^MALLOC_[A-Z_]+_$/.test(k)) || /\bglibc\.malloc\./.test(env.GLIBC_TUNABLES ?? '');
}

/** Fixes malloc's mmap and trim thresholds (see above), unless the environment set malloc's parameters. */
export function tuneMalloc(m: GlibcMalloc, env: NodeJS.ProcessEnv = process.env): boolean {
  if (mallocSetByEnvironment(env)) return false;
  return m.option(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) && m.option(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES);
}
