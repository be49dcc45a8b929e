/**
 * Dotted config keys that validate but whose feature is not built yet, so the server can warn
 * instead of silently ignoring them. Remove a key from this list in the same commit that makes
 * it work.
 */
export const INACTIVE_KEYS: readonly string[] = [
  'output_compression',
];

function isTable(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Which INACTIVE_KEYS the raw (pre-validation) TOML object sets; a table counts if present. */
export function inactiveKeysSet(raw: unknown): string[] {
  return INACTIVE_KEYS.filter((dotted) => {
    let node: unknown = raw;
    for (const part of dotted.split('.')) {
      if (!isTable(node) || !Object.hasOwn(node, part)) return false;
      node = node[part];
    }
    return true;
  });
}
