/**
 * What a shard file holds, kept as data: an ordered list of migrations, and the name of each file.
 *
 * A shard file records the last migration applied to it in `PRAGMA user_version`. Opening a file
 * applies the migrations it lacks, each in its own transaction that also sets user_version, so a
 * failure leaves the file at the version before that step. Files written before versions were
 * recorded (user_version 0, the tables of migration 1 present) are that schema: migration 1 only
 * creates what is missing, and the file is stamped 1. A file stamped with a version this build does
 * not know is refused: its tables may mean something this code would misread or overwrite.
 *
 * To change the schema, append a migration; never edit one that has shipped (files already carry
 * its number).
 */
import { join } from 'node:path';
import Database from 'better-sqlite3';
import calculateSlot from 'cluster-key-slot';

export interface Migration {
  /** 1, 2, 3… in order: the user_version a file has once this step is applied. */
  version: number;
  description: string;
  /** Runs inside the step's transaction. */
  up: string | ((db: Database.Database) => void);
}

export class SchemaError extends Error {}

/**
 * Plain blobs and namespaced blobs each have one rowid table (DESIGN.md: rowid tables are faster
 * than WITHOUT ROWID for large rows, and a table per namespace costs milliseconds and disk per
 * namespace). Times are epoch milliseconds. Small columns come before `data`: a large value spills
 * into overflow pages, and a column stored after it could only be read by walking that chain.
 */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'blobs and ns_blobs with their expiry indexes',
    // IF NOT EXISTS: files from before user_version already have these and are stamped, not rebuilt.
    up: `
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
`,
  },
  {
    version: 2,
    description: 'counts and byte sums kept by triggers (stats, ns_counts, ns_changes)',
    // The sums are computed once here from the rows a format 1 file holds (one scan of the record
    // headers: length(data) does not read the values); from then on every write keeps them in the
    // same transaction, through triggers, whoever writes (server, maintenance thread, tools).
    up: `
CREATE TABLE stats (
  id      INTEGER PRIMARY KEY CHECK (id = 0),
  keys    INTEGER NOT NULL,
  expires INTEGER NOT NULL,
  fields  INTEGER NOT NULL,
  logical INTEGER NOT NULL,
  stored  INTEGER NOT NULL
);
INSERT INTO stats (id, keys, expires, fields, logical, stored) SELECT 0,
  (SELECT count(*) FROM blobs),
  (SELECT count(*) FROM blobs WHERE expires_at IS NOT NULL),
  (SELECT count(*) FROM ns_blobs),
  (SELECT coalesce(sum(size), 0) FROM blobs) + (SELECT coalesce(sum(size), 0) FROM ns_blobs),
  (SELECT coalesce(sum(length(data)), 0) FROM blobs) + (SELECT coalesce(sum(length(data)), 0) FROM ns_blobs);
CREATE TABLE ns_counts (
  namespace BLOB PRIMARY KEY NOT NULL,
  fields    INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO ns_counts (namespace, fields) SELECT namespace, count(*) FROM ns_blobs GROUP BY namespace;
CREATE TABLE ns_changes (
  namespace BLOB NOT NULL,
  delta     INTEGER NOT NULL
);
CREATE TRIGGER blobs_count_insert AFTER INSERT ON blobs BEGIN
  UPDATE stats SET keys = keys + 1, expires = expires + (NEW.expires_at IS NOT NULL),
    logical = logical + NEW.size, stored = stored + length(NEW.data);
END;
CREATE TRIGGER blobs_count_delete AFTER DELETE ON blobs BEGIN
  UPDATE stats SET keys = keys - 1, expires = expires - (OLD.expires_at IS NOT NULL),
    logical = logical - OLD.size, stored = stored - length(OLD.data);
END;
CREATE TRIGGER blobs_count_update AFTER UPDATE ON blobs BEGIN
  UPDATE stats SET expires = expires - (OLD.expires_at IS NOT NULL) + (NEW.expires_at IS NOT NULL),
    logical = logical - OLD.size + NEW.size, stored = stored - length(OLD.data) + length(NEW.data);
END;
CREATE TRIGGER ns_blobs_count_insert AFTER INSERT ON ns_blobs BEGIN
  UPDATE stats SET fields = fields + 1, logical = logical + NEW.size, stored = stored + length(NEW.data);
  INSERT INTO ns_counts (namespace, fields) VALUES (NEW.namespace, 1)
    ON CONFLICT (namespace) DO UPDATE SET fields = fields + 1;
END;
CREATE TRIGGER ns_blobs_count_delete AFTER DELETE ON ns_blobs BEGIN
  UPDATE stats SET fields = fields - 1, logical = logical - OLD.size, stored = stored - length(OLD.data);
  UPDATE ns_counts SET fields = fields - 1 WHERE namespace = OLD.namespace;
  DELETE FROM ns_counts WHERE namespace = OLD.namespace AND fields <= 0;
END;
CREATE TRIGGER ns_blobs_count_update AFTER UPDATE ON ns_blobs BEGIN
  UPDATE stats SET logical = logical - OLD.size + NEW.size, stored = stored - length(OLD.data) + length(NEW.data);
END;
CREATE TRIGGER ns_counts_appear AFTER INSERT ON ns_counts BEGIN
  INSERT INTO ns_changes (namespace, delta) VALUES (NEW.namespace, 1);
END;
CREATE TRIGGER ns_counts_vanish AFTER DELETE ON ns_counts BEGIN
  INSERT INTO ns_changes (namespace, delta) VALUES (OLD.namespace, -1);
END;
`,
  },
  {
    version: 3,
    description: 'a checksum column for every stored value (checksum.ts; null for rows written before it)',
    // ADD COLUMN rewrites nothing, so it runs in constant time on any file. The column lands after
    // `data`, which costs nothing: every read of the checksum reads the value anyway.
    up: `
ALTER TABLE blobs ADD COLUMN checksum INTEGER;
ALTER TABLE ns_blobs ADD COLUMN checksum INTEGER;
`,
  },
  {
    version: 4,
    description: 'hash slot of every key, namespace and field, indexed (CLUSTER GETKEYSINSLOT)',
    // Generated columns, computed by SLOT_FUNCTION (cluster-key-slot, as clients compute it) on
    // every insert by whoever writes: the server, the maintenance thread, a replica loading a
    // copy, the tools. VIRTUAL because ALTER TABLE cannot add a STORED column; the indexes store
    // the value, so a lookup by slot never calls the function. Computed here, at open, for every
    // existing row (docs/cluster.md gives the time per million keys).
    up: `
ALTER TABLE blobs ADD COLUMN slot INTEGER GENERATED ALWAYS AS (blobasaur_key_slot(key)) VIRTUAL;
CREATE INDEX blobs_slot ON blobs (slot);
ALTER TABLE ns_blobs ADD COLUMN slot INTEGER GENERATED ALWAYS AS (blobasaur_key_slot(key)) VIRTUAL;
CREATE INDEX ns_blobs_slot ON ns_blobs (slot);
ALTER TABLE ns_counts ADD COLUMN slot INTEGER GENERATED ALWAYS AS (blobasaur_key_slot(namespace)) VIRTUAL;
CREATE INDEX ns_counts_slot ON ns_counts (slot);
`,
  },
  {
    version: 5,
    description: 'large values in a chunk file: blob_id and blob_stored columns, dead_blobs, counts of chunked rows',
    // A value above the chunking threshold keeps its row here (codec CHUNKED_CODEC, data empty) and
    // its bytes in shard-N.chunks.db under `blob_id`. A blob no row references any more is recorded
    // in dead_blobs, in the transaction that let go of it, whoever wrote (server, sweeper thread,
    // tools); the server reclaims its chunks in the background and then forgets the id. Several
    // rows may share a blob (COPY): a blob dies with its last row.
    up: `
ALTER TABLE blobs ADD COLUMN blob_id INTEGER;
ALTER TABLE blobs ADD COLUMN blob_stored INTEGER;
ALTER TABLE ns_blobs ADD COLUMN blob_id INTEGER;
ALTER TABLE ns_blobs ADD COLUMN blob_stored INTEGER;
CREATE INDEX blobs_blob_id ON blobs (blob_id) WHERE blob_id IS NOT NULL;
CREATE INDEX ns_blobs_blob_id ON ns_blobs (blob_id) WHERE blob_id IS NOT NULL;
CREATE TABLE dead_blobs (blob_id INTEGER PRIMARY KEY);
DROP TRIGGER blobs_count_insert;
DROP TRIGGER blobs_count_delete;
DROP TRIGGER blobs_count_update;
DROP TRIGGER ns_blobs_count_insert;
DROP TRIGGER ns_blobs_count_delete;
DROP TRIGGER ns_blobs_count_update;
CREATE TRIGGER blobs_count_insert AFTER INSERT ON blobs BEGIN
  UPDATE stats SET keys = keys + 1, expires = expires + (NEW.expires_at IS NOT NULL),
    logical = logical + NEW.size, stored = stored + coalesce(NEW.blob_stored, length(NEW.data));
END;
CREATE TRIGGER blobs_count_delete AFTER DELETE ON blobs BEGIN
  UPDATE stats SET keys = keys - 1, expires = expires - (OLD.expires_at IS NOT NULL),
    logical = logical - OLD.size, stored = stored - coalesce(OLD.blob_stored, length(OLD.data));
END;
CREATE TRIGGER blobs_count_update AFTER UPDATE ON blobs BEGIN
  UPDATE stats SET expires = expires - (OLD.expires_at IS NOT NULL) + (NEW.expires_at IS NOT NULL),
    logical = logical - OLD.size + NEW.size,
    stored = stored - coalesce(OLD.blob_stored, length(OLD.data)) + coalesce(NEW.blob_stored, length(NEW.data));
END;
CREATE TRIGGER ns_blobs_count_insert AFTER INSERT ON ns_blobs BEGIN
  UPDATE stats SET fields = fields + 1, logical = logical + NEW.size, stored = stored + coalesce(NEW.blob_stored, length(NEW.data));
  INSERT INTO ns_counts (namespace, fields) VALUES (NEW.namespace, 1)
    ON CONFLICT (namespace) DO UPDATE SET fields = fields + 1;
END;
CREATE TRIGGER ns_blobs_count_delete AFTER DELETE ON ns_blobs BEGIN
  UPDATE stats SET fields = fields - 1, logical = logical - OLD.size, stored = stored - coalesce(OLD.blob_stored, length(OLD.data));
  UPDATE ns_counts SET fields = fields - 1 WHERE namespace = OLD.namespace;
  DELETE FROM ns_counts WHERE namespace = OLD.namespace AND fields <= 0;
END;
CREATE TRIGGER ns_blobs_count_update AFTER UPDATE ON ns_blobs BEGIN
  UPDATE stats SET logical = logical - OLD.size + NEW.size,
    stored = stored - coalesce(OLD.blob_stored, length(OLD.data)) + coalesce(NEW.blob_stored, length(NEW.data));
END;
CREATE TRIGGER blobs_blob_gone AFTER DELETE ON blobs
  WHEN OLD.blob_id IS NOT NULL
   AND NOT EXISTS (SELECT 1 FROM blobs WHERE blob_id = OLD.blob_id)
   AND NOT EXISTS (SELECT 1 FROM ns_blobs WHERE blob_id = OLD.blob_id) BEGIN
  INSERT OR IGNORE INTO dead_blobs (blob_id) VALUES (OLD.blob_id);
END;
CREATE TRIGGER blobs_blob_replaced AFTER UPDATE OF blob_id ON blobs
  WHEN OLD.blob_id IS NOT NULL AND OLD.blob_id IS NOT NEW.blob_id
   AND NOT EXISTS (SELECT 1 FROM blobs WHERE blob_id = OLD.blob_id)
   AND NOT EXISTS (SELECT 1 FROM ns_blobs WHERE blob_id = OLD.blob_id) BEGIN
  INSERT OR IGNORE INTO dead_blobs (blob_id) VALUES (OLD.blob_id);
END;
CREATE TRIGGER ns_blobs_blob_gone AFTER DELETE ON ns_blobs
  WHEN OLD.blob_id IS NOT NULL
   AND NOT EXISTS (SELECT 1 FROM blobs WHERE blob_id = OLD.blob_id)
   AND NOT EXISTS (SELECT 1 FROM ns_blobs WHERE blob_id = OLD.blob_id) BEGIN
  INSERT OR IGNORE INTO dead_blobs (blob_id) VALUES (OLD.blob_id);
END;
CREATE TRIGGER ns_blobs_blob_replaced AFTER UPDATE OF blob_id ON ns_blobs
  WHEN OLD.blob_id IS NOT NULL AND OLD.blob_id IS NOT NEW.blob_id
   AND NOT EXISTS (SELECT 1 FROM blobs WHERE blob_id = OLD.blob_id)
   AND NOT EXISTS (SELECT 1 FROM ns_blobs WHERE blob_id = OLD.blob_id) BEGIN
  INSERT OR IGNORE INTO dead_blobs (blob_id) VALUES (OLD.blob_id);
END;
`,
  },
  {
    version: 6,
    description: 'namespace tombstones: DEL of a namespace in O(1), its rows purged in the background',
    // DEL of a namespace records (namespace, upto = the largest rowid of ns_blobs then) here and
    // takes the namespace's fields out of the counts at once; every read of ns_blobs treats the
    // namespace's rows with rowid <= upto as absent (NOT_TOMBSTONED in shard.ts), and the purger
    // deletes them in bounded steps, then this row. A field written after the DEL gets a rowid
    // above upto (the shard inserts it with an explicit rowid), so the purge never touches it and
    // a restart mid-purge brings nothing back. Deleting a dead row changes the byte sums (its
    // bytes are on disk until then) but not the field counts, which the DEL already lowered.
    up: `
CREATE TABLE ns_tombstones (
  namespace BLOB PRIMARY KEY NOT NULL,
  upto      INTEGER NOT NULL
) WITHOUT ROWID;
DROP TRIGGER ns_blobs_count_delete;
CREATE TRIGGER ns_blobs_count_delete AFTER DELETE ON ns_blobs
  WHEN NOT EXISTS (SELECT 1 FROM ns_tombstones WHERE namespace = OLD.namespace AND upto >= OLD.rowid) BEGIN
  UPDATE stats SET fields = fields - 1, logical = logical - OLD.size, stored = stored - coalesce(OLD.blob_stored, length(OLD.data));
  UPDATE ns_counts SET fields = fields - 1 WHERE namespace = OLD.namespace;
  DELETE FROM ns_counts WHERE namespace = OLD.namespace AND fields <= 0;
END;
CREATE TRIGGER ns_blobs_dead_delete AFTER DELETE ON ns_blobs
  WHEN EXISTS (SELECT 1 FROM ns_tombstones WHERE namespace = OLD.namespace AND upto >= OLD.rowid) BEGIN
  UPDATE stats SET logical = logical - OLD.size, stored = stored - coalesce(OLD.blob_stored, length(OLD.data));
END;
`,
  },
  {
    version: 7,
    description: 'the byte-sum triggers read a replaced or deleted row\'s stored length without loading its value',
    // In a trigger, any mention of OLD.data makes SQLite load that value, even inside length(): an
    // overwrite or DEL of a 1 MiB inline value read its 256 overflow pages only to count them
    // (~14% of a 1 MiB SET's CPU, docs/benchmarks.md "SET 1 MiB"). The triggers that need the old
    // stored length now run BEFORE the change and take it from a subquery on the row, where
    // length(data) reads only the record header. Nothing else changes: schema only, constant time.
    up: `
DROP TRIGGER blobs_count_delete;
DROP TRIGGER blobs_count_update;
DROP TRIGGER ns_blobs_count_update;
DROP TRIGGER ns_blobs_count_delete;
DROP TRIGGER ns_blobs_dead_delete;
CREATE TRIGGER blobs_count_delete BEFORE DELETE ON blobs BEGIN
  UPDATE stats SET keys = keys - 1, expires = expires - (OLD.expires_at IS NOT NULL),
    logical = logical - OLD.size,
    stored = stored - coalesce(OLD.blob_stored, (SELECT length(data) FROM blobs WHERE rowid = OLD.rowid));
END;
CREATE TRIGGER blobs_count_update BEFORE UPDATE ON blobs BEGIN
  UPDATE stats SET expires = expires - (OLD.expires_at IS NOT NULL) + (NEW.expires_at IS NOT NULL),
    logical = logical - OLD.size + NEW.size,
    stored = stored - coalesce(OLD.blob_stored, (SELECT length(data) FROM blobs WHERE rowid = OLD.rowid))
      + coalesce(NEW.blob_stored, length(NEW.data));
END;
CREATE TRIGGER ns_blobs_count_update BEFORE UPDATE ON ns_blobs BEGIN
  UPDATE stats SET logical = logical - OLD.size + NEW.size,
    stored = stored - coalesce(OLD.blob_stored, (SELECT length(data) FROM ns_blobs WHERE rowid = OLD.rowid))
      + coalesce(NEW.blob_stored, length(NEW.data));
END;
CREATE TRIGGER ns_blobs_count_delete BEFORE DELETE ON ns_blobs
  WHEN NOT EXISTS (SELECT 1 FROM ns_tombstones WHERE namespace = OLD.namespace AND upto >= OLD.rowid) BEGIN
  UPDATE stats SET fields = fields - 1, logical = logical - OLD.size,
    stored = stored - coalesce(OLD.blob_stored, (SELECT length(data) FROM ns_blobs WHERE rowid = OLD.rowid));
  UPDATE ns_counts SET fields = fields - 1 WHERE namespace = OLD.namespace;
  DELETE FROM ns_counts WHERE namespace = OLD.namespace AND fields <= 0;
END;
CREATE TRIGGER ns_blobs_dead_delete BEFORE DELETE ON ns_blobs
  WHEN EXISTS (SELECT 1 FROM ns_tombstones WHERE namespace = OLD.namespace AND upto >= OLD.rowid) BEGIN
  UPDATE stats SET logical = logical - OLD.size,
    stored = stored - coalesce(OLD.blob_stored, (SELECT length(data) FROM ns_blobs WHERE rowid = OLD.rowid));
END;
`,
  },
];

