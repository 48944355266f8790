/**
 * Block-sparse against dense attention on the browser backends (issue 4): gpujs (gpu.js's
 * WebGL2 engine) and tfjs-webgl, in headless Chromium on SwiftShader, at 4, 8 and 16
 * frames, through the page's benchmark mode. Runs `browser/bench-run.ts` in a child process
 * (the page lives in Chromium, not in this process). SwiftShader is software WebGL2, so the
 * times are not a GPU's; the ratios say whether the sparse kernels save what their MACs say.
 *
 *   npx tsx bench/browser.bench.ts [frames]     (default 4,8,16)
 */
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL("..", import.meta.url));

export interface BrowserRow {
  readonly backend: string;
  readonly frames: number;
  readonly tokens: number;
  readonly sparse_ms: number | null;
  readonly dense_ms: number | null;
  /** sparse / dense attention MACs. */
  readonly macs_ratio: number;
  readonly reps: number;
  readonly error: string | null;
}

export async function benchBrowser(frames = "4,8,16", reps = 1): Promise<BrowserRow[]> {
  const { stdout } = await run(
    process.execPath,
    ["--import", "tsx", "browser/bench-run.ts", "--frames", frames, "--reps", `${reps}`],
    { cwd: ROOT, maxBuffer: 1 << 24 },
  );
  return JSON.parse(stdout.trim().split("\n").at(-1)!) as BrowserRow[];
}

export function browserTable(rows: readonly BrowserRow[]): string {
  const lines = [
    "| backend (Chromium, SwiftShader) | frames | tokens | sparse ms | dense ms | speed-up | MAC ratio | of MAC ratio |",
    "|---|---:|---:|---:|---:|---:|---:|---:|",
  ];
  for (const r of rows) {
    if (r.sparse_ms === null || r.dense_ms === null) {
      lines.push(`| ${r.backend} | ${r.frames} | ${r.tokens} | failed: ${r.error} | | | | |`);
      continue;
    }
    const speedup = r.dense_ms / r.sparse_ms;
    const macs = 1 / r.macs_ratio;
    lines.push(
      `| ${r.backend} | ${r.frames} | ${r.tokens} | ${r.sparse_ms.toFixed(0)} | ${r.dense_ms.toFixed(0)} | ${speedup.toFixed(2)}x | ${macs.toFixed(2)}x | ${(speedup / macs).toFixed(2)} |`,
    );
  }
  return lines.join("\n");
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(browserTable(await benchBrowser(process.argv[2])));
}
