import cliProgress from "cli-progress";

/**
 * Progress on stderr while `run` works: a bar over the timed forwards on a terminal, plain
 * stage lines otherwise (CI logs, pipes), never on stdout where --json goes.
 */
export interface ProgressReporter {
  stage(text: string): void;
  rep(done: number, ms: number): void;
  stop(): void;
}

export function progressReporter(
  total: number,
  stream: NodeJS.WriteStream = process.stderr,
): ProgressReporter {
  if (!stream.isTTY) {
    return {
      stage: (text) => stream.write(`sprig: ${text}\n`),
      rep: (done, ms) => stream.write(`sprig: forward ${done}/${total}: ${ms.toFixed(1)} ms\n`),
      stop: () => undefined,
    };
  }
  const bar = new cliProgress.SingleBar(
    {
      stream,
      format: "{stage} [{bar}] {value}/{total} {last}",
      hideCursor: true,
      clearOnComplete: true,
    },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  return {
    stage: (text) => {
      if (!started) {
        bar.start(total, 0, { stage: text, last: "" });
        started = true;
      } else {
        bar.update({ stage: text });
      }
    },
    rep: (done, ms) => bar.update(done, { last: `${ms.toFixed(0)} ms` }),
    stop: () => {
      if (started) bar.stop();
    },
  };
}
