import type { Command } from "commander";
import { compileModel } from "../../api/compile.js";
import {
  layerPatternScene,
  patternAtLayer,
  pictureFormat,
  withAttentionPattern,
  writePicture,
} from "../../api/patterns.js";
import { parseIntOption } from "../../config/flags.js";
import { ConfigError } from "../../ir/errors.js";
import { describePattern } from "../../ir/pattern.js";
import type { VisionModelSpec } from "../../models/config.js";
import { MODELS } from "../../models/index.js";
import { entrySyntax, LIBRARY } from "../../patterns/library/index.js";
import { addModelOptions, type ModelFlags, specFromFlags } from "../spec-options.js";

/**
 * `sprig pattern list`: the pattern library (name, parameters with their defaults, what
 * it reads, where it comes from). `sprig pattern show SPEC`: compile the vision encoder
 * with that pattern (the model flags apply: --frames, --keep-rate, --token-order, ...) and
 * draw the pattern of one layer (--layer) as PNG or SVG (--out): the block grid and, zoomed,
 * the token masks of a few blocks; without --out it prints the layer's pattern only.
 */
interface PatternFlags extends ModelFlags {
  readonly layer?: string;
  readonly head?: string;
  readonly zoom?: string;
  readonly out?: string;
  readonly json?: boolean;
}

export function registerPattern(program: Command): void {
  addModelOptions(
    program
      .command("pattern")
      .description(
        "the attention pattern library: list its patterns, or show one (a spec such as window3d:3x7x7) at a layer as PNG or SVG",
      )
      .argument("<action>", "list | show")
      .argument(
        "[spec]",
        "for show: a pattern spec (library names, parameters, + & - and heads(...))",
      )
      .option("--layer <L>", "for show: the layer drawn (default 0)")
      .option("--head <h>", "for show: the attention head drawn, for per-head patterns (default 0)")
      .option("--zoom <n>", "for show: blocks whose token masks are drawn zoomed (default 4)")
      .option("--out <file>", "for show: the picture, .png or .svg")
      .option("--json", "for list: print the library as JSON"),
    ["vision"],
  ).action(async (action: string, spec: string | undefined, flags: PatternFlags) => {
    if (action === "list") return listPatterns(flags.json === true);
    if (action !== "show") {
      throw new ConfigError("action", `must be list or show, got "${action}"`);
    }
    if (spec === undefined) throw new ConfigError("spec", "pattern show needs a pattern spec");
    if (flags.pattern !== undefined) {
      throw new ConfigError(
        "pattern",
        "give the pattern once: as the spec argument, not --pattern",
      );
    }
    await showPattern(spec, flags);
  });
}

function listPatterns(json: boolean): void {
  if (json) {
    const entries = LIBRARY.map((e) => ({
      name: e.name,
      syntax: entrySyntax(e),
      summary: e.summary,
      source: e.source,
      params: e.params,
    }));
    process.stdout.write(`${JSON.stringify(entries, null, 2)}\n`);
    return;
  }
  const lines: string[] = [];
  for (const entry of LIBRARY) {
    lines.push(`${entrySyntax(entry)}`, `    ${entry.summary}`, `    from: ${entry.source}`);
  }
  lines.push(
    "",
    "Combine with + (union), & (intersection), - (difference), parentheses, and heads(a; b; ...) for different patterns on groups of heads.",
  );
  process.stdout.write(`${lines.join("\n")}\n`);
}

async function showPattern(spec: string, flags: PatternFlags): Promise<void> {
  const layer = parseIntOption("--layer", "layer", flags.layer, { min: 0, max: 999 }, 0);
  const zoom = parseIntOption("--zoom", "zoom", flags.zoom, { min: 0, max: 8 }, 4);
  const head =
    flags.head === undefined
      ? undefined
      : parseIntOption("--head", "head", flags.head, { min: 0, max: 1023 }, 0);
  if (flags.out !== undefined) pictureFormat(flags.out);
  const vision = await specFromFlags(MODELS.vision, flags, ["vision"]);
  const withPattern: VisionModelSpec = withAttentionPattern(vision, spec);
  const model = MODELS.vision;
  model.check(withPattern);
  const compiled = compileModel(model, withPattern);
  const entry = patternAtLayer(compiled.graph, layer);
  process.stdout.write(
    `layer ${layer}: ${entry.localTokens} local tokens, ${describePattern(entry.pattern)}\n`,
  );
  if (flags.out === undefined) return;
  const scene = layerPatternScene(entry, {
    ...(head === undefined ? {} : { head }),
    title: `${spec} at layer ${layer}, ${withPattern.frames} frames`,
    zoom,
  });
  await writePicture(flags.out, scene);
  process.stdout.write(`wrote ${flags.out} (${scene.width} x ${scene.height})\n`);
}
