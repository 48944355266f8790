/**
 * Starting one of sprig's own modules as a worker thread, from the built package or from
 * the TypeScript sources.
 *
 * Built, the worker is the compiled `.js` next to the calling module. From the sources (tsx,
 * vitest) it is the `.ts` file, started through a bootstrap that registers tsx's ESM hooks
 * first, so that the worker runs the same sources as its parent. Where neither works (sprig
 * bundled into one file, loaded from a non-file URL, no tsx under the sources) the answer is
 * why, and the caller does the work on its own thread instead.
 */
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { Worker } from "node:worker_threads";

/**
 * A worker running `script` (a module name without extension, next to the module whose
 * import.meta.url is `from`), given `workerData`; or why it cannot start here.
 */
export function startModuleWorker(
  from: string,
  script: string,
  workerData?: unknown,
): { readonly worker: Worker } | { readonly why: string } {
  if (!from.startsWith("file:")) return { why: `not loaded from a file (${from})` };
  const fromSources = from.endsWith(".ts");
  const url = new URL(`./${script}${fromSources ? ".ts" : ".js"}`, from);
  if (!existsSync(fileURLToPath(url))) return { why: `${fileURLToPath(url)} is not there` };
  const options = workerData === undefined ? {} : { workerData };
  if (!fromSources) return { worker: new Worker(url, options) };
  let api: string;
  try {
    // tsx's ESM API, as its package exports it ("./esm/api", import condition).
    const require = createRequire(from);
    const manifest = require.resolve("tsx/package.json");
    const exports = JSON.parse(readFileSync(manifest, "utf8")).exports as Record<
      string,
      { import?: { default?: string } }
    >;
    const entry = exports["./esm/api"]?.import?.default;
    if (entry === undefined) return { why: "tsx does not export ./esm/api" };
    api = pathToFileURL(join(dirname(manifest), entry)).href;
  } catch (error) {
    return { why: `running from sources without tsx (${(error as Error).message})` };
  }
  const bootstrap = `import(${JSON.stringify(api)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(url.href)}); });`;
  return { worker: new Worker(bootstrap, { ...options, eval: true }) };
}
