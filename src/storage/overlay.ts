/**
 * The pending-write overlay: what writes that executed but have not committed yet did to each key.
 * Reads consult it before SQLite so every read sees every write executed before it, in sync and
 * async mode alike. A pending delete is a tombstone (value null) that hides the committed row, and
 * a pending FLUSH is a barrier that hides every committed row of the shard.
 */

export interface OverlayEntry {
  /** The logical (uncompressed) value, or null for a pending delete. */
  value: Buffer | null;
  expiresAt: number | null;
  /** Sequence number of the newest write that produced this entry. */
  seq: number;
}

const HIDDEN: OverlayEntry = Object.freeze({ value: null, expiresAt: null, seq: -1 });

export class Overlay {
  private readonly plain = new Map<string, OverlayEntry>();
  private readonly nested = new Map<string, OverlayEntry>();
  /** Sequence number of a pending flush, or -1. */
  private barrier = -1;

  get size(): number {
    return this.plain.size + this.nested.size;
  }

  /**
   * What pending writes say about a key: an entry (maybe a tombstone), or undefined when the
   * committed row is still the truth. An entry past its expiry reads as a tombstone.
   */
  lookup(ns: Buffer | null, key: Buffer, now: number): OverlayEntry | undefined {
    if (this.plain.size + this.nested.size > 0) {
      const entry = ns === null ? this.plain.get(key.toString('latin1')) : this.nested.get(nestedId(ns, key));
      if (entry !== undefined) {
        return entry.expiresAt !== null && entry.expiresAt <= now ? HIDDEN : entry;
      }
    }
    return this.barrier >= 0 ? HIDDEN : undefined;
  }

  /** Records a pending set (value) or delete (null). */
  put(ns: Buffer | null, key: Buffer, value: Buffer | null, expiresAt: number | null, seq: number): void {
    const entry: OverlayEntry = { value, expiresAt, seq };
    if (ns === null) this.plain.set(key.toString('latin1'), entry);
    else this.nested.set(nestedId(ns, key), entry);
  }

  /** Records a pending flush: everything committed or pending before it is gone. */
  putBarrier(seq: number): void {
    this.plain.clear();
    this.nested.clear();
    this.barrier = seq;
  }

  /** Forgets the write `seq` once it has committed or failed, unless a newer write replaced it. */
  release(ns: Buffer | null, key: Buffer, seq: number): void {
    const map = ns === null ? this.plain : this.nested;
    const id = ns === null ? key.toString('latin1') : nestedId(ns, key);
    if (map.get(id)?.seq === seq) map.delete(id);
  }

  releaseBarrier(seq: number): void {
    if (this.barrier === seq) this.barrier = -1;
  }
}

/** A collision-free map key for (namespace, key): the namespace length keeps the boundary. */
function nestedId(ns: Buffer, key: Buffer): string {
  return `${ns.length}:${ns.toString('latin1')}${key.toString('latin1')}`;
}
