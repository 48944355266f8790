import {
  CodeBlockWriter,
  IndentationText,
  Project,
  type Structure,
  StructureKind,
  ts,
} from "ts-morph";
import { packedLayout, type View } from "./views.js";

/**
 * Kernel specifications and their rendering to source.
 *
 * A lowering describes each kernel as a KernelSpec: parameters (device tensors, all indexed
 * [z][y][x]), the output view, compile-time tables, and a body of statements in the subset
 * of JavaScript that gpu.js translates to GLSL, WebAssembly and plain JavaScript. Shapes,
 * strides, head sizes, scales and windows are literals in the body, so every kernel is
 * specialised to its node. The renderer writes each distinct kernel once as a typed
 * TypeScript function (ts-morph), the form the emitted module ships, and transpiles them to
 * the JavaScript the backend hands to gpu.createKernel.
 */

/** A statement: one line, or a block `head { body }` optionally followed by `else { ... }`. */
export type Stmt = string | Block;

export interface Block {
  readonly head: string;
  readonly body: readonly Stmt[];
  readonly orElse?: readonly Stmt[];
}

/** How many terms one iteration of a generated reduction loop adds. */
export const UNROLL = 8;

/**
 * `target += term(i)` for i = start .. end - 1, unrolled UNROLL terms per iteration with a
 * plain loop for the remainder. The terms are added one at a time in index order, so the
 * sum rounds exactly like the reference's loop; unrolling only removes loop overhead, which
 * in gpu.js cpu mode (JavaScript) makes the reductions of linear layers ~4x faster.
 */
export function sumLoop(
  target: string,
  index: string,
  start: number,
  end: number,
  term: (i: string) => string,
): Stmt[] {
  const stmts: Stmt[] = [];
  const main = start + Math.floor((end - start) / UNROLL) * UNROLL;
  if (main > start) {
    const body: string[] = [];
    for (let j = 0; j < UNROLL; j++)
      body.push(`${target} += ${term(j === 0 ? index : `${index} + ${j}`)};`);
    stmts.push({
      head: `for (let ${index} = ${start}; ${index} < ${main}; ${index} += ${UNROLL})`,
      body,
    });
  }
  if (end > main) {
    stmts.push({
      head: `for (let ${index} = ${main}; ${index} < ${end}; ${index}++)`,
      body: [`${target} += ${term(index)};`],
    });
  }
  return stmts;
}

/** Thread coordinates as bodies name them; bound from this.thread only when used. */
export const THREAD = { x: "tx", y: "ty", z: "tz" } as const;

export interface KernelSpec {
  /** Base name, e.g. "linear12"; made unique by the renderer. */
  readonly name: string;
  /** What the kernel computes, with the math; becomes the function's doc comment. */
  readonly doc: string;
  /** Parameter names, in call order; every parameter is a device tensor. */
  readonly params: readonly string[];
  readonly output: View;
  /** Tables the body reads as this.constants.NAME[i]! (block layouts). */
  readonly constants?: Readonly<Record<string, readonly number[]>>;
  readonly body: readonly Stmt[];
}

/** A rendered, deduplicated kernel. */
export interface GeneratedKernel {
  readonly name: string;
  readonly doc: string;
  readonly params: readonly string[];
  readonly output: View;
  /** Whether its output uses gpu.js's memory-optimized layout (views.ts, packedLayout). */
  readonly packed: boolean;
  readonly constants: Readonly<Record<string, readonly number[]>> | null;
  /** The kernel as a typed TypeScript function declaration. */
  readonly source: string;
  /** The statements of its body (thread bindings first). */
  readonly body: string;
  /** The same function in JavaScript (types erased), for gpu.createKernel. */
  readonly js: string;
}

/** The TypeScript type of `this` inside a kernel with the given constants. */
export function thisType(constants: Readonly<Record<string, readonly number[]>> | null): string {
  if (constants === null) return "IKernelFunctionThis";
  const fields = Object.keys(constants)
    .map((name) => `${name}: number[]`)
    .join("; ");
  return `IKernelFunctionThis<{ ${fields} }>`;
}

/** Device tensors inside kernels: textures (GL) or nested arrays (cpu), indexed [z][y][x]. */
export const TENSOR_TYPE = "Tensor3";

function writeStmts(writer: CodeBlockWriter, stmts: readonly Stmt[]): void {
  for (const stmt of stmts) {
    if (typeof stmt === "string") {
      writer.writeLine(stmt);
      continue;
    }
    writer.write(`${stmt.head} `).inlineBlock(() => writeStmts(writer, stmt.body));
    if (stmt.orElse !== undefined) {
      const orElse = stmt.orElse;
      writer.write(" else ").inlineBlock(() => writeStmts(writer, orElse));
    }
    writer.newLine();
  }
}

function newWriter(): CodeBlockWriter {
  return new CodeBlockWriter({ indentNumberOfSpaces: 2, useSingleQuote: false, newLine: "\n" });
}