/**
 * Deletes, in one transaction, the rows DELs of namespaces took away and the server had not yet
 * purged (migration 6's tombstones). For offline tools that copy or move rows as they find them
 * (migrate): such a row must not come back as a live field elsewhere.
 */
export function purgeTombstonedRows(db: Database.Database): number {
  return db.transaction(() => {
    let n = 0;
    const tombstones = db.prepare<[], { namespace: Buffer; upto: number }>('SELECT namespace, upto FROM ns_tombstones').all();
    for (const t of tombstones) {
      n += db.prepare('DELETE FROM ns_blobs WHERE namespace = ? AND rowid <= ?').run(t.namespace, t.upto).changes;
      db.prepare('DELETE FROM ns_tombstones WHERE namespace = ?').run(t.namespace);
    }
    return n;
  }).immediate();
}

/** The SQL function the slot columns call (migration 4). */
export const SLOT_FUNCTION = 'blobasaur_key_slot';

/**
 * Defines SLOT_FUNCTION on a connection. Every connection that writes to (or checks) a shard
 * file from migration 4 on needs it: inserting or deleting a row computes its indexed slot.
 * Without it SQLite answers "unknown function: blobasaur_key_slot()" rather than miss an entry.
 */
export function registerSlotFunction(db: Database.Database): void {
  db.function(SLOT_FUNCTION, { deterministic: true }, (key: unknown) => (Buffer.isBuffer(key) || typeof key === 'string' ? calculateSlot(key) : null));
}

