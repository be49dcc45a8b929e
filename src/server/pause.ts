/**
 * CLIENT PAUSE / UNPAUSE: while a pause lasts, commands (all of them, or only those that write)
 * wait before running, in arrival order per client, and run when it ends (timeout or UNPAUSE).
 */
export type PauseMode = 'write' | 'all';

/** setTimeout's longest delay; a longer pause re-arms its timer. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export class ClientPause {
  private mode: PauseMode | null = null;
  private end = 0;
  private timer: NodeJS.Timeout | null = null;
  private ended: Promise<void> | null = null;
  private release: (() => void) | null = null;

  /** Pauses until `end` (epoch ms); a pause in effect keeps the later end and the stricter mode, as Redis. */
  pause(end: number, mode: PauseMode, now: number): void {
    if (this.mode !== null && now >= this.end) this.unpause();
    this.mode = this.mode === 'all' || mode === 'all' ? 'all' : 'write';
    this.end = Math.max(this.end, end);
    this.arm(now);
  }

  /** Ends the pause at once; waiting commands run. */
  unpause(): void {
    this.mode = null;
    this.end = 0;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    const release = this.release;
    this.ended = null;
    this.release = null;
    release?.();
  }

  /** null when a command may run now; otherwise a promise settled when the pause ends. */
  blocks(write: boolean, now: number): Promise<void> | null {
    if (this.mode === null) return null;
    if (now >= this.end) {
      this.unpause();
      return null;
    }
    if (this.mode === 'write' && !write) return null;
    this.ended ??= new Promise<void>((resolve) => (this.release = resolve));
    return this.ended;
  }

  private arm(now: number): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = setTimeout(
      () => {
        this.timer = null;
        if (Date.now() >= this.end) this.unpause();
        else this.arm(Date.now());
      },
      Math.min(MAX_TIMER_MS, Math.max(0, this.end - now)),
    );
    this.timer.unref();
  }
}
