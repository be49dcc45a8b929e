/**
 * The data directory records its shard count, because placement depends on it: opening the
 * directory with another count would look every key up on the wrong shard.
 */
import { existsSync, readFileSync, writeFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';

export const LAYOUT_FILE = 'blobasaur.json';
const FORMAT = 1;

interface Layout {
  format: number;
  num_shards: number;
}

export class LayoutError extends Error {}

export function checkLayout(dataDir: string, numShards: number): void {
  const path = join(dataDir, LAYOUT_FILE);
  if (!existsSync(path)) {
    // Written atomically so a crash cannot leave a half-written marker behind.
    const tmp = `${path}.tmp`;
    writeFileSync(tmp, `${JSON.stringify({ format: FORMAT, num_shards: numShards } satisfies Layout, null, 2)}\n`);
    renameSync(tmp, path);
    return;
  }
  let layout: Layout;
  try {
    layout = JSON.parse(readFileSync(path, 'utf8')) as Layout;
  } catch (err) {
    throw new LayoutError(`${path} is not valid JSON (${(err as Error).message}); it records the shard count of ${dataDir}`);
  }
  // JSON.parse accepts `null`, numbers and arrays too: anything but an object is not a layout.
  if (typeof layout !== 'object' || layout === null || layout.format !== FORMAT || !Number.isInteger(layout.num_shards)) {
    throw new LayoutError(`${path} has an unknown format; this version of blobasaur writes format ${FORMAT}`);
  }
  if (layout.num_shards !== numShards) {
    throw new LayoutError(
      `data_dir ${dataDir} holds ${layout.num_shards} shards but num_shards is ${numShards}. ` +
        `Start with num_shards = ${layout.num_shards} (or --shards ${layout.num_shards}); ` +
        'a key is placed by the shard count, so changing it moves data: stop the server and run ' +
        `blobasaur migrate --data-dir ${dataDir} --to-shards ${numShards}.`,
    );
  }
}
