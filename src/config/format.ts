// Turns zod issues into "key "<path>": <problem>; allowed: <allowed>" lines. The "allowed" part
// is read off the schema itself (enum values, numeric bounds, table keys) so it can never drift
// from what is actually validated.
import { z } from 'zod';
import { allowedHints } from './schema.js';

export interface Problem {
  /** Dotted path with array indices in brackets, e.g. cluster.slot_ranges[1].end */
  path: string;
  /** First path segment, used to attribute the value to a CLI flag or the file. */
  topKey: string | undefined;
  problem: string;
  allowed: string;
  description: string | undefined;
}

type Segment = PropertyKey;

function formatPath(path: readonly Segment[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else out += out === '' ? String(seg) : `.${String(seg)}`;
  }
  return out;
}

/** The schema and its wrappers (default, optional, pipe...), outermost first. */
function layers(schema: z.ZodType): z.ZodType[] {
  const out: z.ZodType[] = [schema];
  let cur: z.ZodType = schema;
  for (;;) {
    if (cur instanceof z.ZodDefault || cur instanceof z.ZodPrefault || cur instanceof z.ZodOptional || cur instanceof z.ZodNullable) {
      cur = cur.unwrap() as z.ZodType;
    } else if (cur instanceof z.ZodPipe) {
      cur = cur.in as z.ZodType;
    } else {
      return out;
    }
    out.push(cur);
  }
}

function core(schema: z.ZodType): z.ZodType {
  const l = layers(schema);
  return l[l.length - 1] ?? schema;
}

function schemaAt(root: z.ZodType, path: readonly Segment[]): z.ZodType | undefined {
  let cur: z.ZodType | undefined = root;
  for (const seg of path) {
    if (cur === undefined) return undefined;
    const inner = core(cur);
    if (inner instanceof z.ZodObject && typeof seg === 'string') {
      const shape = inner.shape as Record<string, z.ZodType>;
      cur = Object.hasOwn(shape, seg) ? shape[seg] : undefined;
    } else if (inner instanceof z.ZodArray && typeof seg === 'number') {
      cur = inner.element as z.ZodType;
    } else {
      return undefined;
    }
  }
  return cur;
}

function valueAt(raw: unknown, path: readonly Segment[]): unknown {
  let cur: unknown = raw;
  for (const seg of path) {
    if (typeof cur !== 'object' || cur === null) return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[seg];
  }
  return cur;
}

export function tableKeys(schema: z.ZodType | undefined): string[] {
  if (schema === undefined) return [];
  const inner = core(schema);
  return inner instanceof z.ZodObject ? Object.keys(inner.shape as Record<string, unknown>) : [];
}

function typeName(schema: z.ZodType): string {
  const s = core(schema);
  if (s instanceof z.ZodNumber) return s.isInt ? 'integer' : 'number';
  if (s instanceof z.ZodString || s instanceof z.ZodEnum) return 'string';
  if (s instanceof z.ZodBoolean) return 'boolean';
  if (s instanceof z.ZodObject) return 'table';
  if (s instanceof z.ZodArray) return 'array';
  return 'value';
}

export function describeValue(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (typeof v === 'string') return `string ${JSON.stringify(v)}`;
  if (typeof v === 'number') return Number.isInteger(v) ? `integer ${v}` : `float ${v}`;
  if (typeof v === 'boolean') return `boolean ${v}`;
  if (typeof v === 'bigint') return `integer ${v}`;
  if (v instanceof Date) return `datetime ${v.toISOString()}`;
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'object' && v !== null) return 'table';
  return typeof v;
}

function allowedFor(schema: z.ZodType | undefined): string {
  if (schema === undefined) return 'see the documentation';
  for (const layer of layers(schema)) {
    const hint = allowedHints.get(layer);
    if (hint !== undefined) return hint.allowed;
  }
  const s = core(schema);
  if (s instanceof z.ZodEnum) return `one of ${s.options.map((o) => JSON.stringify(o)).join(', ')}`;
  if (s instanceof z.ZodBoolean) return 'true or false';
  if (s instanceof z.ZodObject) return `a table with keys ${tableKeys(s).join(', ')}`;
  if (s instanceof z.ZodArray) return `an array of ${allowedFor(s.element as z.ZodType)}`;
  if (s instanceof z.ZodString) return (s.minLength ?? 0) > 0 ? 'a non-empty string' : 'a string';
  if (s instanceof z.ZodNumber) {
    const kind = s.isInt ? 'integer' : 'number';
    const min = s.minValue;
    const max = s.maxValue;
    const hasMin = min !== null && min > Number.MIN_SAFE_INTEGER;
    const hasMax = max !== null && max < Number.MAX_SAFE_INTEGER;
    if (hasMin && hasMax) return `${kind} ${min}..${max}`;
    if (hasMin) return `${kind} >= ${min}`;
    if (hasMax) return `${kind} <= ${max}`;
    return `an ${kind}`;
  }
  return 'see the documentation';
}

/** Edit distance, for "did you mean" on misspelt keys. */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      row.push(Math.min((prev[j] ?? 0) + 1, (row[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + cost));
    }
    prev = row;
  }
  return prev[b.length] ?? 0;
}

function suggestion(key: string, valid: string[]): string {
  let best: string | undefined;
  let bestDist = 3; // further than 2 edits is a different word, not a typo
  for (const v of valid) {
    const d = distance(key.toLowerCase(), v);
    if (d < bestDist) {
      best = v;
      bestDist = d;
    }
  }
  return best === undefined ? '' : ` (did you mean "${best}"?)`;
}

export function issueToProblems(issue: z.core.$ZodIssue, raw: unknown, root: z.ZodType): Problem[] {
  const path = issue.path;
  const schema = schemaAt(root, path);
  const base = {
    path: formatPath(path),
    topKey: path.length > 0 ? String(path[0]) : undefined,
    description: schema?.description,
  };
  const value = valueAt(raw, path);

  switch (issue.code) {
    case 'unrecognized_keys': {
      const valid = tableKeys(schema ?? root);
      const where = path.length === 0 ? 'top-level keys' : `keys of [${base.path}]`;
      return issue.keys.map((key) => ({
        path: formatPath([...path, key]),
        topKey: path.length > 0 ? String(path[0]) : key,
        description: undefined,
        problem: `unknown key "${key}"${suggestion(key, valid)}`,
        allowed: `${where}: ${valid.join(', ')}`,
      }));
    }
    case 'invalid_type': {
      const expected = schema === undefined ? issue.expected : typeName(schema);
      const problem = value === undefined ? `missing required key (${expected})` : `expected ${expected}, got ${describeValue(value)}`;
      return [{ ...base, problem, allowed: allowedFor(schema) }];
    }
    case 'invalid_value':
      return [{ ...base, problem: `${describeValue(value)} is not a valid value`, allowed: allowedFor(schema) }];
    case 'too_small':
    case 'too_big': {
      const sized = typeof value === 'string' || Array.isArray(value);
      const small = issue.code === 'too_small';
      const dir = sized ? (small ? 'too short' : 'too long') : small ? 'too small' : 'too big';
      return [{ ...base, problem: `${describeValue(value)} is ${dir}`, allowed: allowedFor(schema) }];
    }
    case 'custom': {
      const params: unknown = issue.params;
      const hinted =
        typeof params === 'object' && params !== null && 'allowed' in params && typeof params.allowed === 'string'
          ? params.allowed
          : undefined;
      return [{ ...base, problem: issue.message, allowed: hinted ?? allowedFor(schema) }];
    }
    default:
      return [{ ...base, problem: issue.message, allowed: allowedFor(schema) }];
  }
}
