/**
 * Layering rules that keep the rules about values in one place: commands reach stored data only
 * through the keyspace API (src/storage/keyspace.ts), never overlays, queues, shards or SQL.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const SRC = new URL('../../../src/', import.meta.url).pathname;

/** Every module specifier a TypeScript file imports or re-exports from. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/(?:import|export)\s[^;]*?from\s+'([^']+)'/g), ...text.matchAll(/import\(\s*'([^']+)'\s*\)/g)].map((m) => m[1]);
}

test('src/commands imports nothing from src/storage but the keyspace API', () => {
  const dir = join(SRC, 'commands');
  const files = readdirSync(dir).filter((f) => f.endsWith('.ts'));
  assert.ok(files.length > 10, `found ${files.length} command modules in ${dir}`);
  const offending: string[] = [];
  for (const f of files) {
    for (const spec of importsOf(join(dir, f))) {
      if (spec.includes('/storage/') && spec !== '../storage/keyspace.js') offending.push(`${f} imports ${spec}`);
    }
  }
  assert.deepEqual(offending, []);
});

test('the rule above would catch a command importing the store', () => {
  const probe = join(SRC, 'commands', 'strings.ts');
  // The matcher must see the real imports of a command module, or the rule above proves nothing.
  assert.ok(importsOf(probe).includes('../storage/keyspace.js'));
  const sample = "import { Store } from '../storage/store.js';\nexport { x } from '../storage/shard.js';";
  const found = [...sample.matchAll(/(?:import|export)\s[^;]*?from\s+'([^']+)'/g)].map((m) => m[1]);
  assert.deepEqual(found, ['../storage/store.js', '../storage/shard.js']);
});
