/**
 * Debug output, off by default. Levels (env SPRIG_DEBUG or the CLI's --debug):
 *   0  nothing
 *   1  pass timings and node counts
 *   2  and the graph after every pass (text form)
 *   3  and generated kernel / model sources where a backend has them
 * Lines go to stderr so they never mix with a command's --json output.
 */
export type DebugLevel = 0 | 1 | 2 | 3;

export function debugLevelFromEnv(env: NodeJS.ProcessEnv = process.env): DebugLevel {
  const raw = Number(env.SPRIG_DEBUG ?? 0);
  return raw >= 3 ? 3 : raw >= 2 ? 2 : raw >= 1 ? 1 : 0;
}

export type DebugSink = (line: string) => void;

export const stderrSink: DebugSink = (line) => {
  process.stderr.write(`[sprig] ${line}\n`);
};
