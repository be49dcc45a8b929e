import { parseArgs } from 'node:util';
import type { CliOverrides } from './load.js';

export type CliCommand =
  | { kind: 'run'; configPath?: string; overrides: CliOverrides }
  | { kind: 'help' }
  | { kind: 'version' };

export class CliError extends Error {
  override readonly name = 'CliError';
}

export const HELP_TEXT = `Usage: blobasaur [options]

A Redis-protocol blob store backed by SQLite shards.

Options:
  --config FILE       read settings from FILE
  --addr HOST:PORT    listen address (overrides "addr"), e.g. 0.0.0.0:6379 or [::1]:6379
  --data-dir DIR      directory for the shard files (overrides "data_dir")
  --shards N          number of SQLite shards (overrides "num_shards")
  -h, --help          print this help and exit
  -v, --version       print the version and exit

Without --config, ./config.toml is read if it exists; otherwise built-in defaults are used.
Options also accept the --flag=value form.
`;

const OPTIONS = {
  config: { type: 'string' },
  addr: { type: 'string' },
  'data-dir': { type: 'string' },
  shards: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'v' },
} as const;

type OptionName = keyof typeof OPTIONS;

function isOptionName(name: string): name is OptionName {
  return Object.hasOwn(OPTIONS, name);
}

export function parseCli(argv: string[]): CliCommand {
  // Non-strict mode plus tokens: node's own strict errors are long and version-dependent,
  // so every check is done here with our own wording.
  const { tokens } = parseArgs({ args: argv, options: OPTIONS, strict: false, allowPositionals: true, tokens: true });

  const values = new Map<OptionName, string>();
  let help = false;
  let version = false;
  const errors: string[] = [];

  for (const token of tokens) {
    if (token.kind === 'positional') {
      errors.push(`unexpected argument "${token.value}"`);
      continue;
    }
    if (token.kind !== 'option') continue; // the "--" terminator
    const { name, rawName } = token;
    if (!isOptionName(name)) {
      errors.push(`unknown option ${rawName}`);
      continue;
    }
    const spec = OPTIONS[name];
    if (spec.type === 'boolean') {
      if (token.value !== undefined) errors.push(`option ${rawName} takes no value`);
      else if (name === 'help') help = true;
      else version = true;
      continue;
    }
    // parseArgs happily takes the next flag as the value ("--addr --shards 4"); treat that as
    // a forgotten value. Values that really start with "-" can use --flag=value.
    const value = token.value;
    if (value === undefined || value === '' || (!token.inlineValue && value.startsWith('-'))) {
      errors.push(`option ${rawName} needs a value`);
      continue;
    }
    values.set(name, value);
  }

  // Asking for help beats complaining about the rest of the line.
  if (help) return { kind: 'help' };
  if (version) return { kind: 'version' };
  if (errors.length > 0) throw new CliError(`${errors.join('\n')}\nRun "blobasaur --help" for usage.`);

  const overrides: CliOverrides = {};
  const addr = values.get('addr');
  if (addr !== undefined) overrides.addr = addr;
  const dataDir = values.get('data-dir');
  if (dataDir !== undefined) overrides.dataDir = dataDir;
  const shards = values.get('shards');
  if (shards !== undefined) {
    // Only the shape is checked here; the 1..1024 range belongs to the config schema so the
    // message matches the one for num_shards in config.toml.
    const n = /^[+-]?\d+$/.test(shards) ? Number(shards) : NaN;
    if (!Number.isSafeInteger(n)) {
      throw new CliError(`option --shards expects a whole number, got "${shards}"\nRun "blobasaur --help" for usage.`);
    }
    overrides.shards = n;
  }

  const configPath = values.get('config');
  return configPath === undefined ? { kind: 'run', overrides } : { kind: 'run', configPath, overrides };
}
