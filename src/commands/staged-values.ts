/**
 * Which arguments may arrive as a staged value (storage/blob-stager.ts): a large bulk written to
 * a chunk file while it is read, which the command receives as a marker in place of its bytes.
 * Only arguments whose handler passes them to Keyspace.set() and to nothing else are listed here:
 * any other command would see the marker, an empty string.
 */

/**
 * The key (a hash's field) that bulk number `args.length` will be stored under, when it is the
 * value argument of SET, SETNX, SETEX, PSETEX, HSET, HMSET or HSETNX; otherwise null. The stager
 * writes its chunks in that key's shard.
 */
export function stagedValueKey(args: readonly Buffer[]): Buffer | null {
  const i = args.length;
  if (i < 2) return null;
  switch (args[0].toString('latin1').toLowerCase()) {
    case 'set':
    case 'setnx':
      return i === 2 ? args[1] : null;
    case 'setex':
    case 'psetex':
      return i === 3 ? args[1] : null;
    case 'hset':
    case 'hmset':
      return i >= 3 && i % 2 === 1 ? args[i - 1] : null;
    case 'hsetnx':
      return i === 3 ? args[2] : null;
    default:
      return null;
  }
}
