/**
 * A strict parser for the Prometheus text exposition format 0.0.4, written from its rules (no
 * parser package is installed): it throws on anything a Prometheus server would reject, and on
 * histogram families whose buckets are not cumulative or disagree with their _count.
 */

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Family {
  name: string;
  type: 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';
  help: string | null;
  samples: Sample[];
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

function parseValue(text: string, line: number): number {
  if (text === '+Inf' || text === 'Inf') return Infinity;
  if (text === '-Inf') return -Infinity;
  if (text === 'NaN') return NaN;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) throw new Error(`line ${line}: bad value "${text}"`);
  return Number(text);
}

/** The family a sample name belongs to, given the families declared so far. */
function familyOf(name: string, families: Map<string, Family>): string {
  for (const suffix of ['_bucket', '_sum', '_count']) {
    if (name.endsWith(suffix)) {
      const base = name.slice(0, -suffix.length);
      const f = families.get(base);
      if (f !== undefined && (f.type === 'histogram' || (f.type === 'summary' && suffix !== '_bucket'))) return base;
    }
  }
  return name;
}

export function parsePrometheusText(text: string): Map<string, Family> {
  if (!text.endsWith('\n')) throw new Error('exposition must end with a line feed');
  const families = new Map<string, Family>();
  const closed = new Set<string>();
  let current: string | null = null;
  const seen = new Set<string>();
  const lines = text.split('\n');
  lines.pop();
  lines.forEach((raw, i) => {
    const n = i + 1;
    if (raw.trim() === '') return;
    if (raw.startsWith('#')) {
      const m = /^#\s+(HELP|TYPE)\s+(\S+)(?:\s+(.*))?$/.exec(raw);
      if (m === null) return; // a plain comment
      const [, kind, name, rest = ''] = m;
      if (!METRIC_NAME.test(name)) throw new Error(`line ${n}: bad metric name "${name}"`);
      let f = families.get(name);
      if (f === undefined) {
        if (closed.has(name)) throw new Error(`line ${n}: ${name} declared again after its samples`);
        f = { name, type: 'untyped', help: null, samples: [] };
        families.set(name, f);
      }
      if (kind === 'HELP') {
        if (f.help !== null) throw new Error(`line ${n}: second HELP for ${name}`);
        if (/\\[^\\n]/.test(rest.replace(/\\\\/g, ''))) throw new Error(`line ${n}: bad escape in HELP`);
        f.help = rest;
      } else {
        if (f.samples.length > 0) throw new Error(`line ${n}: TYPE for ${name} after its samples`);
        if (!TYPES.has(rest)) throw new Error(`line ${n}: unknown type "${rest}"`);
        f.type = rest as Family['type'];
      }
      return;
    }
    // name{labels} value [timestamp]
    let p = 0;
    const nameMatch = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(raw);
    if (nameMatch === null) throw new Error(`line ${n}: no metric name: ${raw}`);
    const name = nameMatch[0];
    p = name.length;
    const labels: Record<string, string> = {};
    if (raw[p] === '{') {
      p++;
      for (;;) {
        if (raw[p] === '}') {
          p++;
          break;
        }
        const ln = /^[a-zA-Z_][a-zA-Z0-9_]*/.exec(raw.slice(p));
        if (ln === null || !LABEL_NAME.test(ln[0])) throw new Error(`line ${n}: bad label name at ${p}: ${raw}`);
        p += ln[0].length;
        if (raw[p] !== '=' || raw[p + 1] !== '"') throw new Error(`line ${n}: expected ="`);
        p += 2;
        let value = '';
        for (;;) {
          const c = raw[p];
          if (c === undefined) throw new Error(`line ${n}: unterminated label value`);
          if (c === '"') {
            p++;
            break;
          }
          if (c === '\\') {
            const e = raw[p + 1];
            if (e === '\\') value += '\\';
            else if (e === '"') value += '"';
            else if (e === 'n') value += '\n';
            else throw new Error(`line ${n}: bad escape \\${e}`);
            p += 2;
            continue;
          }
          value += c;
          p++;
        }
        if (Object.hasOwn(labels, ln[0])) throw new Error(`line ${n}: label ${ln[0]} twice`);
        labels[ln[0]] = value;
        if (raw[p] === ',') p++;
        else if (raw[p] !== '}') throw new Error(`line ${n}: expected , or }`);
      }
    }
    const rest = raw.slice(p);
    const vm = /^[ \t]+(\S+)(?:[ \t]+(-?\d+))?[ \t]*$/.exec(rest);
    if (vm === null) throw new Error(`line ${n}: bad value part "${rest}"`);
    const value = parseValue(vm[1], n);
    const family = familyOf(name, families);
    if (current !== family) {
      if (current !== null) closed.add(current);
      if (closed.has(family)) throw new Error(`line ${n}: samples of ${family} are not grouped together`);
      current = family;
    }
    let f = families.get(family);
    if (f === undefined) {
      f = { name: family, type: 'untyped', help: null, samples: [] };
      families.set(family, f);
    }
    const id = `${name}${JSON.stringify(Object.entries(labels).sort())}`;
    if (seen.has(id)) throw new Error(`line ${n}: duplicate sample ${id}`);
    seen.add(id);
    if (f.type === 'counter' && (value < 0 || Number.isNaN(value))) throw new Error(`line ${n}: counter ${name} is ${value}`);
    f.samples.push({ name, labels, value });
  });
  for (const f of families.values()) if (f.type === 'histogram') checkHistogram(f);
  return families;
}

/** Buckets per label set: increasing `le`, non-decreasing counts, +Inf present and equal to _count. */
function checkHistogram(f: Family): void {
  const groups = new Map<string, { le: number; count: number }[]>();
  const counts = new Map<string, number>();
  for (const s of f.samples) {
    const { le, ...rest } = s.labels;
    const key = JSON.stringify(Object.entries(rest).sort());
    if (s.name === `${f.name}_bucket`) {
      if (le === undefined) throw new Error(`${f.name}: bucket without le`);
      const list = groups.get(key) ?? [];
      list.push({ le: parseValue(le, 0), count: s.value });
      groups.set(key, list);
    } else if (s.name === `${f.name}_count`) {
      counts.set(key, s.value);
    } else if (s.name !== `${f.name}_sum`) {
      throw new Error(`${f.name}: unexpected sample ${s.name}`);
    }
  }
  for (const [key, buckets] of groups) {
    for (let i = 1; i < buckets.length; i++) {
      if (!(buckets[i].le > buckets[i - 1].le)) throw new Error(`${f.name}${key}: le not increasing`);
      if (buckets[i].count < buckets[i - 1].count) throw new Error(`${f.name}${key}: buckets not cumulative`);
    }
    const last = buckets[buckets.length - 1];
    if (last.le !== Infinity) throw new Error(`${f.name}${key}: no +Inf bucket`);
    if (counts.get(key) !== last.count) throw new Error(`${f.name}${key}: _count ${counts.get(key)} != +Inf bucket ${last.count}`);
  }
}

/** The value of the one sample with exactly these labels (undefined if none). */
export function sampleValue(families: Map<string, Family>, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const f of families.values()) {
    for (const s of f.samples) {
      if (s.name !== name) continue;
      const a = Object.entries(s.labels).sort();
      const b = Object.entries(labels).sort();
      if (JSON.stringify(a) === JSON.stringify(b)) return s.value;
    }
  }
  return undefined;
}
