/**
 * Long clips (issue 3): SViTT at 32 and 64 frames (keep 0.5) on one backend, with the
 * dense encoder at 16 frames beside it for contrast. Peak memory is a per-process figure,
 * so each configuration runs `sprig run --json` in a fresh process; times are that
 * command's medians. (Not benny: benny times functions inside one process.)
 *
 *   npx tsx bench/scale.bench.ts [backend]      (default onnx)
 */
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL("..", import.meta.url));

export interface ScaleRow {
  readonly frames: number;
  readonly variant: "svitt" | "dense";
  readonly backend: string;
  readonly tokens: number;
  readonly gmac: number;
  readonly medianMs: number;
  readonly reps: number;
  readonly peakRssMb: number;
}

export const SCALE_CONFIGS: readonly { frames: number; variant: "svitt" | "dense" }[] = [
  { frames: 16, variant: "dense" },
  { frames: 32, variant: "svitt" },
  { frames: 64, variant: "svitt" },
];

/** Peak RSS limit of issue 3 for SViTT at 32 and 64 frames. */
export const SCALE_RSS_LIMIT_MB = 4096;

export async function benchScale(backend = "onnx", reps = 2): Promise<ScaleRow[]> {
  const rows: ScaleRow[] = [];
  for (const { frames, variant } of SCALE_CONFIGS) {
    const args = ["--import", "tsx", "src/cli/main.ts", "run", "--json", "--frames", `${frames}`];
    args.push("--backend", backend, "--reps", `${reps}`, "--warmup", "1");
    if (variant === "dense") args.push("--dense");
    const { stdout } = await run(process.execPath, args, {
      cwd: ROOT,
      maxBuffer: 1 << 24,
    });
    const result = JSON.parse(stdout.trim().split("\n").at(-1)!) as {
      backend: string;
      tokens_per_layer: number[];
      macs: number;
      median_ms: number;
      peak_rss_mb: number;
    };
    rows.push({
      frames,
      variant,
      backend: result.backend,
      tokens: result.tokens_per_layer[0]!,
      gmac: result.macs / 1e9,
      medianMs: result.median_ms,
      reps,
      peakRssMb: result.peak_rss_mb,
    });
  }
  return rows;
}

export function scaleTable(rows: readonly ScaleRow[]): string {
  const lines = [
    "| backend | frames | variant | tokens | GMAC | median ms | reps | peak RSS MiB |",
    "|---|---:|---|---:|---:|---:|---:|---:|",
  ];
  for (const r of rows) {
    lines.push(
      `| ${r.backend} | ${r.frames} | ${r.variant} | ${r.tokens} | ${r.gmac.toFixed(2)} | ${r.medianMs.toFixed(0)} | ${r.reps} | ${r.peakRssMb.toFixed(0)} |`,
    );
  }
  return lines.join("\n");
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(scaleTable(await benchScale(process.argv[2] ?? "onnx")));
}
