import cliProgress from "cli-progress";

/**
 * Progress on stderr while `run` works: a bar over the timed forwards when stderr is a
 * terminal, nothing otherwise (CI logs, pipes, files: the results on stdout say it all),
 * never on stdout where the results and --json go.
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
  if (!stream.isTTY) return { stage: () => undefined, rep: () => undefined, stop: () => undefined };
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
