/**
 * The chunk file of one shard (shard-N.chunks.db): the bytes of values above CHUNK_THRESHOLD, as
 * 256 KiB chunks, each with its own codec and CRC-32.
 *
 * Why a file of its own: SQLite's page size is per database, and 256 KiB chunks in 64 KiB pages
 * write in p50 0.19 / p99 1.7 ms and read in p50 0.07 / p99 0.8 ms, against p99 24 / 9 ms in the
 * shard file's 4 KiB pages (docs/benchmarks.md, "Big blobs"); small rows stay in 4 KiB pages.
 *
 * A blob (one stored value) is a list of chunks: `blob_chunks` maps (blob_id, seq) to a chunk id,
 * and every chunk but the last holds exactly CHUNK_BYTES. Blobs never change once written: APPEND
 * and SETRANGE write a new blob that maps the untouched chunks of the old one and new chunks for
 * what changed, so a reader holding a blob id reads the same bytes to the end whatever writes come
 * after, and a crash between this file's commit and the shard file's leaves the old value whole.
 * A chunk is deleted when no blob maps it any more (reclaimStep).
 *
 * Which blobs are live is decided by the shard file (rows with a blob_id; dead_blobs lists those
 * no row references): `blob_index` lists every blob this file holds, so the blobs that are in
 * neither — staged when the server stopped — are found at start and reclaimed.
 */
import { crc32 } from 'node:zlib';
import Database from 'better-sqlite3';
import type { Statement } from 'better-sqlite3';
import { decode, decodeSync, encode, type CompressionSettings, type Encoded } from './codecs.js';
import type { SqliteSettings } from './shard.js';
import type { ChunkIO } from './chunk-io.js';

/** Bytes per chunk: where a chunk's write stays ~2 ms at p99 (1 MiB chunks: 6 ms). */
export const CHUNK_BYTES = 256 * 1024;
/**
 * Values longer than this are stored in chunks. 1 MiB itself stays inline: `npm run bench` measures
 * GET and SET 1 MiB, and storing values of 256 KiB–1 MiB in this file (one transaction or statement
 * on the event loop per value) cost more server CPU per request than the inline row, not less —
 * reclaiming each overwritten blob and checkpointing a second WAL (docs/benchmarks.md, "GET 1 MiB /
 * SET 1 MiB").
 */
export const CHUNK_THRESHOLD = 1024 * 1024;
/** The chunk file's page size; set before its first table exists (SQLite cannot change it in WAL mode). */
export const CHUNK_PAGE_SIZE = 64 * 1024;
/** Chunks written per transaction while staging a value: ~1 ms of the event loop. */
const CHUNKS_PER_STEP = 2;
/**
 * Page cache per connection to a chunk file, in KiB: chunks are read once, into the socket, so a
 * cache only holds b-tree pages worth keeping. SQLite keeps what it grew to (8 MiB was measured
 * resident after a 300 MiB value was deleted, per connection).
 */
export const CHUNK_CACHE_KIB = 2 * 1024;
/**
 * What a chunk file's WAL is cut down to when it restarts: kept, not truncated to nothing, so that
 * while the disk is full chunk writes still find room in it.
 */
