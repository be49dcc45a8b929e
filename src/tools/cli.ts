/**
 * The operator subcommands: `blobasaur backup|vacuum|migrate|check|repair|import …`. The first five work on a data directory
 * given with --data-dir, or the data_dir of the config (--config FILE, else ./config.toml, else the
 * default ./blob_data). Progress goes to stderr (progress.ts: a bar on a terminal, plain lines
 * otherwise); the result goes to stdout.
 */
import { resolve } from 'node:path';
import { loadConfig } from '../config/index.js';
import { backupDataDir } from './backup.js';
import { migrateDataDir, MigrateError, type MigrateProgress } from './migrate.js';
import { progress } from './progress.js';
import { readShardCount, vacuumDataDir } from './vacuum.js';
import { importFromRedis, ImportError, type Endpoint, type ImportProgress } from './import.js';
import { checkDataDir } from './check.js';
import { RepairError, repairDataDir } from './repair.js';

export const TOOL_COMMANDS = ['backup', 'vacuum', 'migrate', 'check', 'repair', 'import'] as const;
export type ToolCommand = (typeof TOOL_COMMANDS)[number];

export function isToolCommand(word: string | undefined): word is ToolCommand {
  return word !== undefined && (TOOL_COMMANDS as readonly string[]).includes(word);
}

const USAGE: Record<ToolCommand, string> = {
  backup: `Usage: blobasaur backup --to DIR [--data-dir DIR | --config FILE] [--no-verify]
  Online backup of every shard (the server may be running and taking writes) into DIR, which must
  be new or empty: shard files, blobasaur.json and manifest.json. Restore: start a server on DIR.`,
  vacuum: `Usage: blobasaur vacuum [--data-dir DIR | --config FILE] [--mode incremental|full] [--budget-mb N]
  incremental (default): returns free pages to the file system, at most N MiB per shard; safe
  while the server runs. full: rewrites every shard file (stop the server first).`,
  migrate: `Usage: blobasaur migrate --to-shards M [--data-dir DIR | --config FILE] [--batch N]
  With the server stopped, changes the shard count to M, moving only the keys whose shard changes
  (N rows per transaction, default 1000). Resumable: if interrupted, run the same command again.`,
  import: `Usage: blobasaur import --from HOST:PORT [--to HOST:PORT] [options]
  Copies a live Redis (strings and hashes, with their TTLs) into a running blobasaur server:
  SCAN on the source, DUMP + PTTL there, RESTORE … ABSTTL here (GET/HGETALL if DUMP is refused).
  Keys of other types (list, set, zset, stream) are reported and skipped.
    --from HOST:PORT          the Redis to copy from (required)
    --to HOST:PORT            this server (default 127.0.0.1:6379)
    --from-user U / --to-user U          ACL user names for AUTH
    --from-password P / --to-password P  passwords (or the environment variables
                              BLOBASAUR_IMPORT_FROM_PASSWORD / BLOBASAUR_IMPORT_TO_PASSWORD)
    --from-db N               the source database (SELECT N; default 0)
    --match PATTERN           only keys matching this SCAN pattern
    --count N                 SCAN COUNT hint (default 100)
    --replace                 overwrite keys that exist here (default: they fail as BUSYKEY)
    --pipeline N              keys in flight at once (default 32; memory ~ N x largest value)
    --plain                   never use DUMP: read with GET / HGETALL
    --timeout-ms N            per-request timeout (default 30000)`,
  check: `Usage: blobasaur check [--data-dir DIR | --config FILE]
  SQLite's integrity_check of every shard, then every stored value against its checksum.
  Read-only, safe while the server runs. Exit code 0: every shard is sound; 1: a shard is
  damaged (run blobasaur repair with the server stopped); 2: usage error.`,
  repair: `Usage: blobasaur repair [--data-dir DIR | --config FILE] [--shard N]
  With the server stopped, salvages every readable row of each shard that fails the check (or of
  shard N, checked or not) into a new file; the damaged file is kept as shard-N.db.corrupt.
  Values failing their checksum are not copied. Reports rows saved and lost.`,
};

/** Appended to `blobasaur --help`. */
export const TOOLS_HELP = `Operator subcommands (blobasaur <subcommand> --help for each):
  blobasaur backup --to DIR [--data-dir DIR]        online backup of every shard
  blobasaur vacuum [--data-dir DIR] [--mode incremental|full] [--budget-mb N]
  blobasaur migrate --to-shards M [--data-dir DIR]  change the shard count (server stopped)
  blobasaur import --from HOST:PORT [--to HOST:PORT] copy a live Redis into a running server
  blobasaur check [--data-dir DIR]                  integrity and checksums of every shard
  blobasaur repair [--data-dir DIR] [--shard N]     salvage damaged shards (server stopped)`;

