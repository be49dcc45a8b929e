/**
 * COMMAND INFO and COMMAND DOCS of every command in our table against a real redis-server (7.0),
 * in RESP2 and RESP3, compared byte for byte after these normalizations, and only these:
 *
 * 1. Subcommand lists (INFO's 10th element, DOCS' `subcommands` map): Redis lists every
 *    subcommand it has, in the order of a dict whose hash seed is random per process. Both sides
 *    keep only the subcommands both servers have, sorted by name. Which of ours Redis 7.0 lacks
 *    is pinned in NEWER_THAN_7_0, so nothing goes missing silently.
 * 2. DOCS `history` and `arguments`: our table does not carry them (docs/architecture.md,
 *    "Writing a command"); they are removed from Redis' entries before comparing.
 *
 * Commands Redis 7.0 does not know (NEWER_THAN_7_0) follow the newer Redis' command JSON; they are
 * checked in test/unit/command-spec.test.ts.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { commandTable } from '../../src/commands/table.js';
import { RawClient, resp, replyEnd } from '../helpers/raw.js';
import { compareServersForSuite } from '../helpers/compare.js';

/**
 * Ours, and not in redis-server 7.0: 7.2 (CLIENT SETINFO), 7.4 (hash-field expiry), 8.0 (HSETEX,
 * HGETDEL, HGETEX), and Blobasaur's own BLOBINFO / HBLOBINFO (no Redis has them; README.md
 * "Introspection") and BLOBREPL (the replication stream, docs/cluster.md).
 */
const NEWER_THAN_7_0 = new Set([
  'client|setinfo', 'client|no-touch',
  'blobinfo', 'hblobinfo',
  'blobrepl', 'blobrepl|auth', 'blobrepl|snapshot', 'blobrepl|chunk', 'blobrepl|done', 'blobrepl|stream', 'blobrepl|help',
  'hexpire', 'hpexpire', 'hexpireat', 'hpexpireat', 'httl', 'hpttl', 'hexpiretime', 'hpexpiretime', 'hpersist',
  'hsetex', 'hgetdel', 'hgetex',
]);

/** A parsed RESP reply that serializes back to the same bytes. */
interface Node {
  type: string;
  /** The line after the type byte, or a bulk's payload. */
  text: string;
  items: Node[];
}

function parse(buf: Buffer, pos = 0): [Node, number] {
  const lineEnd = buf.indexOf('\r\n', pos);
  const type = String.fromCharCode(buf[pos]);
  const head = buf.subarray(pos + 1, lineEnd).toString('latin1');
  if ('$=!'.includes(type) && Number(head) >= 0) {
    const end = replyEnd(buf, pos);
    return [{ type, text: buf.subarray(lineEnd + 2, end - 2).toString('latin1'), items: [] }, end];
  }
  if ('*~%>'.includes(type) && Number(head) >= 0) {
    const n = Number(head) * (type === '%' ? 2 : 1);
    const items: Node[] = [];
    let p = lineEnd + 2;
    for (let i = 0; i < n; i++) {
      const [item, next] = parse(buf, p);
      items.push(item);
      p = next;
    }
    return [{ type, text: '', items }, p];
  }
  return [{ type, text: head, items: [] }, lineEnd + 2];
}

function serialize(n: Node): string {
  if ('$=!'.includes(n.type) && n.items.length === 0 && n.text !== '-1') return `${n.type}${Buffer.byteLength(n.text, 'latin1')}\r\n${n.text}\r\n`;
  if ('*~%>'.includes(n.type) && n.text === '') {
    return `${n.type}${n.type === '%' ? n.items.length / 2 : n.items.length}\r\n${n.items.map(serialize).join('')}`;
  }
  return `${n.type}${n.text}\r\n`;
}

/** [key, value] pairs of a map: a RESP3 map, or the flat array RESP2 sends. */
function pairs(n: Node): [Node, Node][] {
  const out: [Node, Node][] = [];
  for (let i = 0; i < n.items.length; i += 2) out.push([n.items[i], n.items[i + 1]]);
  return out;
}

function setPairs(n: Node, kept: [Node, Node][]): void {
  n.items = kept.flat();
}

/** Normalization 1 for an INFO entry: its subcommands, kept to `shared` and sorted by name. */
function normalizeInfo(entry: Node, shared: ReadonlySet<string>): Node {
  const subs = entry.items[9];
  if (subs.items.length > 0) {
    subs.items = subs.items.filter((s) => shared.has(s.items[0].text)).sort((a, b) => a.items[0].text.localeCompare(b.items[0].text));
  }
  return entry;
}

/** Normalizations 1 and 2 for a DOCS entry (a map, or a flat array in RESP2). */
function normalizeDocs(entry: Node, shared: ReadonlySet<string>): Node {
  const kept = pairs(entry).filter(([k]) => k.text !== 'history' && k.text !== 'arguments');
  for (const [k, v] of kept) {
    if (k.text !== 'subcommands') continue;
    const subs = pairs(v)
      .filter(([name]) => shared.has(name.text))
      .sort(([a], [b]) => a.text.localeCompare(b.text));
    for (const [, doc] of subs) normalizeDocs(doc, shared);
    setPairs(v, subs);
  }
  setPairs(entry, kept);
  return entry;
}

function isNull(n: Node): boolean {
  return n.type === '_' || n.text === '-1';
}

