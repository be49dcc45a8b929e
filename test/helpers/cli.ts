/** Runs the real command-line clients (redis-cli, redis-py) against a port. */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

export async function redisCli(port: number, args: string[], input?: string): Promise<string> {
  const child = run('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], { maxBuffer: 256 * 1024 * 1024 });
  if (input !== undefined) {
    child.child.stdin!.end(input);
  }
  return (await child).stdout;
}

/** Runs a Python snippet with Debian's python3 (which has python3-redis). */
export async function python(code: string, env: Record<string, string> = {}): Promise<string> {
  const { stdout } = await run('/usr/bin/python3', ['-c', code], { env: { ...process.env, ...env } });
  return stdout;
}
