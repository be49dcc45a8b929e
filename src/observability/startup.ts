/** What the server logs and checks at start-up, beyond the config file itself. */
import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { LayoutError } from '../storage/layout.js';
import type { Store } from '../storage/store.js';
import { MIGRATE_STATE_FILE } from '../tools/migrate.js';

/** Keys whose values are secrets: logged as "***" (only whether they are set shows). */
const SECRET_KEYS = new Set(['requirepass', 'masterauth', 'password', 'tls_key_password', 'secret']);

/** The config with secret values replaced, for the start-up log. */
export function maskSecrets(value: unknown, key = ''): unknown {
  if (SECRET_KEYS.has(key) && value !== undefined && value !== null) return '***';
  if (Array.isArray(value)) return value.map((v) => maskSecrets(v));
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, maskSecrets(v, k)]));
  }
  return value;
}

/** A half-done `blobasaur migrate` leaves keys on shards the old count does not look at. */
export function refuseMidMigration(dataDir: string): void {
  const state = join(resolve(dataDir), MIGRATE_STATE_FILE);
  if (existsSync(state)) {
    throw new LayoutError(
      `${state} exists: a shard migration of this directory was interrupted. ` +
        'Run the same `blobasaur migrate` command again to finish it before starting the server.',
    );
  }
}

/** The data layout as the start-up log shows it: each shard file and its size. */
export function dataLayout(store: Store): { shards: number; files: { file: string; bytes: number }[] } {
  return {
    shards: store.numShards,
    files: store.stats().shards.map(({ path }) => ({ file: path, bytes: existsSync(path) ? statSync(path).size : 0 })),
  };
}
