/**
 * The data directory records its shard count, because placement depends on it: opening the
 * directory with another count would look every key up on the wrong shard.
 */
import { existsSync, readFileSync, writeFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';

export const LAYOUT_FILE = 'blobasaur.json';
/**
 * The format of the directory: this file, and shard files named by schema.ts's shardFileName().
 * What is inside each shard file is versioned separately, by its own PRAGMA user_version.
 */
export const LAYOUT_FORMAT = 1;

interface Layout {
  format: number;
  num_shards: number;
}

export class LayoutError extends Error {}

/** The shard count `dataDir` records, or null when it has no layout file yet. */
export function readLayout(dataDir: string): number | null {
  const path = join(dataDir, LAYOUT_FILE);
  if (!existsSync(path)) return null;
  let layout: Layout;
  try {
    layout = JSON.parse(readFileSync(path, 'utf8')) as Layout;
  } catch (err) {
    throw new LayoutError(`${path} is not valid JSON (${(err as Error).message}); it records the shard count of ${dataDir}`);
  }
  // JSON.parse accepts `null`, numbers and arrays too: anything but an object is not a layout.
  if (
    typeof layout !== 'object' ||
    layout === null ||
    layout.format !== LAYOUT_FORMAT ||
    !Number.isInteger(layout.num_shards) ||
    layout.num_shards < 1
  ) {
    throw new LayoutError(`${path} has an unknown format; this version of blobasaur writes format ${LAYOUT_FORMAT}`);
  }
  return layout.num_shards;
}

/** Written atomically so a crash cannot leave a half-written marker behind. */
export function writeLayout(dataDir: string, numShards: number): void {
  const path = join(dataDir, LAYOUT_FILE);
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, `${JSON.stringify({ format: LAYOUT_FORMAT, num_shards: numShards } satisfies Layout, null, 2)}\n`);
  renameSync(tmp, path);
}

export function checkLayout(dataDir: string, numShards: number): void {
  const recorded = readLayout(dataDir);
  if (recorded === null) {
    writeLayout(dataDir, numShards);
    return;
  }
  if (recorded !== numShards) {
    throw new LayoutError(
      `data_dir ${dataDir} holds ${recorded} shards but num_shards is ${numShards}. ` +
        `Start with num_shards = ${recorded} (or --shards ${recorded}); ` +
        'a key is placed by the shard count, so changing it moves data: stop the server and run ' +
        `blobasaur migrate --data-dir ${dataDir} --to-shards ${numShards}.`,
    );
  }
}
