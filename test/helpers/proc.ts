/** Memory of a child process as the kernel reports it (Linux /proc), for RSS ceilings in tests. */
import { readFileSync } from 'node:fs';

export interface ProcMemory {
  /** Resident set size now, in bytes. */
  rss: number;
  /** Peak resident set size since the process started (VmHWM), in bytes. */
  peak: number;
}

export function procMemory(pid: number): ProcMemory {
  const status = readFileSync(`/proc/${pid}/status`, 'latin1');
  const kib = (field: string): number => {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
    if (m === null) throw new Error(`no ${field} in /proc/${pid}/status`);
    return Number(m[1]) * 1024;
  };
  return { rss: kib('VmRSS'), peak: kib('VmHWM') };
}

export const MiB = 1024 * 1024;

export function mib(bytes: number): string {
  return `${(bytes / MiB).toFixed(1)} MiB`;
}