class UsageError extends Error {}

interface Parsed {
  flags: Map<string, string>;
  switches: Set<string>;
}

function parseArgs(cmd: ToolCommand, argv: string[], valued: string[], switches: string[]): Parsed {
  const out: Parsed = { flags: new Map(), switches: new Set() };
  for (let i = 0; i < argv.length; i++) {
    let arg = argv[i];
    let value: string | undefined;
    const eq = arg.indexOf('=');
    if (arg.startsWith('--') && eq > 0) {
      value = arg.slice(eq + 1);
      arg = arg.slice(0, eq);
    }
    if (switches.includes(arg)) {
      out.switches.add(arg);
      continue;
    }
    if (!valued.includes(arg)) throw new UsageError(`blobasaur ${cmd}: unknown option ${argv[i]}`);
    value ??= argv[++i];
    if (value === undefined) throw new UsageError(`blobasaur ${cmd}: ${arg} needs a value`);
    out.flags.set(arg, value);
  }
  return out;
}

function dataDirOf(p: Parsed): string {
  const dir = p.flags.get('--data-dir');
  if (dir !== undefined) return resolve(dir);
  const { config } = loadConfig({ configPath: p.flags.get('--config') });
  process.umask(config.umask);
  return resolve(config.data_dir);
}

function positiveInt(cmd: ToolCommand, flag: string, value: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1) throw new UsageError(`blobasaur ${cmd}: ${flag} must be a positive integer, got "${value}"`);
  return Number(value);
}

function endpoint(cmd: ToolCommand, flag: string, value: string): Endpoint {
  const m = /^(\[[^\]]+\]|[^:]+):(\d+)$/.exec(value);
  if (m === null) throw new UsageError(`blobasaur ${cmd}: ${flag} must be HOST:PORT, got "${value}"`);
  return { host: m[1].replace(/^\[|\]$/g, ''), port: Number(m[2]) };
}

/**
 * Import progress against the source's key count when the import started (a live source may grow
 * or shrink meanwhile, so the total follows what has been scanned): a bar on a terminal, a plain
 * line at most once a second otherwise.
 */
function importProgress(): (p: ImportProgress) => void {
  const bar = progress('import', 'keys');
  return (p) => {
    bar.update(p.scanned, Math.max(p.total, p.scanned), `${p.copied} copied, ${p.skipped} skipped, ${p.failed} failed, ${mib(p.bytes)}`);
    if (p.done) bar.done();
  };
}

function mib(bytes: number): string {
  return `${(bytes / 1048576).toFixed(1)} MiB`;
}