async function ask(c: RawClient, ...cmd: string[]): Promise<Node> {
  c.write(resp(...cmd));
  const raw = await c.reply();
  return parse(Buffer.from(raw, 'latin1'))[0];
}

describe('COMMAND INFO and COMMAND DOCS equal redis-server 7.0\'s', () => {
  const servers = compareServersForSuite();

  const names = commandTable.all.map((s) => s.name);
  const allNames = new Set(commandTable.all.flatMap((s) => [s.name, ...(s.subcommands ?? []).map((x) => x.name)]));

  for (const proto of ['2', '3'] as const) {
    it(`COMMAND INFO, RESP${proto}: every command Redis 7.0 knows`, async () => {
      const a = await RawClient.connect(servers.ours.port);
      const b = await RawClient.connect(servers.redis.port);
      try {
        if (proto === '3') await Promise.all([ask(a, 'HELLO', '3'), ask(b, 'HELLO', '3')]);
        const shared = new Set([...allNames].filter((n) => !NEWER_THAN_7_0.has(n)));
        const unknownToRedis: string[] = [];
        let compared = 0;
        for (const name of names) {
          const [mine] = (await ask(a, 'COMMAND', 'INFO', name)).items;
          const [theirs] = (await ask(b, 'COMMAND', 'INFO', name)).items;
          assert.ok(!isNull(mine), `${name} is in our table`);
          if (isNull(theirs)) {
            unknownToRedis.push(name);
            continue;
          }
          assert.equal(serialize(normalizeInfo(mine, shared)), serialize(normalizeInfo(theirs, shared)), `COMMAND INFO ${name}`);
          compared++;
        }
        assert.deepEqual(unknownToRedis.sort(), [...NEWER_THAN_7_0].filter((n) => !n.includes('|')).sort());
        assert.equal(compared, names.length - unknownToRedis.length);
        // The subcommands Redis lacks: exactly the pinned ones.
        for (const name of [...allNames].filter((n) => n.includes('|'))) {
          const container = name.split('|')[0];
          if (NEWER_THAN_7_0.has(container)) continue; // a container of ours alone: no Redis entry
          const [info] = (await ask(b, 'COMMAND', 'INFO', container)).items;
          assert.equal(info.items[9].items.some((s) => s.items[0].text === name), !NEWER_THAN_7_0.has(name), name);
        }
      } finally {
        a.destroy();
        b.destroy();
      }
    });

    it(`COMMAND DOCS, RESP${proto}: summary, since, group, complexity, doc flags, deprecation`, async () => {
      const a = await RawClient.connect(servers.ours.port);
      const b = await RawClient.connect(servers.redis.port);
      try {
        if (proto === '3') await Promise.all([ask(a, 'HELLO', '3'), ask(b, 'HELLO', '3')]);
        const shared = new Set([...allNames].filter((n) => !NEWER_THAN_7_0.has(n)));
        for (const name of names.filter((n) => !NEWER_THAN_7_0.has(n))) {
          const mine = await ask(a, 'COMMAND', 'DOCS', name);
          const theirs = await ask(b, 'COMMAND', 'DOCS', name);
          assert.equal(mine.items.length, 2, name);
          assert.equal(theirs.items.length, 2, name);
          normalizeDocs(mine.items[1], shared);
          normalizeDocs(theirs.items[1], shared);
          assert.equal(serialize(mine), serialize(theirs), `COMMAND DOCS ${name}`);
        }
      } finally {
        a.destroy();
        b.destroy();
      }
    });
  }

  it('COMMAND INFO and DOCS of a subcommand by its container|sub name, as Redis 7.0', async () => {
    const a = await RawClient.connect(servers.ours.port);
    const b = await RawClient.connect(servers.redis.port);
    try {
      for (const name of ['client|list', 'config|set', 'CONFIG|GET', 'command|docs', 'cluster|slots', 'client|nosuch']) {
        for (const sub of ['INFO', 'DOCS']) {
          const mine = serialize(await ask(a, 'COMMAND', sub, name));
          const theirs = await ask(b, 'COMMAND', sub, name);
          if (sub === 'DOCS' && theirs.items.length === 2) normalizeDocs(theirs.items[1], allNames);
          assert.equal(mine, serialize(theirs), `COMMAND ${sub} ${name}`);
        }
      }
    } finally {
      a.destroy();
      b.destroy();
    }
  });

  it('COMMAND, COMMAND COUNT, COMMAND LIST and COMMAND INFO without names cover the whole table', async () => {
    const a = await RawClient.connect(servers.ours.port);
    try {
      assert.equal(serialize(await ask(a, 'COMMAND', 'COUNT')), `:${names.length}\r\n`);
      assert.deepEqual((await ask(a, 'COMMAND', 'LIST')).items.map((n) => n.text), names);
      const all = await ask(a, 'COMMAND');
      const infoAll = await ask(a, 'COMMAND', 'INFO');
      assert.equal(all.items.length, names.length);
      assert.equal(serialize(infoAll), serialize(all));
      for (let i = 0; i < names.length; i++) {
        const [one] = (await ask(a, 'COMMAND', 'INFO', names[i])).items;
        assert.equal(serialize(all.items[i]), serialize(one), names[i]);
      }
      const docs = await ask(a, 'COMMAND', 'DOCS');
      assert.deepEqual(pairs(docs).map(([k]) => k.text), names);
    } finally {
      a.destroy();
    }
  });
});