/** Statements as source text. */
export function stmtsText(stmts: readonly Stmt[]): string {
  const writer = newWriter();
  writeStmts(writer, stmts);
  return writer.toString();
}

/** The body text of a spec: thread bindings (only those used), then its statements. */
export function bodyText(spec: KernelSpec): string {
  const text = stmtsText(spec.body);
  const bindings = (["x", "y", "z"] as const)
    .filter((axis) => new RegExp(`\\b${THREAD[axis]}\\b`).test(text))
    .map((axis) => `const ${THREAD[axis]} = this.thread.${axis};\n`)
    .join("");
  return bindings + text;
}

/**
 * Kernels merge only when everything gpu.js fixes at a kernel's first call agrees: the
 * source, the output size and the sizes of the arguments (a kernel called with a
 * differently sized argument throws in some engines and reads garbage in others).
 */
function kernelKey(spec: KernelSpec, body: string, argumentKey: string): string {
  const { x, y, z } = spec.output;
  return JSON.stringify([spec.params, [x, y, z], spec.constants ?? null, body, argumentKey]);
}

/** Function structures for ts-morph (shared with the module emitter). */
export function functionStructure(
  kernel: Pick<GeneratedKernel, "name" | "doc" | "params" | "constants">,
  body: string,
  exported: boolean,
): Structure & { kind: StructureKind.Function } {
  return {
    kind: StructureKind.Function,
    name: kernel.name,
    isExported: exported,
    docs: [kernel.doc],
    parameters: [
      { name: "this", type: thisType(kernel.constants) },
      ...kernel.params.map((name) => ({ name, type: TENSOR_TYPE })),
    ],
    returnType: "number",
    statements: body,
  } as Structure & { kind: StructureKind.Function };
}

let project: Project | null = null;

/** One in-memory ts-morph project for rendering (creating one costs ~100 ms). */
export function renderProject(): Project {
  project ??= new Project({
    useInMemoryFileSystem: true,
    manipulationSettings: { indentationText: IndentationText.TwoSpaces },
    compilerOptions: { target: ts.ScriptTarget.ES2022, strict: true },
  });
  return project;
}

export interface RenderResult {
  readonly kernels: readonly GeneratedKernel[];
  /** For each spec (by index), the name of the kernel that computes it. */
  readonly nameOf: readonly string[];
}

/**
 * Renders specs to kernels: identical specs (same parameters, output, tables and body; the
 * name and doc aside) share one kernel, named after the first. All distinct kernels are
 * written into one TypeScript file in a single ts-morph edit and transpiled in one pass.
 */
export function renderKernels(
  specs: readonly KernelSpec[],
  argumentKeys: readonly string[] = [],
): RenderResult {
  const byKey = new Map<string, number>();
  const unique: { spec: KernelSpec; body: string; name: string }[] = [];
  const used = new Set<string>();
  const nameOf: string[] = [];
  for (const [index, spec] of specs.entries()) {
    const body = bodyText(spec);
    for (const param of spec.params) {
      if (!new RegExp(`\\b${param}\\b`).test(body))
        throw new RangeError(`kernel ${spec.name}: parameter ${param} is never read`);
    }
    const key = kernelKey(spec, body, argumentKeys[index] ?? "");
    const found = byKey.get(key);
    if (found !== undefined) {
      nameOf.push(unique[found]!.name);
      continue;
    }
    let name = spec.name;
    for (let n = 2; used.has(name); n++) name = `${spec.name}_${n}`;
    used.add(name);
    byKey.set(key, unique.length);
    unique.push({ spec, body, name });
    nameOf.push(name);
  }
  const file = renderProject().createSourceFile("__kernels.ts", "", { overwrite: true });
  file.addFunctions(
    unique.map(({ spec, body, name }) =>
      functionStructure(
        { name, doc: spec.doc, params: spec.params, constants: spec.constants ?? null },
        body,
        false,
      ),
    ),
  );
  const sources = file.getFunctions().map((fn) => fn.getText(true));
  const jsText = ts.transpileModule(file.getFullText(), {
    compilerOptions: {
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.ESNext,
      removeComments: true,
    },
  }).outputText;
  const jsFile = renderProject().createSourceFile("__kernels.js", jsText, { overwrite: true });
  const js = jsFile.getFunctions().map((fn) => fn.getText(false));
  renderProject().removeSourceFile(file);
  renderProject().removeSourceFile(jsFile);
  if (sources.length !== unique.length || js.length !== unique.length) {
    throw new Error(`kernel rendering produced ${sources.length}/${js.length} of ${unique.length}`);
  }
  const kernels = unique.map(
    ({ spec, name, body }, i): GeneratedKernel => ({
      name,
      doc: spec.doc,
      params: spec.params,
      output: spec.output,
      packed: packedLayout(spec.output),
      constants: spec.constants ?? null,
      source: sources[i]!,
      body,
      js: js[i]!,
    }),
  );
  return { kernels, nameOf };
}
