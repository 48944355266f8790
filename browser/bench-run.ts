/**
 * The browser attention benchmark from the command line: opens the page's benchmark mode
 * (`?bench=attention`, browser/bench.ts) in headless Chromium (browser/session.ts) and
 * prints its rows as one JSON array on stdout (progress on stderr). bench/run.ts runs this
 * as its "browser" suite. SwiftShader is software WebGL2: the ratios say how the kernels
 * scale with the work, not how fast a GPU runs them.
 *
 *   npx tsx browser/bench-run.ts [--frames 4,8,16] [--reps 1] [--backends gpujs,tfjs-webgl]
 */
import { parseArgs } from "node:util";
import type { SprigGlobals } from "./protocol.js";
import { startSession } from "./session.js";

const { values } = parseArgs({
  options: {
    frames: { type: "string", default: "4,8,16" },
    reps: { type: "string", default: "1" },
    backends: { type: "string", default: "gpujs,tfjs-webgl" },
  },
});

const session = await startSession();
try {
  const query = new URLSearchParams({
    bench: "attention",
    frames: values.frames,
    reps: values.reps,
    backends: values.backends,
  });
  const page = await session.open(`?${query}`, { waitReady: false });
  page.on("console", (message) => {
    if (message.text().startsWith("[sprig] bench ")) process.stderr.write(`${message.text()}\n`);
  });
  await page.waitForFunction(() => (globalThis as SprigGlobals).__sprigBench?.done === true, null, {
    timeout: 0,
    polling: 1000,
  });
  const bench = await page.evaluate(() => (globalThis as SprigGlobals).__sprigBench!);
  if (bench.error !== null) throw new Error(`browser benchmark failed: ${bench.error}`);
  process.stdout.write(`${JSON.stringify(bench.results)}\n`);
} finally {
  await session.close();
}
