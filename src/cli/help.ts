import type { Command } from "commander";

/**
 * What `sprig --help` and `sprig COMMAND --help` add after the options: examples for every
 * command (with the built-in defaults, or the files they name; test/cli/cli.test.ts checks
 * that each command has one and that every flag in it is the command's) and the exit status
 * scheme, which src/cli/main.ts applies.
 */

/** Exit status of every command. */
export const EXIT = {
  /** The command did what it was asked. */
  ok: 0,
  /**
   * A user error: bad flags, config, files or inputs (a SprigError, printed as one
   * `sprig: ...` line), or failed checks (`verify` with a failing case).
   */
  userError: 1,
  /** A bug in sprig: any other exception, printed with its stack trace. */
  internalError: 2,
} as const;

export const EXIT_STATUS_HELP = [
  "Exit status:",
  `  ${EXIT.ok}  success`,
  `  ${EXIT.userError}  user error (bad flags, config, files or inputs; failed verify checks): one "sprig: ..." line on stderr`,
  `  ${EXIT.internalError}  internal error (a bug in sprig): the stack trace on stderr`,
  "  130, 143  interrupted by SIGINT, SIGTERM (partial output files removed)",
  "Results go to stdout (--json: one JSON object); progress goes to stderr, only on a terminal.",
].join("\n");

/** One or more example invocations per command, keyed by command name. */
export const EXAMPLES: Readonly<Record<string, readonly string[]>> = {
  run: [
    "sprig run --frames 2 --layers 2 --reps 3",
    "sprig run --model retrieval --backend onnx --json",
  ],
  retrieve: ["sprig retrieve --synthetic 2 --k 2", "sprig retrieve clips/ --captions captions.txt"],
  embed: ["sprig embed --synthetic 2 --out embeddings.safetensors"],
  preprocess: ["sprig preprocess clip.mp4 --frames 8 --out clip.safetensors"],
  convert: ["sprig convert svitt_msrvtt.pth --out svitt.safetensors --dtype f16"],
  bench: ["sprig bench --op attention --frames 4 --backend tfjs-wasm"],
  report: ["sprig report --frames 16", "sprig report --model retrieval --json"],
  compile: ["sprig compile --frames 2 --layers 1 --print", "sprig compile --dot vision.dot"],
  pattern: [
    "sprig pattern show window3d:3x7x7 --frames 8 --layer 0 --out window3d.png",
    'sprig pattern show "divided + causal:frames=2" --layer 4 --out divided.svg',
    "sprig pattern list",
  ],
  explore: [
    "sprig explore svitt window3d:3x7x7 divided --frames 8 --keep-rates 0.6,1 --plot explore.png",
    "sprig explore svitt --module my-patterns.ts --frames 2 --layers 4 --json",
  ],
  verify: ["sprig verify ../shared/conformance --backend onnx"],
  export: ["sprig export --frames 4 --onnx vision.onnx"],
  emit: ["sprig emit --frames 2 --layers 2 --out vision-gpujs/"],
};

function examplesText(lines: readonly string[]): string {
  return `\n${lines.length === 1 ? "Example" : "Examples"}:\n${lines.map((l) => `  $ ${l}`).join("\n")}`;
}

/** Adds each command's examples to its --help, and the exit status to every --help. */
export function addHelpText(program: Command): void {
  for (const command of program.commands) {
    const examples = EXAMPLES[command.name()];
    const text = examples === undefined ? "" : examplesText(examples);
    command.addHelpText("after", `${text}\n\n${EXIT_STATUS_HELP}`);
  }
  const overall = examplesText(["sprig run", "sprig report --frames 8", "sprig run --help"]);
  program.addHelpText("after", `${overall}\n\n${EXIT_STATUS_HELP}`);
}
