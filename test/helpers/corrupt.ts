/**
 * Damaging shard files on purpose, for the storage-fault tests: find the b-tree page that holds a
 * known value and break it, or flip one bit inside a stored value.
 */
import { closeSync, openSync, readFileSync, readSync, writeSync } from 'node:fs';
import Database from 'better-sqlite3';

/** The page size of a (closed, checkpointed) shard file, read from its header. */
export function pageSize(file: string): number {
  const header = Buffer.alloc(100);
  const fd = openSync(file, 'r');
  try {
    readSync(fd, header, 0, 100, 0);
  } finally {
    closeSync(fd);
  }
  const n = header.readUInt16BE(16);
  return n === 1 ? 65536 : n;
}

/** Offset of the one occurrence of `marker` in the file; throws if it is absent or not unique. */
export function findOnce(file: string, marker: Buffer): number {
  const bytes = readFileSync(file);
  const at = bytes.indexOf(marker);
  if (at < 0) throw new Error(`${marker.toString()} not found in ${file}`);
  if (bytes.indexOf(marker, at + 1) >= 0) throw new Error(`${marker.toString()} found more than once in ${file}`);
  return at;
}

/** Overwrites bytes of the file at `offset`. */
export function poke(file: string, offset: number, bytes: Buffer): void {
  const fd = openSync(file, 'r+');
  try {
    writeSync(fd, bytes, 0, bytes.length, offset);
  } finally {
    closeSync(fd);
  }
}

/** Flips one bit at `offset`. */
export function flipBit(file: string, offset: number, bit = 0): void {
  const bytes = readFileSync(file);
  poke(file, offset, Buffer.from([bytes[offset] ^ (1 << bit)]));
}

/**
 * Breaks the b-tree page that holds `marker`: its header (page type, cell count, cell pointers) is
 * overwritten with garbage, so SQLite answers SQLITE_CORRUPT for any row on it. Returns the page
 * number (1-based).
 */
export function breakPageHolding(file: string, marker: Buffer): number {
  const size = pageSize(file);
  const page = Math.floor(findOnce(file, marker) / size);
  if (page === 0) throw new Error('the marker is on page 1 (the schema page): write more rows first');
  // Type 0x0D (table leaf) becomes 0x00, which no b-tree page may have; the cell count follows.
  poke(file, page * size, Buffer.from([0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]));
  return page + 1;
}

/** The page numbers (1-based) of a table's b-tree, from the file's dbstat (SQLite's page map). */
export function tablePages(file: string, table: string): number[] {
  const db = new Database(file, { readonly: true });
  try {
    return db.prepare('SELECT pageno FROM dbstat WHERE name = ?').pluck().all(table) as number[];
  } finally {
    db.close();
  }
}

/** SQLite's b-tree page type of a table leaf: the pages that hold rows. */
const TABLE_LEAF = 0x0d;

/** Where a marker was found: its capture, and its offset in the file. */
export interface MarkerAt {
  id: string;
  offset: number;
}

/**
 * The table-leaf pages (0-based) of the file as it is on disk now (a page still only in the WAL is
 * not there) and the markers on each: every match of `marker`, a global RegExp whose first group
 * names the row, e.g. /<VICTIM-(\d+)>/g. One pass over the file. Page 0, the schema page, whose
 * b-tree header sits after the file header, is left out.
 */
export function leafPagesHolding(file: string, marker: RegExp): Map<number, MarkerAt[]> {
  const size = pageSize(file);
  const bytes = readFileSync(file);
  const pages = new Map<number, MarkerAt[]>();
  for (let page = 1; page * size < bytes.length; page++) {
    if (bytes[page * size] !== TABLE_LEAF) continue;
    const text = bytes.subarray(page * size, (page + 1) * size).toString('latin1');
    const found = [...text.matchAll(marker)].map((m) => ({ id: m[1], offset: page * size + m.index! }));
    if (found.length > 0) pages.set(page, found);
  }
  return pages;
}

/** Breaks the header of one b-tree page (0-based), as breakPageHolding() does, in a file a server may have open. */
export function breakPage(file: string, page: number): void {
  poke(file, page * pageSize(file), Buffer.from([0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]));
}
