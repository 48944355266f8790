import type { Command } from "commander";
import { exportOnnx, OPSET } from "../../../backends/onnx/index.js";
import { compileModel } from "../../api/compile.js";
import { ConfigError } from "../../ir/errors.js";
import { graphInputs } from "../../ir/graph.js";
import { formatType } from "../../ir/tensor.js";
import { modelByName } from "../../models/index.js";
import { initWeights } from "../../models/init.js";
import { bindWeightFile, readWeightFile, summarizeWeightLoad } from "../../runtime/weight-file.js";
import {
  addModelOptions,
  chosenModel,
  type ModelFlags,
  specFromFlags,
  withConfigArgument,
} from "../spec-options.js";

type ExportFlags = ModelFlags & {
  readonly onnx?: string;
  readonly weightSeed?: string;
  readonly weights?: string;
  readonly portable?: boolean;
};

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
 * `sprig export --onnx FILE [--model NAME] [model options]`: compiles a model like
 * `report` and writes it as one ONNX model with its weights (--weights FILE, else seeded
 * synthetic ones, initWeights), atomically: a failed write leaves no file. Prints the
 * path, the size and the model's signature.
 */
export function registerExport(program: Command): void {
  addModelOptions(
    program
      .command("export")
      .argument("[config]", "JSON model config (same as --config)")
      .description("compile a model and write it as an ONNX model with its weights")
      .requiredOption("--onnx <file>", "where to write the ONNX model")
      .option("--weights <file>", "weights: safetensors or a PyTorch .pth (default: seeded)")
      .option("--weight-seed <n>", "seed of the synthetic weights (default 0)")
      .option(
        "--portable",
        "standard ONNX ops only (by default attention uses onnxruntime's MultiHeadAttention)",
      ),
  ).action(async (config: string | undefined, given: ExportFlags) => {
    const flags = withConfigArgument(config, given);
    const path = flags.onnx!;
    const seed = weightSeed(flags.weightSeed);
    const model = modelByName(chosenModel(flags));
    const { graph } = compileModel(model, await specFromFlags(model, flags));
    let weights = initWeights(graph, seed);
    let weightsNote = `weights seed ${seed}`;
    if (flags.weights !== undefined) {
      const bound = bindWeightFile(
        graph,
        await readWeightFile(flags.weights),
        model.checkpointPrefix,
      );
      weights = bound.weights;
      weightsNote = summarizeWeightLoad(bound.report);
    }
    const bytes = await exportOnnx(graph, weights, path, { portable: flags.portable === true });
    const inputs = graphInputs(graph)
      .map((n) => `${n.attrs.name} ${formatType(n.attrs.type)}`)
      .join(", ");
    const outputs = graph.outputs.map((o) => o.name).join(", ");
    const lines = [
      `wrote ${path} (${megabytes(bytes)}, ${bytes} bytes)`,
      `  ONNX opset ${OPSET}${flags.portable ? ", standard ops only" : ", com.microsoft MultiHeadAttention"}; ${weightsNote}`,
      `  inputs: ${inputs}`,
      `  outputs: ${outputs}`,
    ];
    process.stdout.write(`${lines.join("\n")}\n`);
  });
}
