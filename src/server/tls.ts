/**
 * TLS settings for the second listener (tls_port), built with node:tls. Checked once at start:
 * a missing file or an impossible combination stops the server with a message naming the key.
 */
import { readFileSync } from 'node:fs';
import { createSecureContext, type TlsOptions } from 'node:tls';

export interface TlsSettings {
  tls_port: number;
  tls_addr?: string | undefined;
  tls_cert_file?: string | undefined;
  tls_key_file?: string | undefined;
  tls_ca_cert_file?: string | undefined;
  tls_auth_clients: boolean;
}

/** A TLS setting that cannot work; `message` is meant to be printed as-is. */
export class TlsSetupError extends Error {
  override readonly name = 'TlsSetupError';
}

/**
 * A client that connects and never finishes the handshake is destroyed this long after it connected
 * (server.ts keeps the timer; until then it counts toward maxclients).
 */
export const TLS_HANDSHAKE_TIMEOUT_MS = 10_000;

function readPem(key: string, path: string | undefined): Buffer {
  if (path === undefined || path === '') throw new TlsSetupError(`tls_port or tls_addr is set, so ${key} must name a PEM file`);
  try {
    return readFileSync(path);
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code ?? (err instanceof Error ? err.message : String(err));
    throw new TlsSetupError(`${key} "${path}" cannot be read: ${reason}`);
  }
}

/** Whether TLS is on: tls_addr set, or a tls_port on the host of addr. */
export function tlsEnabled(s: TlsSettings): boolean {
  return s.tls_addr !== undefined || s.tls_port !== 0;
}

/** The options for tls.createServer, or null when TLS is off (tls_port = 0, no tls_addr). */
export function tlsServerOptions(s: TlsSettings): TlsOptions | null {
  if (!tlsEnabled(s)) return null;
  const cert = readPem('tls_cert_file', s.tls_cert_file);
  const key = readPem('tls_key_file', s.tls_key_file);
  let ca: Buffer | undefined;
  if (s.tls_ca_cert_file !== undefined && s.tls_ca_cert_file !== '') {
    ca = readPem('tls_ca_cert_file', s.tls_ca_cert_file);
  } else if (s.tls_auth_clients) {
    // As Redis: client certificates can only be verified against a CA.
    throw new TlsSetupError('tls_auth_clients = true needs tls_ca_cert_file to verify client certificates (or set tls_auth_clients = false)');
  }
  const options: TlsOptions = {
    cert,
    key,
    ca,
    requestCert: s.tls_auth_clients,
    rejectUnauthorized: s.tls_auth_clients,
    handshakeTimeout: TLS_HANDSHAKE_TIMEOUT_MS,
    minVersion: 'TLSv1.2',
  };
  try {
    // Fails here, at start, on a malformed PEM or a key that does not match its certificate.
    createSecureContext(options);
  } catch (err) {
    throw new TlsSetupError(`tls_cert_file/tls_key_file/tls_ca_cert_file cannot be used: ${err instanceof Error ? err.message : String(err)}`);
  }
  return options;
}