/**
 * The tables whose rows are keys (a key or a field each), with the column the shard ring places
 * them by. Every other table is derived from these (counts, sums) and is kept by triggers.
 */
export const KEYED_TABLES: readonly string[] = ['blobs', 'ns_blobs'];

/** The codec id of a row whose value lives in the shard's chunk file (its `data` is empty). */
export const CHUNKED_CODEC = 255;

/** The user_version of a shard file this build writes. */
export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1].version;

/** The file name of shard `id`; SQLite keeps `-wal` and `-shm` files beside it. */
export function shardFileName(id: number): string {
  return `shard-${id}.db`;
}

export function shardPath(dataDir: string, id: number): string {
  return join(dataDir, shardFileName(id));
}

/** The chunk file of shard `id`: the bytes of its large values (schema migration 5), 64 KiB pages. */
export function chunkFileName(id: number): string {
  return `shard-${id}.chunks.db`;
}

export function chunkPath(dataDir: string, id: number): string {
  return join(dataDir, chunkFileName(id));
}

/** The chunk file that belongs to the shard file at `shardFile`. */
export function chunkPathOf(shardFile: string): string {
  return shardFile.replace(/\.db$/, '.chunks.db');
}

/**
 * The shard file and the companions SQLite may create beside it, with the shard's chunk file and
 * its companions (removing a shard removes all six).
 */
