/**
 * `blobasaur check` and `blobasaur repair` on a data directory with a broken b-tree page in one
 * shard and a flipped bit in a value of another: check names both and exits 1; repair rebuilds
 * both shards from their readable rows, keeps the damaged files as *.corrupt and names the rows
 * it lost; afterwards check passes and a server serves every saved row with its exact value.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { Redis } from 'ioredis';
import { ShardRing } from '../../src/storage/mpchash.js';
import { shardPath } from '../../src/storage/schema.js';
import { MAIN_JS, spawnOurs, tempDir } from '../helpers/servers.js';
import { breakPageHolding, findOnce, flipBit } from '../helpers/corrupt.js';

const execFileP = promisify(execFile);
const SHARDS = 4;
const ring = new ShardRing(SHARDS);
const FILLERS = 600;

async function tool(args: string[]): Promise<{ code: number; out: string }> {
  try {
    const { stdout, stderr } = await execFileP(process.execPath, [MAIN_JS, ...args]);
    return { code: 0, out: stdout + stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, out: e.stdout + e.stderr };
  }
}

function filler(i: number): string {
  return `filler-${i}-`.padEnd(700, String.fromCharCode(97 + (i % 26)));
}

async function serve(data: string, f: (r: Redis) => Promise<void>): Promise<void> {
  const server = await spawnOurs(['--data-dir', data, '--shards', String(SHARDS)]);
  const r = new Redis({ port: server.port, host: '127.0.0.1', maxRetriesPerRequest: 0 });
  try {
    await f(r);
  } finally {
    r.disconnect();
    server.proc.kill('SIGTERM');
    assert.equal(await server.exited, 0);
  }
}

describe('blobasaur check and repair', () => {
  it('find the damage, salvage every readable row, and name what was lost', async () => {
    const data = join(tempDir('blobasaur-repair-'), 'data');
    const victim = 'victim';
    assert.equal(ring.shardOf(Buffer.from(victim)), 2, 'the victim lives on shard 2');
    let flipped = '';
    for (let i = 0; ; i++) if (ring.shardOf(Buffer.from(`flip:${i}`)) === 1) {
      flipped = `flip:${i}`;
      break;
    }
    const marker = Buffer.from('MARKER-OF-THE-VICTIM');
    await serve(data, async (r) => {
      const p = r.pipeline();
      for (let i = 0; i < FILLERS; i++) p.set(`filler:${i}`, filler(i));
      p.set(victim, Buffer.concat([marker, Buffer.alloc(1200, 'v')]));
      p.set(flipped, 'a value whose bytes will change on disk');
      p.hset('ns', 'field', 'in a namespace');
      const res = await p.exec();
      assert.ok(res !== null && res.every(([err]) => err === null));
    });

    const clean = await tool(['check', '--data-dir', data]);
    assert.equal(clean.code, 0, clean.out);
    assert.match(clean.out, new RegExp(`check of ${data}: all 4 shards ok`));
    // Not a terminal: plain progress lines on stderr, the last one at 4/4.
    assert.match(clean.out, /^check: 4\/4 shards \(100%\), shard 3 ok$/m);

    breakPageHolding(shardPath(data, 2), marker);
    const file1 = shardPath(data, 1);
    flipBit(file1, findOnce(file1, Buffer.from('whose bytes will change')) + 3, 1);

    const damaged = await tool(['check', '--data-dir', data]);
    assert.equal(damaged.code, 1, damaged.out);
    assert.match(damaged.out, /^shard 1 \(.*shard-1\.db\): DAMAGED\n {2}blobs: stored value of key 'flip:\d+' is corrupt: checksum mismatch$/m);
    assert.match(damaged.out, /^shard 2 \(.*shard-2\.db\): DAMAGED$/m);
    assert.match(damaged.out, /^shard 0 .*: ok, \d+ rows$/m);
    assert.match(damaged.out, /damaged shards 1, 2; stop the server and run blobasaur repair/);

    // Refused while a server has the files open.
    const running = await spawnOurs(['--data-dir', data, '--shards', String(SHARDS)]);
    const busy = await tool(['repair', '--data-dir', data]);
    running.proc.kill('SIGTERM');
    await running.exited;
    assert.equal(busy.code, 1, busy.out);
    assert.match(busy.out, /is in use by another process \(is the server running\?\); stop the server before a repair/);

    const repaired = await tool(['repair', '--data-dir', data]);
    assert.equal(repaired.code, 0, repaired.out);
    assert.match(repaired.out, /^shard 0: ok, left alone$/m);
    assert.match(repaired.out, new RegExp(`^shard 1: \\d+ rows saved, 1 lost; damaged file kept as .*shard-1\\.db\\.corrupt\\n {2}lost: key '${flipped}'$`, 'm'));
    const line2 = /^shard 2: (\d+) rows saved, (\d+) lost; damaged file kept as .*shard-2\.db\.corrupt\n {2}lost: (.*)$/m.exec(repaired.out);
    assert.ok(line2 !== null, repaired.out);
    const lost2 = line2[3].split(', ').map((s) => s.replace(/^key '(.*)'$/, '$1'));
    assert.ok(lost2.includes(victim), line2[3]);
    assert.equal(Number(line2[2]), lost2.length);
    assert.ok(existsSync(`${shardPath(data, 2)}.corrupt`) && existsSync(`${shardPath(data, 1)}.corrupt`));

    // The rebuilt shard counts every row of the old one but the lost.
    const old = new Database(`${shardPath(data, 2)}.corrupt`, { readonly: true });
    const indexed = old.prepare('SELECT count(*) FROM blobs INDEXED BY sqlite_autoindex_blobs_1').pluck().get() as number;
    old.close();
    assert.equal(Number(line2[1]), indexed - lost2.length);

    const after = await tool(['check', '--data-dir', data]);
    assert.equal(after.code, 0, after.out);

    await serve(data, async (r) => {
      const values = await r.mget(...Array.from({ length: FILLERS }, (_, i) => `filler:${i}`));
      let missing = 0;
      values.forEach((v, i) => {
        if (v === null) {
          missing++;
          assert.ok(lost2.includes(`filler:${i}`), `filler:${i} missing but not reported lost`);
        } else assert.equal(v, filler(i));
      });
      assert.equal(missing, lost2.filter((k) => k.startsWith('filler:')).length);
      assert.equal(await r.get(victim), null);
      assert.equal(await r.get(flipped), null);
      assert.equal(await r.hget('ns', 'field'), 'in a namespace');
      assert.equal(await r.set(victim, 'written again'), 'OK');
      assert.equal(await r.get(victim), 'written again');
    });
  });
});
