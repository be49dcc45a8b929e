/**
 * The keyspace as commands see it inside a script: committed values decode on the event loop (a
 * redis.call must answer within the script's turn), and writes hand their acks to the script run
 * instead of returning them, so a write command's reply is ready at once. The writes are visible
 * to the script's next command immediately (the overlay); the script's reply waits for the acks.
 */
import type { Ack, Keyspace } from '../storage/keyspace.js';

export function scriptKeyspace(ks: Keyspace, collect: (ack: Ack) => void): Keyspace {
  const view = ks.withSyncDecode();
  const base = Object.getPrototypeOf(view) as Keyspace;
  const take = (ack: Ack): undefined => {
    if (ack !== undefined) collect(ack);
    return undefined;
  };
  const overrides: Partial<Keyspace> = {
    set: (...a) => take(base.set.apply(view, a)),
    setExpiry: (...a) => take(base.setExpiry.apply(view, a)),
    deleteNamespace: (...a) => take(base.deleteNamespace.apply(view, a)),
    flushAll: (...a) => take(base.flushAll.apply(view, a)),
    copy: (...a) => {
      const ack = base.copy.apply(view, a);
      return ack === null ? null : take(ack);
    },
    delete: (...a) => {
      const r = base.delete.apply(view, a);
      return { removed: r.removed, ack: take(r.ack) };
    },
    update: (...a) => {
      const r = base.update.apply(view, a);
      return { value: r.value, ack: take(r.ack) };
    },
    rename: (...a) => {
      const r = base.rename.apply(view, a);
      return r.done ? { done: true, ack: take(r.ack) } : r;
    },
  };
  return Object.assign(Object.create(view) as Keyspace, overrides);
}