export const CHUNK_JOURNAL_SIZE_LIMIT = 64 * 1024 * 1024;
/** Chunk file schema version (PRAGMA user_version), separate from the shard file's. */
const CHUNK_SCHEMA_VERSION = 1;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS blob_index (
  blob_id INTEGER PRIMARY KEY,
  size    INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS chunks (
  id    INTEGER PRIMARY KEY,
  codec INTEGER NOT NULL,
  crc   INTEGER NOT NULL,
  size  INTEGER NOT NULL,
  data  BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS blob_chunks (
  blob_id  INTEGER NOT NULL,
  seq      INTEGER NOT NULL,
  chunk_id INTEGER NOT NULL,
  PRIMARY KEY (blob_id, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS blob_chunks_chunk ON blob_chunks (chunk_id);
`;

/** What a shard row records about its blob. */
export interface BlobInfo {
  id: number;
  /** Logical bytes. */
  size: number;
  /** Bytes stored (after per-chunk compression). */
  stored: number;
}

/** A chunk as stored: its codec, checksum, logical size and payload. */
export interface StoredChunk {
  codec: number;
  crc: number;
  size: number;
  data: Buffer;
}

export class ChunkError extends Error {}

/**
 * How a blob was made from an older one (APPEND, SETRANGE): the seq ranges [a, b) it maps from
 * blob `from` (then `fromSize` bytes long) unchanged. Replication uses it to send a replica only
 * the other chunks; kept in memory for the most recent blobs only.
 */
export interface Derivation {
  from: number;
  fromSize: number;
  kept: [number, number][];
}

/** Derivations remembered per chunk file (a few hundred bytes each). */
const MAX_DERIVATIONS = 1024;

/** One chunk of a blob without its bytes: what a replica compares against its own copy. */
export interface ChunkMeta {
  seq: number;
  codec: number;
  crc: number;
  size: number;
  stored: number;
}

/** Number of chunks of a value of `size` bytes. */
export function chunkCount(size: number): number {
  return Math.ceil(size / CHUNK_BYTES);
}

/**
 * Shared memory the chunk I/O thread reads payloads from: a chunk is copied once into a slot
 * (SQLite copies it again into its pages), and the slot is reused by the next chunk. A fresh
 * buffer per chunk, transferred to the thread, lives until that thread's collector runs: measured
 * +99 MiB VmHWM during a 320 MiB SET, where the streamed-writes test allows 64.
 */
const spareSlots: SharedArrayBuffer[] = [];
const MAX_SPARE_SLOTS = 16;

function takeSlot(payload: Buffer): SharedArrayBuffer {
  const slot = payload.length <= CHUNK_BYTES && spareSlots.length > 0 ? spareSlots.pop()! : new SharedArrayBuffer(Math.max(CHUNK_BYTES, payload.length));
  new Uint8Array(slot, 0, payload.length).set(payload);
  return slot;
}

function giveSlot(slot: SharedArrayBuffer): void {
  if (slot.byteLength === CHUNK_BYTES && spareSlots.length < MAX_SPARE_SLOTS) spareSlots.push(slot);
}

export class ChunkFile {
  private readonly db: Database.Database;
  private readonly stmt: {
    begin: Statement;
    commit: Statement;
    rollback: Statement;
    index: Statement<[number, number]>;
    unindex: Statement<[number]>;
    chunk: Statement<[number, number, number, Buffer]>;
    map: Statement<[number, number, number]>;
    copyMap: Statement<[number, number, number, number]>;
    layout: Statement<[number], ChunkMeta>;
    blobSize: Statement<[number], number>;
    read: Statement<[number, number], StoredChunk>;
    mapped: Statement<[number, number], { seq: number; chunk_id: number }>;
    unmap: Statement<[number, number]>;
    dropChunk: Statement<[number, number]>;
  };
  private nextId = 1;
  /** Blob ids in use by readers of this process: never reclaimed while pinned. */
  private readonly pins = new Map<number, number>();
  private readonly derivations = new Map<number, Derivation>();
  /** Chunks read and written since open (tests check that range reads and appends touch only a few). */
  chunksRead = 0;
  chunksWritten = 0;
  /** Called after every commit to this file (the maintenance thread checkpoints it). */
  onCommit: () => void = () => {};
  /** The chunk I/O thread, when it does this file's chunk writes and streamed reads (attachIO). */
  private io: ChunkIO | null = null;
  private autocheckpointPages = 1000;

  constructor(
    readonly path: string,
    private readonly sqlite: SqliteSettings,
  ) {
    const db = (this.db = new Database(path));
    // Both only take effect before the first table exists.
    db.pragma(`page_size = ${CHUNK_PAGE_SIZE}`);
    db.pragma('auto_vacuum = INCREMENTAL');
    db.pragma(`locking_mode = ${sqlite.locking_mode ?? 'NORMAL'}`);
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${sqlite.synchronous}`);
    db.pragma(`cache_size = ${-CHUNK_CACHE_KIB}`);
    db.pragma(`busy_timeout = ${sqlite.busy_timeout_ms}`);
    db.pragma(`journal_size_limit = ${CHUNK_JOURNAL_SIZE_LIMIT}`);
    try {
      const version = Number(db.pragma('user_version', { simple: true }));
      if (version > CHUNK_SCHEMA_VERSION) {
        throw new ChunkError(`${path} has chunk schema version ${version}: it was written by a newer blobasaur (this one reads version ${CHUNK_SCHEMA_VERSION})`);
      }
      if (version < CHUNK_SCHEMA_VERSION) {
        db.transaction(() => {
          db.exec(SCHEMA);
          db.pragma(`user_version = ${CHUNK_SCHEMA_VERSION}`);
        }).immediate();
      }
    } catch (err) {
      db.close();
      throw err;
    }
    this.stmt = {
      begin: db.prepare('BEGIN IMMEDIATE'),
      commit: db.prepare('COMMIT'),
      rollback: db.prepare('ROLLBACK'),
      index: db.prepare('INSERT OR REPLACE INTO blob_index (blob_id, size) VALUES (?, ?)'),
      unindex: db.prepare('DELETE FROM blob_index WHERE blob_id = ?'),
      chunk: db.prepare('INSERT INTO chunks (codec, crc, size, data) VALUES (?, ?, ?, ?)'),
      map: db.prepare('INSERT OR REPLACE INTO blob_chunks (blob_id, seq, chunk_id) VALUES (?, ?, ?)'),
      copyMap: db.prepare('INSERT OR REPLACE INTO blob_chunks (blob_id, seq, chunk_id) SELECT ?, seq, chunk_id FROM blob_chunks WHERE blob_id = ? AND seq >= ? AND seq < ?'),
      // length() of a blob column is read from the record header: no chunk's bytes are loaded.
      layout: db.prepare('SELECT m.seq, c.codec, c.crc, c.size, length(c.data) AS stored FROM blob_chunks m JOIN chunks c ON c.id = m.chunk_id WHERE m.blob_id = ? ORDER BY m.seq'),
      blobSize: db.prepare<[number], number>('SELECT size FROM blob_index WHERE blob_id = ?').pluck(),
      read: db.prepare('SELECT c.codec, c.crc, c.size, c.data FROM blob_chunks m JOIN chunks c ON c.id = m.chunk_id WHERE m.blob_id = ? AND m.seq = ?'),
      mapped: db.prepare('SELECT seq, chunk_id FROM blob_chunks WHERE blob_id = ? ORDER BY seq LIMIT ?'),
      unmap: db.prepare('DELETE FROM blob_chunks WHERE blob_id = ? AND seq = ?'),
      dropChunk: db.prepare('DELETE FROM chunks WHERE id = ? AND NOT EXISTS (SELECT 1 FROM blob_chunks WHERE chunk_id = ?)'),
    };
    this.nextId = Number(db.prepare('SELECT coalesce(max(blob_id), 0) FROM blob_index').pluck().get()) + 1;
  }

  /** A new blob id, never handed out before by this file (`atLeast`: ids the shard file knows). */
  allocate(atLeast = 0): number {
    if (this.nextId <= atLeast) this.nextId = atLeast + 1;
    return this.nextId++;
  }

  /** Every blob id this file holds, for the orphan check at start. */
  blobIds(): number[] {
    return this.db.prepare<[], number>('SELECT blob_id FROM blob_index').pluck().all();
  }

  /** How many blobs and chunks the file holds (tests, INFO). */
  counts(): { blobs: number; chunks: number } {
    const blobs = Number(this.db.prepare('SELECT count(*) FROM blob_index').pluck().get());
    const chunks = Number(this.db.prepare('SELECT count(*) FROM chunks').pluck().get());
    return { blobs, chunks };
  }

  pin(id: number): void {
    this.pins.set(id, (this.pins.get(id) ?? 0) + 1);
  }

  unpin(id: number): void {
    const n = (this.pins.get(id) ?? 0) - 1;
    if (n <= 0) this.pins.delete(id);
    else this.pins.set(id, n);
  }

  pinned(id: number): boolean {
    return this.pins.has(id);
  }

  private write<T>(f: () => T): T {
    this.stmt.begin.run();
    try {
      const out = f();
      this.stmt.commit.run();
      this.onCommit();
      return out;
    } catch (err) {
      if (this.db.inTransaction) this.stmt.rollback.run();
      throw err;
    }
  }

  /**
   * From here on, putChunksAsync() and readAsync() run on the chunk I/O thread, through its own
   * connection to this file (opened after this file's schema exists). Not with locking_mode
   * EXCLUSIVE, where no second connection can open the file.
   */
  attachIO(io: ChunkIO): void {
    if (this.sqlite.locking_mode === 'EXCLUSIVE' || !io.alive) return;
    this.io = io;
    io.request({ op: 'open', path: this.path, synchronous: this.sqlite.synchronous, busyTimeoutMs: this.sqlite.busy_timeout_ms, autocheckpointPages: this.autocheckpointPages }).catch(() => {
      if (this.io === io) this.io = null;
    });
  }

  /** The thread is gone: this file's own connection does everything again. */
  detachIO(): void {
    this.io = null;
  }

  /** Whether chunk writes and streamed reads run off the event loop. */
  get offLoop(): boolean {
    return this.io !== null && this.io.alive;
  }

  /** Records a blob being written (first, so a crash mid-way leaves a blob the start-up check finds). */
  open(id: number, size: number): void {
    this.write(() => this.stmt.index.run(id, size));
  }

  /** Stores encoded chunks as seq `firstSeq`… of blob `id`, in one transaction; the bytes stored. */
  putChunks(id: number, firstSeq: number, chunks: readonly { encoded: Encoded; size: number }[]): number {
    return this.write(() => this.putChunksInTx(id, firstSeq, chunks));
  }

  /**
   * putChunks() off the event loop when the chunk I/O thread is attached; `indexSize` also records
   * the blob (as open() does) in the same transaction, for a blob whose first chunks these are.
   * The payloads are copied before the call returns: callers may reuse their buffers at once.
   */
  async putChunksAsync(id: number, firstSeq: number, chunks: readonly { encoded: Encoded; size: number }[], indexSize?: number): Promise<number> {
    const io = this.io;
    if (io === null || !io.alive) {
      if (indexSize !== undefined) this.open(id, indexSize);
      return this.putChunks(id, firstSeq, chunks);
    }
    if (!this.isOpen) throw new ChunkError(`${this.path} is closed`);
    const slots = chunks.map(({ encoded }) => takeSlot(encoded.payload));
    try {
      const payloads = chunks.map(({ encoded, size }, i) => ({ codec: encoded.codec, size, payload: slots[i], length: encoded.payload.length }));
      const reply = await io.request({ op: 'put', path: this.path, blob: id, firstSeq, indexSize, chunks: payloads });
      this.chunksWritten += chunks.length;
      this.onCommit();
      return reply.stored ?? 0;
    } finally {
      for (const s of slots) giveSlot(s);
    }
  }

  private putChunksInTx(id: number, firstSeq: number, chunks: readonly { encoded: Encoded; size: number }[]): number {
    let stored = 0;
    chunks.forEach(({ encoded, size }, i) => {
      const payload = encoded.payload;
      const chunkId = Number(this.stmt.chunk.run(encoded.codec, crc32(payload), size, payload).lastInsertRowid);
      this.stmt.map.run(id, firstSeq + i, chunkId);
      stored += payload.length;
      this.chunksWritten++;
    });
    return stored;
  }

  /**
   * A new blob `id` of `size` bytes that maps chunks [0, keep) of blob `from` and stores `tail`
   * (already encoded) from seq `keep` on: APPEND and SETRANGE. One transaction: a few chunks at most.
   */
  derive(id: number, size: number, from: number, keep: number, tail: readonly { seq: number; encoded: Encoded; size: number }[], keepAfter?: { from: number; to: number }): number {
    const stored = this.write(() => {
      this.stmt.index.run(id, size);
      this.stmt.copyMap.run(id, from, 0, keep);
      if (keepAfter !== undefined) this.stmt.copyMap.run(id, from, keepAfter.from, keepAfter.to);
      let stored = 0;
      for (const t of tail) stored += this.putChunksInTx(id, t.seq, [t]);
      return stored;
    });
    const fromSize = this.stmt.blobSize.get(from);
    if (fromSize !== undefined) this.noteDerivation(id, { from, fromSize, kept: keepAfter === undefined ? [[0, keep]] : [[0, keep], [keepAfter.from, keepAfter.to]] });
    return stored;
  }

  /** Maps chunks [a, b) of blob `from` as the same seqs of blob `id` (a replica reusing its own copy). */
  mapFrom(id: number, from: number, a: number, b: number): void {
    this.write(() => this.stmt.copyMap.run(id, from, a, b));
  }

  noteDerivation(id: number, d: Derivation): void {
    this.derivations.set(id, d);
    if (this.derivations.size > MAX_DERIVATIONS) this.derivations.delete(this.derivations.keys().next().value as number);
  }

  derivation(id: number): Derivation | undefined {
    return this.derivations.get(id);
  }

  /** Every chunk of blob `id` in order, without its bytes. */
  layout(id: number): ChunkMeta[] {
    return this.stmt.layout.all(id);
  }

  /** A chunk as stored, checksum verified; throws ChunkError when missing or corrupt. */
  readStored(id: number, seq: number): StoredChunk {
    const c = this.stmt.read.get(id, seq);
    if (c === undefined) throw new ChunkError(`chunk ${seq} of blob ${id} is missing from ${this.path}`);
    this.chunksRead++;
    if (crc32(c.data) !== c.crc) throw new ChunkError(`chunk ${seq} of blob ${id} in ${this.path} fails its CRC-32 check`);
    return c;
  }

  /** A chunk's bytes; decoded off the event loop when compressed and large. */
  read(id: number, seq: number): Buffer | Promise<Buffer> {
    const c = this.readStored(id, seq);
    return c.codec === 0 ? c.data : decode(c.codec, c.data);
  }

  /** readStored(), with the SQLite call and the checksum on the chunk I/O thread when it is attached. */
  async readStoredAsync(id: number, seq: number): Promise<StoredChunk> {
    const io = this.io;
    if (io === null || !io.alive || !this.isOpen) return this.readStored(id, seq);
    let reply;
    try {
      reply = await io.request({ op: 'read', path: this.path, blob: id, seq });
    } catch (err) {
      if ((err as Error).name === 'ChunkError') throw new ChunkError((err as Error).message);
      throw err;
    }
    this.chunksRead++;
    return { codec: reply.codec!, crc: reply.crc!, size: reply.size!, data: Buffer.from(reply.data!) };
  }

  /** read(), off the event loop when the chunk I/O thread is attached. */
  async readAsync(id: number, seq: number): Promise<Buffer> {
    const c = await this.readStoredAsync(id, seq);
    return c.codec === 0 ? c.data : decode(c.codec, c.data);
  }

  readSync(id: number, seq: number): Buffer {
    const c = this.readStored(id, seq);
    return c.codec === 0 ? c.data : decodeSync(c.codec, c.data);
  }

  /**
   * Deletes up to `limit` chunk mappings of a dead blob, and the chunks no other blob maps; true
   * when the blob is gone entirely (its index row too).
   */
  reclaimStep(id: number, limit: number): boolean {
    return this.write(() => {
      const rows = this.stmt.mapped.all(id, limit);
      for (const r of rows) {
        this.stmt.unmap.run(id, r.seq);
        this.stmt.dropChunk.run(r.chunk_id, r.chunk_id);
      }
      if (rows.length < limit) {
        this.stmt.unindex.run(id);
        this.derivations.delete(id);
        return true;
      }
      return false;
    });
  }

  /** WAL pages after which a commit checkpoints on the calling thread (the maintenance thread's safety net). */
  setAutoCheckpoint(pages: number): void {
    this.autocheckpointPages = Math.floor(pages);
    this.db.pragma(`wal_autocheckpoint = ${Math.floor(pages)}`);
    this.io?.tell({ op: 'autocheckpoint', path: this.path, pages: Math.floor(pages) });
  }

  checkpoint(): void {
    this.db.pragma('wal_checkpoint(TRUNCATE)');
  }

  incrementalVacuum(pages: number): number {
    if (pages <= 0) return 0;
    const before = Number(this.db.pragma('freelist_count', { simple: true }));
    if (before === 0) return 0;
    this.db.pragma(`incremental_vacuum(${Math.floor(pages)})`);
    return before - Number(this.db.pragma('freelist_count', { simple: true }));
  }

  pageStats(): { pageSize: number; pageCount: number; freelistCount: number } {
    return {
      pageSize: Number(this.db.pragma('page_size', { simple: true })),
      pageCount: Number(this.db.pragma('page_count', { simple: true })),
      freelistCount: Number(this.db.pragma('freelist_count', { simple: true })),
    };
  }

  async backup(file: string): Promise<void> {
    const done = await this.db.backup(file);
    if (done.totalPages === 0) throw new Error(`backup of ${this.path} copied no pages (source locked?)`);
  }

  close(): void {
    // The thread's connection first: this one's close checkpoints and deletes the WAL.
    const io = this.io;
    this.io = null;
    io?.closeSync(this.path);
    this.db.close();
  }

  get isOpen(): boolean {
    return this.db.open;
  }
}

/** Encodes one chunk with the store's compression. */
export function encodeChunk(raw: Buffer, compression: CompressionSettings | null): Encoded | Promise<Encoded> {
  return encode(raw, compression);
}

export { CHUNKS_PER_STEP };
