/**
 * The pictures and experiments of the pattern language, end to end through the CLI:
 * - `sprig pattern show` writes a PNG that decodes (pngjs), has the size the picture's
 *   geometry states (src/pictures/pattern.ts, worked out by hand below) and differs between
 *   two patterns, and an SVG document; `pattern list` lists the library;
 * - `sprig report --html` writes one page that loads in headless Chromium (Debian's, through
 *   playwright-core) without errors and shows every layer's pattern, and, for a run on a
 *   video, each drop's kept tokens over the video's frames;
 * - `sprig explore` prints its table (or JSON) and writes its plot, for library specs and a
 *   module's predicates.
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { chromium } from "playwright-core";
import { PNG } from "pngjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CHROMIUM, CHROMIUM_ARGS, requireChromium } from "../../browser/session.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** The CLI from the sources (`node --import tsx src/cli/main.ts`), from the repository root. */
function sprig(args: readonly string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", "src/cli/main.ts", ...args], {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

let dir = "";

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "sprig-patterns-"));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function decodePng(path: string): Promise<PNG> {
  return PNG.sync.read(await readFile(path));
}

describe("sprig pattern", () => {
  it("show draws a layer's pattern as a PNG of the stated size, different for another pattern", async () => {
    const window = join(dir, "window.png");
    const divided = join(dir, "divided.png");
    const [a, b] = await Promise.all([
      sprig([
        "pattern",
        "show",
        "window3d:3x7x7",
        "--frames",
        "8",
        "--layer",
        "0",
        "--out",
        window,
      ]),
      sprig(["pattern", "show", "divided", "--frames", "8", "--layer", "0", "--out", divided]),
    ]);
    expect(a.code, a.stderr).toBe(0);
    expect(b.code, b.stderr).toBe(0);
    expect(a.stdout).toContain("layer 0: 1568 local tokens, block 56, layout 28x(7..11)");
    const first = await decodePng(window);
    const second = await decodePng(divided);
    // 28 blocks of 56: cells of min(14, ⌊420/28⌋) = 14, a 392-pixel grid at (16, 52); zooms of
    // min(8, ⌊150/56⌋) = 2 pixels per token, 112 square, at x = 16 + 392 + 32 = 440: two
    // columns end at 440 + 2·112 + 24 = 688, + 16 = 704 wide. Two rows of zooms are
    // 2·(112 + 30) - 30 + 14 = 268 tall, less than the grid: the legend at 52 + 392 + 12 = 456,
    // 18 tall, + 16: 490.
    expect([first.width, first.height]).toEqual([704, 490]);
    expect([second.width, second.height]).toEqual([704, 490]);
    let differing = 0;
    for (let i = 0; i < first.data.length; i++) if (first.data[i] !== second.data[i]) differing++;
    // Not just the caption: the grids differ (divided reads 14-16 blocks a row, the window 7-11).
    expect(differing).toBeGreaterThan(4 * 20_000);
  });

  it("show writes SVG, refuses other formats and unknown specs, and list names every pattern", async () => {
    const svg = join(dir, "heads.svg");
    const shown = await sprig([
      "pattern",
      "show",
      "heads(window3d:1x3x3; divided) + causal:frames=1",
      "--frames",
      "2",
      "--layer",
      "5",
      "--head",
      "11",
      "--out",
      svg,
    ]);
    expect(shown.code, shown.stderr).toBe(0);
    expect(shown.stdout).toContain("per-head(12)");
    const text = await readFile(svg, "utf8");
    expect(text.startsWith("<svg xmlns=")).toBe(true);
    expect(text.trimEnd().endsWith("</svg>")).toBe(true);
    expect(text).toContain("head 11");
    const png = await sprig(["pattern", "show", "divided", "--out", join(dir, "x.jpg")]);
    expect(png.code).toBe(1);
    expect(png.stderr).toContain("must end in .png or .svg");
    const unknown = await sprig(["pattern", "show", "windw"]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('names no library pattern "windw"');
    const list = await sprig(["pattern", "list"]);
    expect(list.code).toBe(0);
    for (const name of [
      "svitt",
      "dense",
      "window",
      "window3d",
      "divided",
      "strided",
      "dilated",
      "bigbird",
      "causal",
    ]) {
      expect(list.stdout).toMatch(new RegExp(`^${name}(:|$)`, "m"));
    }
  });
});

describe("sprig report --html", () => {
  it("writes a page that loads in headless Chromium and shows every layer and each drop's kept tokens", async () => {
    requireChromium();
    const video = join(dir, "clip.mp4");
    const made = spawnSync("ffmpeg", [
      "-loglevel",
      "error",
      "-y",
      "-f",
      "lavfi",
      "-i",
      "testsrc=duration=1:size=96x80:rate=8",
      "-pix_fmt",
      "yuv420p",
      video,
    ]);
    expect(made.status, made.stderr.toString()).toBe(0);
    const page = join(dir, "report.html");
    const run = await sprig([
      "report",
      "--frames",
      "2",
      "--layers",
      "4",
      "--pattern",
      "window3d:1x5x5",
      "--html",
      page,
      "--video",
      video,
      "--backend",
      "onnx",
    ]);
    expect(run.code, run.stderr).toBe(0);
    const html = await readFile(page, "utf8");
    expect(html).not.toMatch(/<script|src="http|href="http/);
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    try {
      const tab = await browser.newPage();
      const errors: string[] = [];
      tab.on("pageerror", (e) => errors.push(e.message));
      tab.on("console", (m) => {
        if (m.type() === "error") errors.push(m.text());
      });
      await tab.goto(pathToFileURL(page).href);
      expect(errors).toEqual([]);
      // The cost table's 4 layers, each with its section and its pattern drawn.
      expect(await tab.locator("table.cost tr").count()).toBe(5);
      for (let layer = 0; layer < 4; layer++) {
        const section = tab.locator(`section#layer-${layer}`);
        expect(await section.locator("svg.layer-pattern").count()).toBe(1);
        const box = await section.locator("svg.layer-pattern").boundingBox();
        expect(box?.width ?? 0).toBeGreaterThan(300);
        expect(await section.locator("svg.layer-pattern rect").count()).toBeGreaterThan(50);
      }
      // 4 layers keep their drops inside: one figure per drop, its image decoded.
      const figures = tab.locator("figure.kept-tokens img");
      expect(await figures.count()).toBeGreaterThanOrEqual(1);
      const widths = await figures.evaluateAll((imgs) =>
        imgs.map((i) => (i as unknown as { naturalWidth: number }).naturalWidth),
      );
      // 2 frames of 14 patches of 8 pixels with a 6-pixel gap.
      for (const width of widths) expect(width).toBe(2 * 14 * 8 + 6);
      expect(await tab.locator("p.note").first().textContent()).toContain("clip.mp4");
    } finally {
      await browser.close();
    }
  });

  it("refuses --run without --html and a run of a model without a vision encoder", async () => {
    const lone = await sprig(["report", "--run"]);
    expect(lone.code).toBe(1);
    expect(lone.stderr).toContain("belong with --html FILE");
    const text = await sprig(["report", "--model", "text", "--html", join(dir, "t.html"), "--run"]);
    expect(text.code).toBe(1);
    expect(text.stderr).toContain("not the vision encoder");
  });
});

describe("sprig explore", () => {
  it("prints the table and writes the plot, for library specs and a module's predicates", async () => {
    const module = join(dir, "mine.ts");
    await writeFile(
      module,
      [
        `import { definePattern } from ${JSON.stringify(pathToFileURL(join(ROOT, "src/index.ts")).href)};`,
        "export const rowBand = (q, k) => q.t === k.t && Math.abs(q.y - k.y) <= 1;",
        'export const near = definePattern({ label: "near", needs: "order", reads: (q, k) => Math.abs(q.index - k.index) <= 30 });',
        "export const ignored = 3;",
      ].join("\n"),
    );
    const plot = join(dir, "explore.png");
    const args = [
      "explore",
      "svitt",
      "divided",
      "--module",
      module,
      "--frames",
      "2",
      "--layers",
      "2",
    ];
    const run = await sprig([
      ...args,
      "--keep-rates",
      "0.7,1",
      "--backend",
      "onnx",
      "--reps",
      "1",
      "--plot",
      plot,
    ]);
    expect(run.code, run.stderr).toBe(0);
    const lines = run.stdout.trim().split("\n");
    expect(lines[1]).toMatch(/^pattern\s+keep\s+GMAC\s+attn GMAC\s+ms\s+cosine$/);
    const rows = lines.slice(3, -1).map((l) => l.split(/\s+/));
    expect(rows.map((r) => `${r[0]} ${r[1]}`)).toEqual([
      "dense 1",
      "svitt 0.7",
      "svitt 1",
      "divided 0.7",
      "divided 1",
      // A module namespace lists its exports in name order.
      "near 0.7",
      "near 1",
      "rowBand 0.7",
      "rowBand 1",
    ]);
    for (const row of rows.slice(1)) {
      const cosine = Number(row[5]);
      expect(cosine).toBeGreaterThan(0.5);
      expect(cosine).toBeLessThanOrEqual(1.0001);
      // Sparse variants compute fewer MACs than dense.
      expect(Number(row[2])).toBeLessThan(Number(rows[0]![2]));
    }
    const picture = await decodePng(plot);
    expect(picture.width).toBeGreaterThan(600);
    expect(picture.height).toBeGreaterThan(400);
    const json = await sprig([
      ...args.slice(0, 3),
      "--frames",
      "2",
      "--layers",
      "2",
      "--keep-rates",
      "1",
      "--reps",
      "1",
      "--backend",
      "onnx",
      "--json",
    ]);
    expect(json.code, json.stderr).toBe(0);
    const parsed = JSON.parse(json.stdout) as { rows: { name: string; cosine: number }[] };
    expect(parsed.rows.map((r) => r.name)).toEqual(["svitt", "divided"]);
  });
});
