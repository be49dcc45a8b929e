/** Scripts for itMatchesRedis in both protocols: each as written (RESP2) and after HELLO 3. */
import type { Cmd } from './compare.js';

export function bothProtocols(scripts: Record<string, Cmd[]>): Record<string, Cmd[]> {
  const out: Record<string, Cmd[]> = {};
  for (const [name, cmds] of Object.entries(scripts)) {
    out[`${name} (RESP2)`] = cmds;
    out[`${name} (RESP3)`] = [['HELLO', '3'], ...cmds];
  }
  return out;
}
