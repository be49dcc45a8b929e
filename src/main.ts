#!/usr/bin/env -S node --initial-old-space-size=64
/**
 * The blobasaur command: parse flags, load the config, start the server, and shut down gracefully
 * on SIGINT, SIGTERM or SHUTDOWN (a second signal exits at once).
 *
 * Started with `--initial-old-space-size=64` (this line's shebang, the Dockerfile, `npm start`,
 * bench/lib.mjs): once V8 has shrunk an idle server's heap, its old-generation limit sits so close to
 * the ~15 MB in use that it starts a mark-compact every ~250 GETs of 64 KiB values (each a new
 * Buffer); a 32 MB floor measured 71-79 µs of CPU per GET instead of 133-164, p99 0.87-0.99 ms
 * instead of 2.4-5.1, with the same peak RSS (docs/benchmarks.md, "The scale run"). GETs of 1 MiB
 * values read from SQLite still started one every ~30 ms below a 64 MB floor (~64 per 4,000 GETs,
 * 750 µs of CPU per GET); at 64 MB, 0-2 and 390-485 µs (docs/benchmarks.md, "GET 1 MiB"). It must
 * be a command-line flag: v8.setFlagsFromString() comes too late and NODE_OPTIONS refuses it.
 */
import { CliError, ConfigError, HELP_TEXT, loadConfig, parseCli } from './config/index.js';
import { stringify } from 'smol-toml';
import { banner } from './observability/banner.js';
import { createLogger, wantsPretty } from './observability/log.js';
import { maskSecrets, refuseMidMigration } from './observability/startup.js';
import { isToolCommand, runTool, TOOLS_HELP } from './tools/cli.js';
import { runClusterTool } from './tools/cluster-cli.js';
import { startServer } from './app.js';
import { LayoutError } from './storage/layout.js';
import { SchemaError } from './storage/schema.js';
import { TlsSetupError } from './server/tls.js';
import { StorageError } from './storage/shard.js';
import { VERSION } from './version.js';

const PRINT_CONFIG_HELP = `  --print-config      print the effective configuration (every setting, secrets masked) as TOML and exit`;

async function main(args: string[]): Promise<number> {
  // Blobs are private by default: files and directories are created for the owner only, whatever
  // umask the process was started with (the config's `umask` replaces this once it is read).
  process.umask(0o077);
  // Operator subcommands (blobasaur backup|vacuum|migrate …) come before the server's flags.
  if (isToolCommand(args[0])) return runTool(args[0], args.slice(1));
  if (args[0] === 'cluster') return runClusterTool(args.slice(1));
  const printConfig = args.includes('--print-config');
  const argv = args.filter((a) => a !== '--print-config');
  let command;
  let loaded;
  try {
    command = parseCli(argv);
    if (command.kind === 'help') {
      process.stdout.write(`${HELP_TEXT}\nAlso:\n${PRINT_CONFIG_HELP}\n\n${TOOLS_HELP}\n`);
      return 0;
    }
    if (command.kind === 'version') {
      process.stdout.write(`blobasaur ${VERSION}\n`);
      return 0;
    }
    loaded = loadConfig({ configPath: command.configPath, overrides: command.overrides });
  } catch (err) {
    if (err instanceof CliError || err instanceof ConfigError) {
      process.stderr.write(`blobasaur: ${err.message}\n`);
      if (err instanceof CliError) process.stderr.write('Run blobasaur --help for usage.\n');
      return 2;
    }
    throw err;
  }

  const { config, file, inactive } = loaded;
  if (printConfig) {
    process.stdout.write(`# effective configuration of blobasaur ${VERSION}; from ${file ?? 'built-in defaults'}\n${stringify(maskSecrets(config) as Record<string, unknown>)}\n`);
    return 0;
  }
  process.umask(config.umask);
  const pretty = wantsPretty(config.log_format);
  const log = createLogger(config.log_level, pretty);
  // Signals are handled from before anything is logged or opened: a SIGTERM that arrives while the
  // server is still starting (its port may already accept) stops it gracefully once it has started.
  let running: Awaited<ReturnType<typeof startServer>> | undefined;
  let stopSignal: NodeJS.Signals | null = null;
  let signals = 0;
  let resolveExit: (code: number) => void = () => {};
  const exited = new Promise<number>((resolve) => (resolveExit = resolve));
  const onSignal = (signal: NodeJS.Signals): void => {
    signals++;
    if (signals > 1) {
      log.warn({ signal }, 'second signal: exiting at once');
      resolveExit(1);
      return;
    }
    if (running === undefined) stopSignal = signal;
    else void running.close(signal);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  log.info({ config_file: file ?? '(none: embedded defaults)' }, 'configuration loaded');
  // The whole configuration is long: debug level, or `blobasaur --print-config`.
  log.debug({ config: maskSecrets(config) }, 'effective configuration');
  for (const key of inactive) {
    // output_compression belongs to upstream's HTTP API, which this server does not have.
    const why = key === 'output_compression' ? 'has no effect: there is no HTTP data API to compress' : 'is accepted but not active yet in this version';
    log.warn({ key }, `config key "${key}" ${why}`);
  }

  try {
    refuseMidMigration(config.data_dir);
    running = await startServer(config, log, file);
    if (pretty) {
      const host = config.addr.slice(0, config.addr.lastIndexOf(':'));
      process.stdout.write(
        banner(
          config,
          {
            addr: `${host}:${running.port}`,
            tlsAddr: running.server.tlsPort > 0 ? `${host}:${running.server.tlsPort}` : null,
            dataDir: running.store.dataDir,
            backupDir: running.backupDir,
            dashboardUrl: running.dashboardUrl,
            configFile: file,
          },
          process.stdout.isTTY === true && !process.env.NO_COLOR,
        ),
      );
    }
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    if (
      err instanceof LayoutError ||
      err instanceof SchemaError ||
      err instanceof StorageError ||
      err instanceof TlsSetupError ||
      (err as NodeJS.ErrnoException).code === 'EADDRINUSE'
    ) {
      process.stderr.write(`blobasaur: ${message}\n`);
      return 1;
    }
    throw err;
  }

  running.server.onShutdown = () => resolveExit(0);
  if (stopSignal !== null) void running.close(stopSignal);
  return await exited;
}

main(process.argv.slice(2)).then(
  (code) => {
    // pino writes asynchronously; give it a turn to flush before exiting.
    setImmediate(() => process.exit(code));
  },
  (err: unknown) => {
    process.stderr.write(`blobasaur: fatal: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
