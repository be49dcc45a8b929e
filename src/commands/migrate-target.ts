/**
 * What MIGRATE (whole keys, migrate.ts) and its field-routed form (migrate-fields.ts) share: how the
 * target's replies to AUTH, SELECT and the writes become MIGRATE's reply and the list of what the
 * target holds now.
 */
import { ErrorReply } from '../protocol/reply.js';
import { RespError, type RespValue } from '../protocol/client.js';

/** MIGRATE's arguments, for both forms. */
export interface MigrateRequest {
  host: string;
  port: number;
  db: bigint;
  timeoutMs: number;
  copy: boolean;
  replace: boolean;
  username: Buffer | null;
  password: Buffer | null;
  keys: Buffer[];
}

export function targetError(e: RespError): ErrorReply {
  return new ErrorReply(`ERR Target instance replied with error: ${e.message}`);
}

export interface TargetReplies<T> {
  /** The first error, as MIGRATE answers it; null when every reply was good. */
  error: ErrorReply | null;
  /** AUTH or SELECT failed: nothing may be deleted here. */
  refused: boolean;
  /** What the target acknowledged (none when `copy`: nothing is deleted after a COPY). */
  acked: T[];
}

/**
 * As Redis: after a failed AUTH or SELECT nothing is deleted; otherwise everything the target
 * acknowledged is, even when another write failed (that error is the reply). `refusal` tells a
 * write the target declined without an error reply (e.g. a conditional SET that found the key).
 */
export async function collectTargetReplies<T>(
  auth: Promise<RespValue> | null,
  select: Promise<RespValue>,
  sent: readonly { item: T; reply: Promise<RespValue> }[],
  copy: boolean,
  refusal: (reply: RespValue) => ErrorReply | null = () => null,
): Promise<TargetReplies<T>> {
  const authReply = auth === null ? null : await auth;
  const selectReply = await select;
  let error: ErrorReply | null = null;
  if (authReply instanceof RespError) error = targetError(authReply);
  else if (selectReply instanceof RespError) error = targetError(selectReply);
  const refused = error !== null;
  const acked: T[] = [];
  for (const s of sent) {
    const reply = await s.reply;
    if (refused) continue;
    if (reply instanceof RespError) {
      error ??= targetError(reply);
      continue;
    }
    const declined = refusal(reply);
    if (declined !== null) error ??= declined;
    else if (!copy) acked.push(s.item);
  }
  return { error, refused, acked };
}