export function shardFiles(path: string): string[] {
  const chunks = chunkPathOf(path);
  return [path, `${path}-wal`, `${path}-shm`, chunks, `${chunks}-wal`, `${chunks}-shm`];
}

export function schemaVersion(db: Database.Database): number {
  return Number(db.pragma('user_version', { simple: true }));
}

/** A table as the schema defines it: its name and its columns in order. */
export interface TableShape {
  name: string;
  columns: string[];
}

function tableShapes(db: Database.Database): TableShape[] {
  const names = db
    .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
    .pluck()
    .all() as string[];
  return names.map((name) => ({
    name,
    columns: (db.pragma(`table_info(${JSON.stringify(name)})`) as { name: string }[]).map((c) => c.name),
  }));
}

function checkOrder(migrations: readonly Migration[]): void {
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) throw new Error(`migration ${i + 1} is numbered ${m.version}: versions must be 1, 2, 3… in order`);
  });
}

/** The tables a file has after `migrations` up to `version`, built in memory from the list itself. */
export function schemaTables(version = SCHEMA_VERSION, migrations: readonly Migration[] = MIGRATIONS): TableShape[] {
  checkOrder(migrations);
  const db = new Database(':memory:');
  registerSlotFunction(db);
  try {
    for (const m of migrations.slice(0, version)) runStep(db, m);
    return tableShapes(db);
  } finally {
    db.close();
  }
}

