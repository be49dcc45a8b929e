/** ShardWrite records for unit tests that drive a Shard directly (no write queue, no codec). */
import type { ShardWrite } from '../../src/storage/shard.js';

/** A raw (codec 0) SET of `value` to `key`, in namespace `ns` or among the plain keys (null). */
export function shardSet(ns: string | null, key: string, value: string, now = Date.now()): ShardWrite {
  return {
    kind: 'set',
    ns: ns === null ? null : Buffer.from(ns),
    key: Buffer.from(key),
    data: Buffer.from(value),
    codec: 0,
    size: Buffer.byteLength(value),
    now,
    expiresAt: null,
  };
}
