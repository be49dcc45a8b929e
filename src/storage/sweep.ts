/**
 * One bounded step of the expiry sweep, shared by the shard (inline, on the event loop) and the
 * maintenance worker (its own connection, off the loop). The caller owns the transaction.
 */
import type { Database, Statement } from 'better-sqlite3';

export interface SweepResult {
  /** Expired rows deleted. */
  rows: number;
  /** A table gave the full limit: more are probably waiting. */
  full: boolean;
}

/** Free pages handed back to the file system per step (256 KiB of 4 KiB pages). */
export const SWEEP_VACUUM_PAGES = 64;

export class SweepStep {
  private readonly plain: Statement<[number, number]>;
  private readonly nested: Statement<[number, number]>;

  constructor(private readonly db: Database) {
    // The partial indexes on expires_at make each step a short range scan, not a table scan.
    this.plain = db.prepare(
      'DELETE FROM blobs WHERE rowid IN (SELECT rowid FROM blobs WHERE expires_at IS NOT NULL AND expires_at <= ? LIMIT ?)',
    );
    this.nested = db.prepare(
      'DELETE FROM ns_blobs WHERE rowid IN (SELECT rowid FROM ns_blobs WHERE expires_at IS NOT NULL AND expires_at <= ? LIMIT ?)',
    );
  }

  /** Deletes up to `limit` rows per table expired at `now`, then returns pages in step with them. */
  run(now: number, limit: number): SweepResult {
    const plain = this.plain.run(now, limit).changes;
    const nested = this.nested.run(now, limit).changes;
    // Pages go back a bounded amount per step, so a mass expiry shrinks the files without one long stall.
    // Not a prepared statement's run(): that steps the pragma once, which frees a single page.
    if (plain + nested > 0) this.db.pragma(`incremental_vacuum(${SWEEP_VACUUM_PAGES})`);
    return { rows: plain + nested, full: plain === limit || nested === limit };
  }
}
