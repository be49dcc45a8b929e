/**
 * SCAN and HSCAN cursors. A position is a shard and the last key returned, which no 64-bit number
 * can hold, while clients parse cursors as integers (redis-py, go-redis). So the position stays
 * here and the client gets a number naming it. Cursors are bounded: the oldest are forgotten past
 * MAX_CURSORS, and a forgotten or foreign cursor answers `ERR invalid cursor`.
 */
const MAX_CURSORS = 10_000;

export class CursorRegistry<T> {
  private readonly positions = new Map<string, T>();
  private next = 1;

  /** Registers where a scan stands and returns the cursor to hand out ("0" when it is over). */
  save(position: T | null): string {
    if (position === null) return '0';
    const id = String(this.next++);
    this.positions.set(id, position);
    if (this.positions.size > MAX_CURSORS) this.positions.delete(this.positions.keys().next().value!);
    return id;
  }

  /** The position a cursor names, `start` for "0", undefined for an unknown cursor. */
  load(cursor: string, start: T): T | undefined {
    if (cursor === '0') return start;
    return this.positions.get(cursor);
  }
}