export async function runTool(cmd: ToolCommand, argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(`${USAGE[cmd]}\n`);
    return 0;
  }
  try {
    switch (cmd) {
      case 'backup': {
        const p = parseArgs(cmd, argv, ['--to', '--data-dir', '--config'], ['--no-verify']);
        const to = p.flags.get('--to');
        if (to === undefined) throw new UsageError('blobasaur backup: --to DIR is required');
        const dataDir = dataDirOf(p);
        const bar = progress('backup', 'shards');
        let copied = 0;
        const manifest = await backupDataDir(dataDir, to, {
          verify: !p.switches.has('--no-verify'),
          progress: (shard, of, bytes) => {
            copied += bytes;
            bar.update(shard + 1, of, `shard ${shard} copied, ${mib(copied)} so far`);
          },
        });
        bar.done();
        const bytes = manifest.shards.reduce((n, s) => n + s.bytes, 0);
        const rows = manifest.shards.every((s) => s.rows !== null) ? `${manifest.shards.reduce((n, s) => n + (s.rows ?? 0), 0)} rows, ` : '';
        process.stdout.write(
          `backup of ${dataDir} complete: ${manifest.num_shards} shards, ${rows}${mib(bytes)} in ${resolve(to)} ` +
            `(integrity ${manifest.shards.every((s) => s.integrity === 'ok') ? 'ok' : 'not checked'})\n`,
        );
        return 0;
      }
      case 'vacuum': {
        const p = parseArgs(cmd, argv, ['--data-dir', '--config', '--mode', '--budget-mb'], []);
        const mode = p.flags.get('--mode') ?? 'incremental';
        if (mode !== 'incremental' && mode !== 'full') throw new UsageError(`blobasaur vacuum: --mode must be incremental or full, got "${mode}"`);
        const budget = p.flags.get('--budget-mb');
        const budgetBytes = budget === undefined ? null : positiveInt(cmd, '--budget-mb', budget) * 1048576;
        const dataDir = dataDirOf(p);
        const bar = progress(`vacuum (${mode})`, 'shards');
        const shards = readShardCount(dataDir);
        const lines: string[] = [];
        let returned = 0;
        const results = vacuumDataDir(dataDir, mode, budgetBytes, (r) => {
          const note = mode === 'incremental' && r.autoVacuum !== 'incremental' ? ' (auto_vacuum is off for this file: use --mode full)' : '';
          lines.push(`shard ${r.shard}: ${mib(r.bytesBefore)} -> ${mib(r.bytesAfter)}, free pages ${r.freePagesBefore} -> ${r.freePagesAfter}${note}\n`);
          returned += r.bytesBefore - r.bytesAfter;
          bar.update(r.shard + 1, shards, `${mib(returned)} returned`);
        });
        bar.done();
        process.stdout.write(lines.join(''));
        const before = results.reduce((n, r) => n + r.bytesBefore, 0);
        const after = results.reduce((n, r) => n + r.bytesAfter, 0);
        process.stdout.write(`vacuum (${mode}) of ${dataDir}: ${mib(before)} -> ${mib(after)}, ${mib(before - after)} returned\n`);
        return 0;
      }
      case 'check': {
        const p = parseArgs(cmd, argv, ['--data-dir', '--config'], []);
        const dataDir = dataDirOf(p);
        const total = readShardCount(dataDir);
        const bar = progress('check', 'shards');
        let checked = 0;
        const results = checkDataDir(dataDir, (c) => {
          const chunked = c.chunkedValues === 0 ? '' : `, ${c.chunkedValues} stored in chunks (${c.chunks} chunks)`;
          const orphans = c.orphanBlobs === 0 ? '' : `, ${c.orphanBlobs} orphan blobs (reclaimed at the next start)`;
          const head = `shard ${c.shard} (${c.file}): ${c.ok ? `ok, ${c.rows} rows${chunked}${orphans}` : 'DAMAGED'}`;
          process.stdout.write(`${[head, ...c.problems.map((line) => `  ${line}`)].join('\n')}\n`);
          bar.update(++checked, total, `shard ${c.shard} ${c.ok ? 'ok' : 'damaged'}`);
        });
        bar.done();
        const bad = results.filter((c) => !c.ok).map((c) => c.shard);
        process.stdout.write(
          bad.length === 0
            ? `check of ${dataDir}: all ${results.length} shards ok\n`
            : `check of ${dataDir}: damaged shards ${bad.join(', ')}; stop the server and run blobasaur repair (docs/operations.md)\n`,
        );
        return bad.length === 0 ? 0 : 1;
      }
      case 'repair': {
        const p = parseArgs(cmd, argv, ['--data-dir', '--config', '--shard'], []);
        const shardFlag = p.flags.get('--shard');
        if (shardFlag !== undefined && !/^\d+$/.test(shardFlag)) throw new UsageError(`blobasaur repair: --shard must be a shard number, got "${shardFlag}"`);
        const dataDir = dataDirOf(p);
        const total = shardFlag === undefined ? readShardCount(dataDir) : 1;
        const bar = progress('repair', 'shards');
        let done = 0;
        const results = repairDataDir(dataDir, {
          shard: shardFlag === undefined ? undefined : Number(shardFlag),
          progress: (r) => {
            bar.update(++done, total, `shard ${r.shard} ${r.repaired ? 'rebuilt' : 'ok'}`);
            if (!r.repaired) {
              process.stdout.write(`shard ${r.shard}: ok, left alone\n`);
              return;
            }
            const lost = `${r.lost}${r.lostComplete ? '' : ' or more (the key index is damaged too)'}`;
            const names = r.lostKeys.length === 0 ? '' : `\n  lost: ${r.lostKeys.join(', ')}${r.lost > r.lostKeys.length ? ', …' : ''}`;
            process.stdout.write(`shard ${r.shard}: ${r.saved} rows saved, ${lost} lost; damaged file kept as ${r.keptAs}${names}\n`);
          },
        });
        bar.done();
        const repaired = results.filter((r) => r.repaired);
        process.stdout.write(
          repaired.length === 0
            ? `repair of ${dataDir}: no damaged shard, nothing to do\n`
            : `repair of ${dataDir}: ${repaired.length} shard(s) rebuilt, ${repaired.reduce((n, r) => n + r.saved, 0)} rows saved, ${repaired.reduce((n, r) => n + r.lost, 0)} lost\n`,
        );
        return 0;
      }
      case 'migrate': {
        const p = parseArgs(cmd, argv, ['--data-dir', '--config', '--to-shards', '--batch'], []);
        const to = p.flags.get('--to-shards');
        if (to === undefined) throw new UsageError('blobasaur migrate: --to-shards M is required');
        const batch = p.flags.get('--batch');
        const dataDir = dataDirOf(p);
        const bar = progress('migrate', 'rows scanned');
        const show = (pr: MigrateProgress): void => {
          if (pr.phase === 'move') bar.update(pr.scanned, pr.total, `source shard ${pr.source + 1}/${pr.sources}, ${pr.moved} moved`);
          else if (pr.phase === 'verify') bar.update(pr.total, pr.total, 'verifying placement and counts');
        };
        const r = migrateDataDir(dataDir, positiveInt(cmd, '--to-shards', to), {
          batch: batch === undefined ? undefined : positiveInt(cmd, '--batch', batch),
          progress: show,
        });
        bar.done();
        if (r.nothingToDo) process.stdout.write(`${dataDir} already has ${r.to} shards: nothing to do\n`);
        else {
          process.stdout.write(
            `migrated ${dataDir} from ${r.from} to ${r.to} shards${r.resumed ? ' (resumed)' : ''}: ${r.rows} rows verified, ${r.moved} moved in this run\n`,
          );
        }
        return 0;
      }
      case 'import': {
        const p = parseArgs(
          cmd,
          argv,
          ['--from', '--to', '--from-user', '--to-user', '--from-password', '--to-password', '--from-db', '--match', '--count', '--pipeline', '--timeout-ms'],
          ['--replace', '--plain'],
        );
        const fromText = p.flags.get('--from');
        if (fromText === undefined) throw new UsageError('blobasaur import: --from HOST:PORT is required');
        const from = endpoint(cmd, '--from', fromText);
        const to = endpoint(cmd, '--to', p.flags.get('--to') ?? '127.0.0.1:6379');
        from.username = p.flags.get('--from-user');
        to.username = p.flags.get('--to-user');
        from.password = p.flags.get('--from-password') ?? process.env.BLOBASAUR_IMPORT_FROM_PASSWORD;
        to.password = p.flags.get('--to-password') ?? process.env.BLOBASAUR_IMPORT_TO_PASSWORD;
        const db = p.flags.get('--from-db');
        if (db !== undefined) from.db = db === '0' ? 0 : positiveInt(cmd, '--from-db', db);
        const num = (flag: string): number | undefined => {
          const v = p.flags.get(flag);
          return v === undefined ? undefined : positiveInt(cmd, flag, v);
        };
        const s = await importFromRedis({
          from,
          to,
          match: p.flags.get('--match'),
          count: num('--count'),
          pipeline: num('--pipeline'),
          timeoutMs: num('--timeout-ms'),
          replace: p.switches.has('--replace'),
          plainReads: p.switches.has('--plain'),
          progress: importProgress(),
        });
        const skipped = Object.entries(s.skippedByType).map(([t, n]) => `${t} ${n}`).join(', ');
        process.stdout.write(
          `import from ${fromText}: ${s.copied} keys copied (${mib(s.bytes)} of DUMP payloads) in ${(s.elapsedMs / 1000).toFixed(1)} s` +
            ` using ${s.mode === 'dump' ? 'DUMP/RESTORE' : 'plain reads'}; ${s.scanned} scanned; skipped ${s.skipped}${skipped === '' ? '' : ` (${skipped})`}; failed ${s.failed}\n`,
        );
        for (const f of s.failures) process.stdout.write(`  failed: ${f.key}: ${f.error}\n`);
        return s.failed === 0 ? 0 : 1;
      }
    }
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`${err.message}\n${USAGE[cmd]}\n`);
      return 2;
    }
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(`blobasaur ${cmd}: ${err instanceof MigrateError || err instanceof ImportError || err instanceof RepairError ? '' : 'failed: '}${message}\n`);
    return 1;
  }
}
