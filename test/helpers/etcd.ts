/**
 * etcd for tests: Debian's etcd-server started on loopback with free ports in a temp directory,
 * one member or a three-member Raft cluster, ended by PID.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, tempDir } from './servers.js';

export interface EtcdMemberProc {
  name: string;
  clientPort: number;
  peerPort: number;
  dir: string;
  proc: ChildProcess | null;
  output: string;
}

export interface TestEtcd {
  /** Client URLs of every member ("http://127.0.0.1:port"). */
  endpoints: string[];
  members: EtcdMemberProc[];
  /** kill -9 one member. */
  kill(i: number): Promise<void>;
  /** Ends every member this helper started and removes their directories. */
  stop(): Promise<void>;
}

async function healthy(port: number): Promise<boolean> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(1000) });
    const body = (await res.json()) as { health?: string };
    return body.health === 'true';
  } catch {
    return false;
  }
}

async function killProc(m: EtcdMemberProc): Promise<void> {
  const p = m.proc;
  if (p === null || p.exitCode !== null || p.signalCode !== null) return;
  const gone = new Promise((r) => p.once('exit', r));
  p.kill('SIGKILL');
  await gone;
  m.proc = null;
}

export async function startEtcd(count = 1): Promise<TestEtcd> {
  const token = `blobasaur-test-${process.pid}-${Date.now()}`;
  const members: EtcdMemberProc[] = [];
  for (let i = 0; i < count; i++) {
    members.push({ name: `m${i}`, clientPort: await freePort(), peerPort: await freePort(), dir: tempDir('etcd-test-'), proc: null, output: '' });
  }
  const initial = members.map((m) => `${m.name}=http://127.0.0.1:${m.peerPort}`).join(',');
  for (const m of members) {
    const proc = spawn(
      'etcd',
      [
        '--name', m.name,
        '--data-dir', join(m.dir, 'data'),
        '--listen-client-urls', `http://127.0.0.1:${m.clientPort}`,
        '--advertise-client-urls', `http://127.0.0.1:${m.clientPort}`,
        '--listen-peer-urls', `http://127.0.0.1:${m.peerPort}`,
        '--initial-advertise-peer-urls', `http://127.0.0.1:${m.peerPort}`,
        '--initial-cluster', initial,
        '--initial-cluster-token', token,
        '--initial-cluster-state', 'new',
        '--log-level', 'warn',
        '--logger', 'zap',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    proc.stdout!.on('data', (d: Buffer) => (m.output = (m.output + d.toString()).slice(-20_000)));
    proc.stderr!.on('data', (d: Buffer) => (m.output = (m.output + d.toString()).slice(-20_000)));
    m.proc = proc;
  }
  const deadline = Date.now() + 20_000;
  for (const m of members) {
    while (!(await healthy(m.clientPort))) {
      if (Date.now() > deadline || m.proc?.exitCode !== null) {
        for (const x of members) await killProc(x);
        throw new Error(`etcd ${m.name} did not become healthy: ${m.output}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return {
    endpoints: members.map((m) => `http://127.0.0.1:${m.clientPort}`),
    members,
    kill: (i) => killProc(members[i]),
    stop: async () => {
      for (const m of members) {
        await killProc(m);
        rmSync(m.dir, { recursive: true, force: true });
      }
    },
  };
}
