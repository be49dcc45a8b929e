/**
 * LZF decompression (liblzf's format, as Redis writes LZF-compressed strings in RDB and DUMP
 * payloads). The only npm package for it (lzfjs) is a one-release project without types, and the
 * decoder is twenty lines, so it is ours. Every read and write is bounds-checked: corrupt input
 * gives an LzfError, never a read outside the input or a write past the declared length.
 */

export class LzfError extends Error {}

/**
 * Decompresses `input` into exactly `outLength` bytes; anything else (a short or long result, a
 * back reference before the start) is an LzfError.
 */
export function lzfDecompress(input: Uint8Array, outLength: number): Buffer {
  const out = Buffer.allocUnsafe(outLength);
  const inEnd = input.length;
  let ip = 0;
  let op = 0;
  while (ip < inEnd) {
    const ctrl = input[ip++];
    if (ctrl < 32) {
      // A literal run of ctrl + 1 bytes.
      const len = ctrl + 1;
      if (op + len > outLength) throw new LzfError('LZF output longer than declared');
      if (ip + len > inEnd) throw new LzfError('LZF literal run past the end of the input');
      out.set(input.subarray(ip, ip + len), op);
      ip += len;
      op += len;
    } else {
      // A back reference: length in the top 3 bits (7: one more length byte), offset in 13 bits.
      let len = ctrl >>> 5;
      if (ip >= inEnd) throw new LzfError('LZF back reference cut short');
      if (len === 7) {
        len += input[ip++];
        if (ip >= inEnd) throw new LzfError('LZF back reference cut short');
      }
      const ref = op - ((ctrl & 0x1f) << 8) - 1 - input[ip++];
      len += 2;
      if (op + len > outLength) throw new LzfError('LZF output longer than declared');
      if (ref < 0) throw new LzfError('LZF back reference before the start');
      // Byte by byte: the source may overlap what is being written (a run).
      for (let i = 0; i < len; i++) out[op + i] = out[ref + i];
      op += len;
    }
  }
  if (op !== outLength) throw new LzfError('LZF output shorter than declared');
  return out;
}
