/**
 * The pending-write overlay: what writes that executed but have not committed yet did to each key.
 * Reads consult it before SQLite so every read sees every write executed before it, in sync and
 * async mode alike. A pending delete is a tombstone (value null) that hides the committed row; a
 * pending namespace delete hides every committed field of that namespace; a pending FLUSH hides
 * every committed row of the shard.
 *
 * A value may be a promise: a read-modify-write (APPEND, RENAME of a compressed value) whose input
 * is still being decoded off-thread. Reads then answer with the promise; order is kept because
 * the entry is in place before the next command runs.
 */

export type PendingValue = Buffer | Promise<Buffer>;

/**
 * A value that lives in a shard's chunk file (chunks.ts): which shard, which blob, its size and
 * stored bytes. A blob never changes, so the reference stands for the same bytes as long as
 * someone holds it; commands never see it (the keyspace turns it into bytes or a ValueHandle).
 */
export class BlobRef {
  constructor(
    readonly shard: number,
    readonly id: number,
    readonly size: number,
    readonly stored: number,
  ) {}
}

/** What a pending write holds: bytes (maybe still being computed) or a blob in a chunk file. */
export type HeldValue = PendingValue | BlobRef;

/** The value of an entry whose pending write changes only the expiry: read the committed row. */
export const KEEP = Symbol('keep-committed-value');

export interface OverlayEntry {
  readonly key: Buffer;
  /** The logical (uncompressed) value, null for a pending delete, KEEP for an expiry change. */
  readonly value: HeldValue | null | typeof KEEP;
  readonly expiresAt: number | null;
  /** Sequence number of the newest write that produced this entry. */
  readonly seq: number;
  /**
   * Set once a read got this entry: its value may be held past the read (a reply still being
   * written), so the write's receive buffer is not reused after the commit (value-buffers.ts).
   */
  lent: boolean;
}

const HIDDEN: OverlayEntry = Object.freeze({ key: Buffer.alloc(0), value: null, expiresAt: null, seq: -1, lent: true });

export class Overlay {
  private readonly plain = new Map<string, OverlayEntry>();
  /** Namespace → field → entry, so one namespace's pending fields can be listed. */
  private readonly nested = new Map<string, Map<string, OverlayEntry>>();
  private nestedCount = 0;
  /** Namespace → sequence number of a pending delete of the whole namespace. */
  private readonly nsBarriers = new Map<string, number>();
  /** Sequence number of a pending flush, or -1. */
  private barrier = -1;

  get size(): number {
    return this.plain.size + this.nestedCount;
  }

  /** True when nothing is pending at all: reads can skip the overlay entirely. */
  get empty(): boolean {
    return this.plain.size === 0 && this.nestedCount === 0 && this.nsBarriers.size === 0 && this.barrier < 0;
  }

  /**
   * What pending writes say about a key: an entry (maybe a tombstone), or undefined when the
   * committed row is still the truth. An entry past its expiry reads as a tombstone.
   */
  lookup(ns: Buffer | null, key: Buffer, now: number): OverlayEntry | undefined {
    if (this.empty) return undefined;
    let entry: OverlayEntry | undefined;
    if (ns === null) {
      entry = this.plain.size > 0 ? this.plain.get(key.toString('latin1')) : undefined;
    } else {
      const nsId = ns.toString('latin1');
      entry = this.nested.get(nsId)?.get(key.toString('latin1'));
      if (entry === undefined && this.nsBarriers.has(nsId)) return HIDDEN;
    }
    if (entry !== undefined) {
      if (expired(entry, now)) return HIDDEN;
      entry.lent = true;
      return entry;
    }
    return this.barrier >= 0 ? HIDDEN : undefined;
  }

  /** Whether committed rows of this namespace (or of the whole shard) are hidden by a pending delete. */
  hidesCommitted(ns: Buffer | null): boolean {
    if (this.barrier >= 0) return true;
    return ns !== null && this.nsBarriers.has(ns.toString('latin1'));
  }

  /** Pending entries (live or tombstones) of one namespace, or of the plain key space. */
  pending(ns: Buffer | null): Iterable<OverlayEntry> {
    const entries = ns === null ? this.plain : this.nested.get(ns.toString('latin1'));
    return entries === undefined || entries.size === 0 ? [] : lend(entries.values());
  }

  /** Namespaces with pending field writes, as buffers. */
  *pendingNamespaces(): Iterable<Buffer> {
    for (const id of this.nested.keys()) yield Buffer.from(id, 'latin1');
  }

  /** Records a pending set (value) or delete (null). */
  put(ns: Buffer | null, key: Buffer, value: HeldValue | null | typeof KEEP, expiresAt: number | null, seq: number): OverlayEntry {
    const entry: OverlayEntry = { key, value, expiresAt, seq, lent: false };
    if (ns === null) {
      this.plain.set(key.toString('latin1'), entry);
      return entry;
    }
    const nsId = ns.toString('latin1');
    let fields = this.nested.get(nsId);
    if (fields === undefined) {
      fields = new Map();
      this.nested.set(nsId, fields);
    }
    const before = fields.size;
    fields.set(key.toString('latin1'), entry);
    this.nestedCount += fields.size - before;
    return entry;
  }

  /** Records a pending delete of a whole namespace: its committed and pending fields are gone. */
  putNamespaceBarrier(ns: Buffer, seq: number): void {
    const nsId = ns.toString('latin1');
    const fields = this.nested.get(nsId);
    if (fields !== undefined) {
      this.nestedCount -= fields.size;
      this.nested.delete(nsId);
    }
    this.nsBarriers.set(nsId, seq);
  }

  /** Records a pending flush: everything committed or pending before it is gone. */
  putBarrier(seq: number): void {
    this.plain.clear();
    this.nested.clear();
    this.nsBarriers.clear();
    this.nestedCount = 0;
    this.barrier = seq;
  }

  /**
   * Forgets the write `seq` once it has committed or failed, unless a newer write replaced it (or a
   * pending namespace delete or flush took it away). Returns whether it was still the key's entry:
   * then nothing newer is pending for the key.
   */
  release(ns: Buffer | null, key: Buffer, seq: number): boolean {
    const id = key.toString('latin1');
    if (ns === null) {
      if (this.plain.get(id)?.seq !== seq) return false;
      this.plain.delete(id);
      return true;
    }
    const nsId = ns.toString('latin1');
    const fields = this.nested.get(nsId);
    if (fields?.get(id)?.seq !== seq) return false;
    fields.delete(id);
    this.nestedCount--;
    if (fields.size === 0) this.nested.delete(nsId);
    return true;
  }

  releaseNamespaceBarrier(ns: Buffer, seq: number): void {
    const nsId = ns.toString('latin1');
    if (this.nsBarriers.get(nsId) === seq) this.nsBarriers.delete(nsId);
  }

  releaseBarrier(seq: number): void {
    if (this.barrier === seq) this.barrier = -1;
  }
}

export function expired(entry: { expiresAt: number | null }, now: number): boolean {
  return entry.expiresAt !== null && entry.expiresAt <= now;
}

/** The entries as a read gets them: each marked lent as it is handed out. */
function* lend(entries: Iterable<OverlayEntry>): Iterable<OverlayEntry> {
  for (const entry of entries) {
    entry.lent = true;
    yield entry;
  }
}
