/**
 * Read-modify-write that may refuse: counters and SETBIT decide from the current value whether
 * to write and what to answer (INCR on "abc" answers an error and writes nothing). The key (or
 * namespace field) keeps its TTL, as in Redis.
 */
import { ErrorReply, type Reply } from '../protocol/reply.js';
import type { ExpiryPolicy, Keyspace } from '../storage/keyspace.js';
import { afterAck } from './types.js';

/** What a step decides from the current value (null: absent). */
export type Step =
  | { readonly write: Buffer; readonly reply: Reply }
  | { readonly reply: Reply }
  | ErrorReply;

export function modify(
  ks: Keyspace,
  ns: Buffer | null,
  key: Buffer,
  now: number,
  step: (current: Buffer | null) => Step,
): Reply | Promise<Reply> {
  const found = ks.lookup(ns, key, now);
  const current = found?.value ?? null;
  if (!(current instanceof Promise)) {
    const out = step(current);
    if (out instanceof ErrorReply) return out;
    if (!('write' in out)) return out.reply;
    const policy: ExpiryPolicy = found !== null && found.expiresAt !== null ? { at: found.expiresAt } : 'clear';
    return afterAck(ks.set(ns, key, out.write, policy, now), out.reply);
  }
  // The value is still decoding (only large values are): the decision waits for it, but the write
  // must be queued now to keep command order. A refusal writes the same bytes back, which no
  // reader can tell from no write (the value and TTL are unchanged).
  let decided: Step | undefined;
  const { value, ack } = ks.update(
    ns,
    key,
    now,
    (cur) => {
      decided = step(cur);
      return decided instanceof ErrorReply || !('write' in decided) ? (cur ?? Buffer.alloc(0)) : decided.write;
    },
    'keep',
  );
  return Promise.all([value, ack]).then(() => (decided instanceof ErrorReply ? decided : decided!.reply));
}
