/**
 * Progress of a long operator command on stderr: a bar (cli-progress) on a terminal, plain lines
 * at most once a second otherwise (logs, CI), each line saying where the work stands.
 */
import { SingleBar } from 'cli-progress';

export interface Progress {
  /** `value` of `total` done; `detail` says what is being worked on. */
  update(value: number, total: number, detail: string): void;
  done(): void;
}

export function progress(title: string, unit: string, stream: NodeJS.WriteStream = process.stderr): Progress {
  if (stream.isTTY === true) {
    const bar = new SingleBar({
      stream,
      format: `${title} [{bar}] {percentage}% | {value}/{total} ${unit} | {detail} | ETA {eta_formatted}`,
      barCompleteChar: '#',
      barIncompleteChar: '-',
      hideCursor: true,
      clearOnComplete: false,
      etaBuffer: 50,
      fps: 10,
    });
    let started = false;
    return {
      update: (value, total, detail) => {
        if (!started) {
          bar.start(total, value, { detail });
          started = true;
        } else {
          bar.setTotal(total);
          bar.update(value, { detail });
        }
      },
      done: () => {
        if (started) bar.stop();
      },
    };
  }
  let last = 0;
  let pending: string | null = null;
  const write = (line: string): void => {
    stream.write(`${line}\n`);
    last = Date.now();
    pending = null;
  };
  return {
    update: (value, total, detail) => {
      const pct = total === 0 ? 100 : Math.min(100, Math.floor((value * 100) / total));
      const line = `${title}: ${value}/${total} ${unit} (${pct}%), ${detail}`;
      // The first line and the last one always show; in between, one a second.
      if (last === 0 || value >= total || Date.now() - last >= 1000) write(line);
      else pending = line;
    },
    done: () => {
      if (pending !== null) write(pending);
    },
  };
}
