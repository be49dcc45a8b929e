/** The few lines a person sees when the server starts on a terminal: what runs where, and "ready". */
import type { Config } from '../config/index.js';
import { VERSION } from '../version.js';

export interface BannerFacts {
  addr: string;
  tlsAddr: string | null;
  dataDir: string;
  backupDir: string;
  dashboardUrl: string | null;
  configFile: string | null;
}

export function banner(config: Config, f: BannerFacts, color: boolean): string {
  const b = (s: string): string => (color ? `\x1b[1m${s}\x1b[22m` : s);
  const dim = (s: string): string => (color ? `\x1b[2m${s}\x1b[22m` : s);
  const port = f.addr.slice(f.addr.lastIndexOf(':') + 1);
  const mode = [
    config.cluster.enabled ? `cluster node "${config.cluster.node_id}"` : 'standalone',
    config.async_write ? 'async writes' : 'writes acknowledged after commit',
    config.requirepass !== undefined ? 'password required' : config.protected_mode ? 'no password (loopback clients only)' : 'no password',
  ].join(', ');
  const rows: [string, string][] = [
    ['listening', `${f.addr}${f.tlsAddr === null ? '' : `, TLS ${f.tlsAddr}`}   ${dim(`try: redis-cli -p ${port} ping`)}`],
    ['data', `${f.dataDir} (${config.num_shards} shards)`],
    ['backups', `${f.backupDir} ${dim('(SAVE, BGSAVE)')}`],
    ['mode', mode],
    ['dashboard', f.dashboardUrl ?? `off ${dim('(set [metrics] enabled = true in the config file)')}`],
    ['config', f.configFile ?? 'built-in defaults (blobasaur --print-config shows every setting)'],
  ];
  const lines = rows.map(([k, v]) => `  ${dim(k.padEnd(10))} ${v}`);
  return `\n${b(`blobasaur ${VERSION}`)} ${dim('— a Redis-protocol blob store on SQLite')}\n${lines.join('\n')}\n  ${b('ready')} ${dim('(Ctrl-C to stop)')}\n\n`;
}
