/**
 * How many distinct namespaces hold at least one field, over all shards: DBSIZE counts a namespace
 * once (as Redis counts a hash), but its fields are spread over the shards by field name, so the
 * per-shard counts kept in SQLite (`ns_counts`, one row per namespace present in that shard) cannot
 * simply be summed.
 *
 * The tally keeps, per namespace, the number of shards where it is present. It is derived, never
 * stored: each shard loads its `ns_counts` names when it opens (O(namespaces) once, at start), and
 * after each commit hands over the `ns_changes` rows its triggers wrote when a namespace appeared
 * in or vanished from that shard (rare: only the first field in, the last field out). The truth
 * stays in SQLite, exact across crashes; the tally is rebuilt from it at every start.
 */
export class NamespaceTally {
  private readonly shardsHolding = new Map<string, number>();
  /** The namespaces each shard holds: a flushed shard lets go of all of its own at once. */
  private readonly byShard = new Map<number, Set<string>>();

  /** `delta` +1: the namespace appeared in shard `shard`; -1: it left it. */
  add(ns: Buffer, delta: number, shard: number): void {
    const id = ns.toString('latin1');
    let held = this.byShard.get(shard);
    if (held === undefined) this.byShard.set(shard, (held = new Set()));
    if (delta > 0) held.add(id);
    else held.delete(id);
    const n = (this.shardsHolding.get(id) ?? 0) + delta;
    if (n > 0) this.shardsHolding.set(id, n);
    else this.shardsHolding.delete(id);
  }

  /**
   * Shard `shard` was flushed: every namespace it held left it. In memory, O(namespaces of the
   * shard): the flush itself does not touch its ns_counts rows one by one (shard.ts flush()).
   */
  dropShard(shard: number): void {
    const held = this.byShard.get(shard);
    if (held === undefined) return;
    this.byShard.delete(shard);
    for (const id of held) {
      const n = (this.shardsHolding.get(id) ?? 0) - 1;
      if (n > 0) this.shardsHolding.set(id, n);
      else this.shardsHolding.delete(id);
    }
  }

  /** Namespaces present in at least one shard. */
  get size(): number {
    return this.shardsHolding.size;
  }
}