function runStep(db: Database.Database, m: Migration): void {
  if (typeof m.up === 'string') db.exec(m.up);
  else m.up(db);
}

/**
 * A file with no user_version is taken for version 1 only if every table it has is one of
 * migration 1's, with the same columns: anything else is not a shard file this code wrote.
 */
function checkUnversioned(db: Database.Database, file: string, migrations: readonly Migration[]): void {
  const found = tableShapes(db);
  if (found.length === 0) return;
  const expected = new Map(schemaTables(1, migrations).map((t) => [t.name, t.columns.join(',')]));
  const foreign = found.filter((t) => expected.get(t.name) !== t.columns.join(','));
  if (foreign.length > 0) {
    throw new SchemaError(
      `${file} is not a blobasaur shard file: it has no schema version and tables blobasaur did not create ` +
        `(${foreign.map((t) => `${t.name}(${t.columns.join(', ')})`).join('; ')})`,
    );
  }
}

export interface MigrationResult {
  from: number;
  to: number;
}

/**
 * Brings `db` (the shard file `file`) up to the last of `migrations`, one transaction per step.
 * Concurrent openers are safe: each step re-reads the version under the write lock.
 */
export function applyMigrations(db: Database.Database, file: string, migrations: readonly Migration[] = MIGRATIONS): MigrationResult {
  checkOrder(migrations);
  registerSlotFunction(db);
  const latest = migrations.length;
  const from = schemaVersion(db);
  if (from > latest) {
    throw new SchemaError(
      `${file} has schema version ${from}: it was written by a newer blobasaur (this one reads versions up to ${latest}). ` +
        'Run that newer version, or restore a backup taken before the upgrade.',
    );
  }
  if (from === 0) checkUnversioned(db, file, migrations);
  for (const m of migrations.slice(from)) {
    const step = db.transaction(() => {
      if (schemaVersion(db) >= m.version) return;
      runStep(db, m);
      db.pragma(`user_version = ${m.version}`);
    });
    try {
      step.immediate();
    } catch (err) {
      let left: number | string;
      try {
        left = schemaVersion(db);
      } catch {
        left = 'unknown (the file could not be read)';
      }
      throw new SchemaError(`${file}: migration ${m.version} (${m.description}) failed: ${(err as Error).message}; the file is left at schema version ${left}`);
    }
  }
  return { from, to: schemaVersion(db) };
}
