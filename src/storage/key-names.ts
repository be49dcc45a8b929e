/** Keys as error messages and logs show them. */

/** A key as an error message can show it: printable ASCII kept, the rest escaped, long keys cut. */
export function printable(key: Buffer): string {
  let s = '';
  for (const c of key.subarray(0, 128)) {
    s += c >= 0x20 && c < 0x7f && c !== 0x27 && c !== 0x5c ? String.fromCharCode(c) : `\\x${c.toString(16).padStart(2, '0')}`;
  }
  return key.length > 128 ? `${s}…` : s;
}

/** How an error names a stored value: a plain key, or a field of a namespace. */
export function describeKey(ns: Buffer | null, key: Buffer): string {
  return ns === null ? `key '${printable(key)}'` : `field '${printable(key)}' of '${printable(ns)}'`;
}
