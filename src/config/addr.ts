import { isIP, isIPv6 } from 'node:net';

export type HostPort = { ok: true; host: string; port: number } | { ok: false; reason: string };

// Hostnames and IPv4 literals. Deliberately loose (underscores, trailing dots) because the OS
// resolver, not the config loader, is the authority on what resolves.
const HOST_NAME = /^[A-Za-z0-9._-]+$/;

/**
 * Splits "host:port" / "[v6]:port". The returned host has IPv6 brackets stripped so it can be
 * passed straight to net.Server#listen or net.connect.
 */
export function parseHostPort(value: string): HostPort {
  const colon = value.lastIndexOf(':');
  if (colon < 0) return { ok: false, reason: `"${value}" has no ":port" part` };
  const hostPart = value.slice(0, colon);
  const portPart = value.slice(colon + 1);

  let host: string;
  if (hostPart.startsWith('[')) {
    if (!hostPart.endsWith(']') || !isIPv6(hostPart.slice(1, -1))) {
      return { ok: false, reason: `"${hostPart}" is not a bracketed IPv6 address` };
    }
    host = hostPart.slice(1, -1);
  } else if (hostPart.includes(':')) {
    // Without brackets "::1:6379" is ambiguous: is 6379 the port or the last IPv6 group?
    return { ok: false, reason: `IPv6 host "${hostPart}" must be written in brackets, e.g. "[${hostPart}]:${portPart}"` };
  } else if (hostPart === '') {
    return { ok: false, reason: `"${value}" has an empty host part` };
  } else if (!HOST_NAME.test(hostPart)) {
    return { ok: false, reason: `host "${hostPart}" contains characters not allowed in a hostname or IP address` };
  } else {
    host = hostPart;
  }

  if (!/^\d{1,5}$/.test(portPart)) return { ok: false, reason: `port "${portPart}" is not a number` };
  const port = Number(portPart);
  if (port > 65535) return { ok: false, reason: `port ${port} is above 65535` };
  return { ok: true, host, port };
}

/** Whether a listen host only accepts connections from this machine (127.0.0.0/8, ::1, localhost). */
export function isLoopbackHost(host: string): boolean {
  const h = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  if (h === 'localhost' || h === '::1') return true;
  return isIP(h) === 4 && h.startsWith('127.');
}
