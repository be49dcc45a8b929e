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

  /** `delta` +1: the namespace appeared in one more shard; -1: it left one. */
  add(ns: Buffer, delta: number): void {
    const id = ns.toString('latin1');
    const n = (this.shardsHolding.get(id) ?? 0) + delta;
    if (n > 0) this.shardsHolding.set(id, n);
    else this.shardsHolding.delete(id);
  }

  /** Namespaces present in at least one shard. */
  get size(): number {
    return this.shardsHolding.size;
  }
}
