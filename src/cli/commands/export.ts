import type { Command } from "commander";
import { exportOnnx, OPSET } from "../../../backends/onnx/index.js";
import { compileVision } from "../../api/compile.js";
import { ConfigError } from "../../ir/errors.js";
import { graphInputs } from "../../ir/graph.js";
import { formatType } from "../../ir/tensor.js";
import { initWeights } from "../../models/init.js";
import {
  addSpecOptions,
  type SpecFlags,
  specFromFlags,
  withConfigArgument,
} from "../spec-options.js";

interface ExportFlags extends SpecFlags {
  readonly onnx?: string;
  readonly weightSeed?: string;
  readonly portable?: boolean;
}

function weightSeed(text: string | undefined): number {
  if (text === undefined) return 0;
  const value = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(value)) {
    throw new ConfigError("weight-seed", `must be an integer >= 0, got "${text}"`);
  }
  return value;
}

function megabytes(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}

/**
 * `sprig export --onnx FILE [model options]`: compiles the vision encoder like `report`
 * and writes it as one ONNX model with seeded synthetic weights (initWeights), atomically:
 * a failed write leaves no file. Prints the path, the size and the model's signature.
 */
export function registerExport(program: Command): void {
  addSpecOptions(
    program
      .command("export")
      .argument("[config]", "JSON model config (same as --config)")
      .description("compile the vision encoder and write it as an ONNX model (seeded weights)")
      .requiredOption("--onnx <file>", "where to write the ONNX model")
      .option("--weight-seed <n>", "seed of the synthetic weights (default 0)")
      .option(
        "--portable",
        "standard ONNX ops only (by default attention uses onnxruntime's MultiHeadAttention)",
      ),
  ).action(async (config: string | undefined, given: ExportFlags) => {
    const flags = withConfigArgument(config, given);
    const path = flags.onnx!;
    const seed = weightSeed(flags.weightSeed);
    const spec = await specFromFlags(flags);
    const { graph } = compileVision(spec);
    const weights = initWeights(graph, seed);
    const bytes = await exportOnnx(graph, weights, path, { portable: flags.portable === true });
    const inputs = graphInputs(graph)
      .map((n) => `${n.attrs.name} ${formatType(n.attrs.type)}`)
      .join(", ");
    const outputs = graph.outputs.map((o) => o.name).join(", ");
    const lines = [
      `wrote ${path} (${megabytes(bytes)}, ${bytes} bytes)`,
      `  ONNX opset ${OPSET}${flags.portable ? ", standard ops only" : ", com.microsoft MultiHeadAttention"}; weights seed ${seed}`,
      `  inputs: ${inputs}`,
      `  outputs: ${outputs}`,
    ];
    process.stdout.write(`${lines.join("\n")}\n`);
  });
}
