/**
 * Who may talk to the server: the requirepass check and protected mode. Pure functions and texts,
 * so they can be tested without sockets. The texts are Redis 7.0's, word for word.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Authenticator } from '../commands/types.js';

export const NOAUTH_TEXT = 'NOAUTH Authentication required.';
export const WRONGPASS_TEXT = 'WRONGPASS invalid username-password pair or user is disabled.';
export const HELLO_NOAUTH_TEXT =
  'NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH ' +
  '<user> <pass> option can be used to authenticate the client and select the RESP protocol ' +
  'version at the same time';
export const AUTH_WITHOUT_PASSWORD_TEXT =
  'ERR AUTH <password> called without any password configured for the default user. ' +
  'Are you sure your configuration is correct?';

/** Sent, as a raw line, to a non-loopback peer refused by protected mode; then the socket closes. */
export const DENIED_LINE =
  '-DENIED Redis is running in protected mode because protected mode is enabled and no password is ' +
  'set for the default user. In this mode connections are only accepted from the loopback interface. ' +
  'If you want to connect from external computers to Redis you may adopt one of the following ' +
  "solutions: 1) Just disable protected mode sending the command 'CONFIG SET protected-mode no' from " +
  'the loopback interface by connecting to Redis from the same host the server is running, however ' +
  'MAKE SURE Redis is not publicly accessible from internet if you do so. Use CONFIG REWRITE to make ' +
  'this change permanent. 2) Alternatively you can just disable the protected mode by editing the ' +
  "Redis configuration file, and setting the protected mode option to 'no', and then restarting the " +
  "server. 3) If you started the server manually just for testing, restart it with the '--protected-mode " +
  "no' option. 4) Setup a an authentication password for the default user. NOTE: You only need to do " +
  'one of the above things in order for the server to start accepting connections from the outside.\r\n';

export const MAXCLIENTS_LINE = '-ERR max number of clients reached\r\n';

/** The only user there is; `AUTH password` means this user. */
const DEFAULT_USER = Buffer.from('default');

/**
 * Whether a peer address counts as local for protected mode. As in Redis 7.0, only 127.0.0.1 and ::1
 * do (and 127.0.0.1 written as an IPv4-mapped IPv6 address, which is how a dual-stack listener sees
 * it); other 127/8 addresses are treated as remote, exactly as redis-server treats them.
 */
export function isLoopbackAddress(address: string | undefined): boolean {
  return address === '127.0.0.1' || address === '::1' || address === '::ffff:127.0.0.1';
}

/** Protected mode refuses a peer when it is on, no password is set, and the peer is not loopback. */
export function protectedModeRefuses(protectedMode: boolean, passwordSet: boolean, peer: string | undefined): boolean {
  return protectedMode && !passwordSet && !isLoopbackAddress(peer);
}

function digest(b: Buffer): Buffer {
  return createHash('sha256').update(b).digest();
}

/**
 * requirepass as Redis has it: one user, "default". Without a password it takes any password (as
 * Redis' default user with nopass does); with one, the given password's SHA-256 is compared with the
 * configured one's by timingSafeEqual, so the time taken does not depend on how much of it matched.
 */
export class PasswordAuthenticator implements Authenticator {
  private expected: Buffer | null = null;

  /** An empty requirepass means no password, as `requirepass ""` does in Redis. */
  constructor(requirepass: string | null | undefined) {
    this.setPassword(requirepass);
  }

  /**
   * CONFIG SET requirepass: clients already authenticated stay so; a client that has not
   * authenticated is gated by `required` on its every command (dispatch), as in Redis.
   */
  setPassword(requirepass: string | null | undefined): void {
    this.expected = requirepass === null || requirepass === undefined || requirepass === '' ? null : digest(Buffer.from(requirepass, 'utf8'));
  }

  get required(): boolean {
    return this.expected !== null;
  }

  verify(username: Buffer, password: Buffer): boolean {
    // Both comparisons always run, so a wrong user name costs the same as a wrong password.
    const userOk = username.equals(DEFAULT_USER);
    const passOk = this.expected === null || timingSafeEqual(digest(password), this.expected);
    return userOk && passOk;
  }
}
