import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse, TomlError } from 'smol-toml';
import { issueToProblems, type Problem } from './format.js';
import { inactiveKeysSet } from './inactive.js';
import { configSchema, type Config } from './schema.js';

/** A configuration problem; `message` is complete and meant to be printed as-is. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  /** One line per problem (empty for file/syntax errors, which have a single cause). */
  readonly problems: readonly string[];

  constructor(message: string, problems: readonly string[] = []) {
    super(message);
    this.problems = problems;
  }
}

export interface CliOverrides {
  addr?: string;
  dataDir?: string;
  shards?: number;
}

export interface LoadedConfig {
  config: Config;
  /** Absolute path of the file that was read, or null when running on defaults. */
  file: string | null;
  /** Keys the file sets whose feature is not implemented yet (see inactive.ts). */
  inactive: string[];
}

/** Config key each CLI override writes, and the flag name used when blaming it in errors. */
const OVERRIDE_KEYS: Record<keyof CliOverrides, { key: string; flag: string }> = {
  addr: { key: 'addr', flag: '--addr' },
  dataDir: { key: 'data_dir', flag: '--data-dir' },
  shards: { key: 'num_shards', flag: '--shards' },
};

function locateFile(configPath: string | undefined, cwd: string): string | null {
  if (configPath !== undefined) {
    const file = resolve(cwd, configPath);
    if (!existsSync(file)) throw new ConfigError(`config file not found: ${file} (given with --config ${configPath})`);
    return file;
  }
  const implicit = join(cwd, 'config.toml');
  return existsSync(implicit) ? implicit : null;
}

function readToml(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read config file ${file}: ${err instanceof Error ? err.message : String(err)}`);
  }
  try {
    return parse(text);
  } catch (err) {
    if (err instanceof TomlError) {
      // smol-toml's message is "Invalid TOML document: <reason>\n\n<code excerpt>".
      const reason = err.message.split('\n')[0]?.replace(/^Invalid TOML document: /, '') ?? err.message;
      throw new ConfigError(
        `${file}:${err.line}:${err.column}: TOML syntax error at line ${err.line}, column ${err.column}: ${reason}\n${err.codeblock.trimEnd()}`,
      );
    }
    throw err;
  }
}

function applyOverrides(raw: Record<string, unknown>, overrides: CliOverrides): { merged: Record<string, unknown>; fromCli: Map<string, string> } {
  const merged = { ...raw };
  const fromCli = new Map<string, string>();
  for (const name of Object.keys(OVERRIDE_KEYS) as (keyof CliOverrides)[]) {
    const value = overrides[name];
    if (value === undefined) continue;
    const { key, flag } = OVERRIDE_KEYS[name];
    merged[key] = value;
    fromCli.set(key, flag);
  }
  return { merged, fromCli };
}

function formatProblem(p: Problem, source: string): string {
  const about = p.description === undefined ? '' : ` — ${p.description}`;
  return `${source}: key "${p.path}": ${p.problem}; allowed: ${p.allowed}${about}`;
}

export function loadConfig(opts: { configPath?: string; cwd?: string; overrides?: CliOverrides } = {}): LoadedConfig {
  const cwd = opts.cwd ?? process.cwd();
  const file = locateFile(opts.configPath, cwd);
  const raw = file === null ? {} : readToml(file);
  const { merged, fromCli } = applyOverrides(raw, opts.overrides ?? {});

  const result = configSchema.safeParse(merged);
  if (!result.success) {
    const fileLabel = file ?? '(defaults, no config file)';
    const lines = result.error.issues
      .flatMap((issue) => issueToProblems(issue, merged, configSchema))
      .map((p) => {
        const flag = p.topKey === undefined ? undefined : fromCli.get(p.topKey);
        return formatProblem(p, flag === undefined ? fileLabel : `command line ${flag}`);
      });
    // zod can report one bad value twice (e.g. the safe-integer check and the range check);
    // the formatter words both identically, so dedupe on the final text.
    const problems = [...new Set(lines)];
    const header = `invalid configuration (${problems.length} problem${problems.length === 1 ? '' : 's'}):`;
    throw new ConfigError([header, ...problems.map((l) => `  ${l}`)].join('\n'), problems);
  }

  return { config: result.data, file, inactive: inactiveKeysSet(raw) };
}
