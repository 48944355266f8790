import type { Command } from "commander";
import { compileModel } from "../../api/compile.js";
import { checkHtmlRun, htmlReport } from "../../api/report-html.js";
import { getPath } from "../../config/merge.js";
import { writeFileAtomic } from "../../io/atomic.js";
import { printDot } from "../../ir/dot.js";
import { ConfigError } from "../../ir/errors.js";
import { printGraph } from "../../ir/print.js";
import { estimateMemory, formatBytes, formatMemoryEstimate } from "../../memory.js";
import type { VisionModelSpec } from "../../models/config.js";
import { modelByName } from "../../models/index.js";
import { formatCostTable, formatTimings, gmac } from "../../report.js";
import {
  addModelOptions,
  chosenModel,
  type ModelFlags,
  memoryBudget,
  specFromFlags,
} from "../spec-options.js";

type ReportFlags = ModelFlags & {
  json?: boolean;
  html?: string;
  run?: boolean;
  video?: string;
  backend?: string;
};

export function registerReport(program: Command): void {
  addModelOptions(
    program
      .command("report")
      .description(
        "compile a model and print per-layer tokens, keys per query and MACs, sparse vs dense",
      )
      .option("--json", "print one JSON object instead of tables")
      .option(
        "--html <file>",
        "also write one self-contained page: the cost table and every layer's attention pattern",
      )
      .option(
        "--run",
        "with --html: run the vision encoder on the synthetic clip and draw the tokens each drop kept",
      )
      .option(
        "--video <file>",
        "with --html: run on this video (or folder of frames) and draw the kept tokens over its frames",
      )
      .option(
        "--backend <name>",
        "with --run or --video: the backend (default: the fastest available)",
      ),
  ).action(async (flags: ReportFlags) => {
    const name = chosenModel(flags);
    const model = modelByName(name);
    const spec = await specFromFlags(model, flags);
    const runs = flags.run === true || flags.video !== undefined;
    if (flags.html === undefined && (runs || flags.backend !== undefined)) {
      throw new ConfigError("html", "--run, --video and --backend belong with --html FILE");
    }
    if (runs) checkHtmlRun(name);
    const compiled = compileModel(model, spec);
    const dense = compileModel(model, model.dense(spec));
    if (flags.html !== undefined) {
      const page = await htmlReport({
        model: name,
        description: model.describe(spec),
        compiled,
        dense: compiled.cost.totals.macs === dense.cost.totals.macs ? null : dense,
        ...(runs
          ? {
              run: {
                spec: spec as VisionModelSpec,
                ...(flags.video === undefined ? {} : { video: flags.video }),
                ...(flags.backend === undefined ? {} : { backend: flags.backend }),
                budget: memoryBudget({}),
              },
            }
          : {}),
      });
      await writeFileAtomic(flags.html, page);
    }
    const hasSparsity = compiled.cost.totals.macs !== dense.cost.totals.macs;
    const ratio = compiled.cost.totals.macs / dense.cost.totals.macs;
    // What `run` would need (src/memory.ts), against what it would be allowed.
    const memory = estimateMemory(compiled.graph);
    const budget = memoryBudget({});
    if (flags.json) {
      process.stdout.write(
        `${JSON.stringify(
          {
            model: name,
            description: model.describe(spec),
            spec,
            variant: hasSparsity ? "svitt" : "dense",
            ...(model.framesPath === null ? {} : { frames: getPath(spec, model.framesPath) }),
            ...(name === "vision" ? { sparsity: getPath(spec, "sparsity") } : {}),
            layers: compiled.cost.layers,
            totals: compiled.cost.totals,
            dense_totals: dense.cost.totals,
            sparse_dense_ratio: ratio,
            pass_ms: Object.fromEntries(compiled.timings.map((t) => [t.pass, t.ms])),
            memory: {
              weight_bytes: memory.weightBytes,
              constant_bytes: memory.constantBytes,
              input_bytes: memory.inputBytes,
              peak_activation_bytes: memory.peakActivationBytes,
              peak_at: memory.peakAt,
              estimated_peak_bytes: memory.totalBytes,
              limit_bytes: budget.limitBytes,
            },
          },
          null,
          2,
        )}\n`,
      );
      return;
    }
    const lines = [model.describe(spec), "", formatCostTable(compiled.cost)];
    if (hasSparsity) {
      lines.push(
        `dense: ${gmac(dense.cost.totals.macs)} GMAC (attention ${gmac(dense.cost.totals.attentionMacs)}); sparse/dense = ${ratio.toFixed(3)}`,
      );
    }
    const fits =
      memory.totalBytes <= budget.limitBytes
        ? `within the ${formatBytes(budget.limitBytes)} of ${budget.source}`
        : `more than the ${formatBytes(budget.limitBytes)} of ${budget.source}: run would refuse it`;
    lines.push(`memory: estimated peak ${formatMemoryEstimate(memory)}; ${fits}`);
    lines.push(formatTimings(compiled.timings));
    process.stdout.write(`${lines.join("\n")}\n`);
  });
}

export function registerCompile(program: Command): void {
  addModelOptions(
    program
      .command("compile")
      .description("compile a model and print or save its graph")
      .option("--print", "print the compiled graph as text")
      .option("--dot <file>", "write the compiled graph in Graphviz DOT form")
      .option("--weights-in-dot", "draw weights and constants in the DOT graph"),
  ).action(
    async (flags: ModelFlags & { print?: boolean; dot?: string; weightsInDot?: boolean }) => {
      const model = modelByName(chosenModel(flags));
      const compiled = compileModel(model, await specFromFlags(model, flags));
      if (flags.dot !== undefined) {
        await writeFileAtomic(
          flags.dot,
          `${printDot(compiled.graph, { withWeights: flags.weightsInDot === true })}\n`,
        );
      }
      if (flags.print || flags.dot === undefined)
        process.stdout.write(`${printGraph(compiled.graph)}\n`);
      // Pass timings are for a person watching (stdout holds the graph): a terminal only.
      if (process.stderr.isTTY) process.stderr.write(`${formatTimings(compiled.timings)}\n`);
    },
  );
}
