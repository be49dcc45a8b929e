/**
 * glibc's malloc_trim(0), called through koffi (an optional dependency): returns to the kernel the
 * whole free pages inside every malloc arena, not only the free space at the top of each.
 *
 * Why: a large value passes through the server as thousands of short-lived buffers — 64 KiB socket
 * reads on the event loop, 256 KiB chunks read by the chunk I/O thread — which V8 frees only at its
 * next collection. By then malloc has grown its arenas to hold them, and later allocations above
 * them keep the freed pages resident: measured +31 MiB in the main thread's heap and +18 MiB in the
 * chunk I/O thread's arena 2 s after a 500 MiB SET, GET and DEL, with the JS heap and external
 * memory back at their start (docs/benchmarks.md, "RSS after DEL"). Nothing short of malloc_trim
 * gives back pages in the middle of an arena, and Node.js has no binding for it.
 *
 * Null where there is no such function (musl, macOS) or koffi is not installed: memory then stays
 * as malloc keeps it, as before.
 */
export type MallocTrim = () => boolean;

export async function loadMallocTrim(): Promise<MallocTrim | null> {
  if (process.platform !== 'linux') return null;
  try {
    const koffi = (await import('koffi')).default;
    const trim = koffi.load('libc.so.6').func('int malloc_trim(size_t pad)');
    return () => trim(0) === 1;
  } catch {
    return null;
  }
}
