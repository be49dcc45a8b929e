/**
 * SCAN and HSCAN cursors. A position is a shard and the last key returned, which no 64-bit number
 * can hold, while clients parse cursors as integers (redis-py, go-redis). So the position stays
 * here and the client gets a number naming it.
 *
 * The number is random (63 bits, so it fits a signed 64-bit integer as clients parse it), not a
 * counter: another connection cannot continue or replace a client's scan by guessing its cursor,
 * while clients that spread one scan over a connection pool keep working. Cursors are bounded in
 * count and in bytes (a position holds a key name, and names can be megabytes): past either bound
 * the oldest are forgotten, and a forgotten or unknown cursor answers `ERR invalid cursor`.
 */
import { randomBytes } from 'node:crypto';

export const MAX_CURSORS = 10_000;
/** Bytes of key names held by all cursors of one registry together. */
export const MAX_CURSOR_BYTES = 64 * 1024 * 1024;
/** What a cursor costs besides its key name (map entry, id string, position object). */
const CURSOR_OVERHEAD = 128;

/** A scan position: it holds the last name returned, whose bytes count toward the budget. */
export interface CursorPosition {
  readonly after: Buffer | null;
}

const MASK_63 = (1n << 63n) - 1n;

/** A random cursor in 1 … 2^63-1, in decimal. */
function randomCursor(): string {
  for (;;) {
    const n = randomBytes(8).readBigUInt64BE() & MASK_63;
    if (n !== 0n) return n.toString();
  }
}

export class CursorRegistry<T extends CursorPosition> {
  /** In insertion order, so the first entry is the oldest. */
  private readonly positions = new Map<string, { position: T; cost: number }>();
  private bytes = 0;

  constructor(
    private readonly maxCursors = MAX_CURSORS,
    private readonly maxBytes = MAX_CURSOR_BYTES,
  ) {}

  /** Cursors held now and the bytes they cost, for tests and INFO-style reporting. */
  get size(): { cursors: number; bytes: number } {
    return { cursors: this.positions.size, bytes: this.bytes };
  }

  /** Registers where a scan stands and returns the cursor to hand out ("0" when it is over). */
  save(position: T | null): string {
    if (position === null) return '0';
    let id = randomCursor();
    while (this.positions.has(id)) id = randomCursor();
    const after = position.after;
    // A name sliced out of a larger buffer (a socket read) would keep all of that buffer alive.
    // (Not Buffer.from: small copies would land in Node's shared 8 KiB pool slabs.)
    if (after !== null && after.buffer.byteLength > after.length) {
      const copy = Buffer.allocUnsafeSlow(after.length);
      after.copy(copy);
      position = { ...position, after: copy };
    }
    const cost = (position.after?.length ?? 0) + CURSOR_OVERHEAD;
    this.positions.set(id, { position, cost });
    this.bytes += cost;
    // The newest cursor is kept even when it alone is over the byte budget: the scan must go on.
    while (this.positions.size > 1 && (this.positions.size > this.maxCursors || this.bytes > this.maxBytes)) {
      const [oldest, entry] = this.positions.entries().next().value!;
      this.positions.delete(oldest);
      this.bytes -= entry.cost;
    }
    return id;
  }

  /**
   * The position a cursor names, `start` for "0", undefined for an unknown cursor. A cursor can be
   * used again (a client retrying a step), as Redis' can, until it is forgotten.
   */
  load(cursor: string, start: T): T | undefined {
    if (cursor === '0') return start;
    return this.positions.get(cursor)?.position;
  }
}
