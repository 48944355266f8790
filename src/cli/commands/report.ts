import type { Command } from "commander";
import { compileVision } from "../../api/compile.js";
import { writeFileAtomic } from "../../io/atomic.js";
import { printDot } from "../../ir/dot.js";
import { printGraph } from "../../ir/print.js";
import { DENSE_SPARSITY } from "../../models/presets.js";
import { formatCostTable, formatTimings, gmac } from "../../report.js";
import { addSpecOptions, type SpecFlags, specFromFlags } from "../spec-options.js";

function describeVariant(dense: boolean, frames: number): string {
  return `${dense ? "dense" : "SViTT"} BEiT-base vision encoder, ${frames} frames`;
}

export function registerReport(program: Command): void {
  addSpecOptions(
    program
      .command("report")
      .description(
        "compile the vision encoder and print per-layer tokens, keys per query and MACs, dense vs sparse",
      )
      .option("--json", "print one JSON object instead of tables"),
  ).action(async (flags: SpecFlags & { json?: boolean }) => {
    const spec = await specFromFlags(flags);
    const compiled = compileVision(spec);
    const dense = flags.dense ? compiled : compileVision({ ...spec, sparsity: DENSE_SPARSITY });
    const ratio = compiled.cost.totals.macs / dense.cost.totals.macs;
    if (flags.json) {
      process.stdout.write(
        `${JSON.stringify(
          {
            frames: spec.frames,
            variant: flags.dense ? "dense" : "svitt",
            sparsity: spec.sparsity,
            layers: compiled.cost.layers,
            totals: compiled.cost.totals,
            dense_totals: dense.cost.totals,
            sparse_dense_ratio: ratio,
            pass_ms: Object.fromEntries(compiled.timings.map((t) => [t.pass, t.ms])),
          },
          null,
          2,
        )}\n`,
      );
      return;
    }
    const lines = [
      describeVariant(flags.dense === true, spec.frames),
      "",
      formatCostTable(compiled.cost),
    ];
    if (!flags.dense) {
      lines.push(
        `dense: ${gmac(dense.cost.totals.macs)} GMAC (attention ${gmac(dense.cost.totals.attentionMacs)}); sparse/dense = ${ratio.toFixed(3)}`,
      );
    }
    lines.push(formatTimings(compiled.timings));
    process.stdout.write(`${lines.join("\n")}\n`);
  });
}

export function registerCompile(program: Command): void {
  addSpecOptions(
    program
      .command("compile")
      .description("compile the vision encoder and print or save its graph")
      .option("--print", "print the compiled graph as text")
      .option("--dot <file>", "write the compiled graph in Graphviz DOT form")
      .option("--weights-in-dot", "draw weights and constants in the DOT graph"),
  ).action(async (flags: SpecFlags & { print?: boolean; dot?: string; weightsInDot?: boolean }) => {
    const spec = await specFromFlags(flags);
    const compiled = compileVision(spec);
    if (flags.dot !== undefined) {
      await writeFileAtomic(
        flags.dot,
        `${printDot(compiled.graph, { withWeights: flags.weightsInDot === true })}\n`,
      );
    }
    if (flags.print || flags.dot === undefined)
      process.stdout.write(`${printGraph(compiled.graph)}\n`);
    process.stderr.write(`${formatTimings(compiled.timings)}\n`);
  });
}
