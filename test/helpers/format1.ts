/**
 * Shard files as the releases before schema versions wrote them ("format 1"): the SQL below is a
 * literal copy of what those releases ran at every open, and they never set PRAGMA user_version.
 * Kept here, not imported from src/, so a change to the schema module cannot change what "a file
 * written by the previous release" means in the tests.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';

export const FORMAT1_SQL = `
CREATE TABLE IF NOT EXISTS blobs (
  key        BLOB PRIMARY KEY NOT NULL,
  codec      INTEGER NOT NULL DEFAULT 0,
  size       INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  expires_at INTEGER,
  version    INTEGER NOT NULL DEFAULT 0,
  data       BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS blobs_expires_at ON blobs (expires_at) WHERE expires_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS ns_blobs (
  namespace  BLOB NOT NULL,
  key        BLOB NOT NULL,
  codec      INTEGER NOT NULL DEFAULT 0,
  size       INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  expires_at INTEGER,
  version    INTEGER NOT NULL DEFAULT 0,
  data       BLOB NOT NULL,
  PRIMARY KEY (namespace, key)
);
CREATE INDEX IF NOT EXISTS ns_blobs_expires_at ON ns_blobs (expires_at) WHERE expires_at IS NOT NULL;
`;

/** Opens (creating) a shard file with the previous release's pragmas and tables; user_version stays 0. */
export function openFormat1Shard(path: string): Database.Database {
  const db = new Database(path);
  db.pragma('auto_vacuum = INCREMENTAL');
  db.pragma('journal_mode = WAL');
  db.exec(FORMAT1_SQL);
  return db;
}

/** The previous release's blobasaur.json. */
export function writeFormat1Layout(dataDir: string, numShards: number): void {
  writeFileSync(join(dataDir, 'blobasaur.json'), `${JSON.stringify({ format: 1, num_shards: numShards }, null, 2)}\n`);
}
