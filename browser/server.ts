import { createReadStream } from "node:fs";
import { readdir, realpath, stat } from "node:fs/promises";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { dirname, extname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { CaseError } from "../src/conformance/case.js";
import { DIST_DIR } from "./build.js";

/**
 * A small static server for the browser page, on 127.0.0.1 (port 0: a free one by default):
 *   GET /                      -> dist/index.html
 *   GET /FILE                  -> dist/FILE (entry.js, entry.js.map, index.html)
 *   GET /cases                 -> JSON array of the case names: those directly in the
 *                                 conformance directory, then FOLDER/NAME for each case
 *                                 folder in it (video-text: the text, fusion, retrieval and
 *                                 tokenizer cases)
 *   GET /cases/NAME.json, /cases/NAME.safetensors -> that file
 *   GET /cases/FOLDER/NAME.json, /cases/FOLDER/NAME.safetensors -> that file of a case folder
 * Read-only (GET and HEAD only) and confined: a request names one file by a plain name
 * ([A-Za-z0-9_.-], no leading dot, no separators), which must be a regular file directly
 * inside its folder (after resolving links), and a case folder only by one of the names
 * the server was given (never another subfolder: inputs/ holds files that are no cases);
 * anything else is 404. No directory listings.
 *
 * `npx tsx browser/server.ts [--port N] [--cases DIR] [--folders video-text,...]` serves a
 * built bundle (see build.ts) until interrupted; `--folders ""` serves no case folder.
 */

const HERE = dirname(fileURLToPath(import.meta.url));

export const DEFAULT_CASES_DIR = resolve(HERE, "../../shared/conformance");

const TYPES: Readonly<Record<string, string>> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".map": "application/json; charset=utf-8",
  ".json": "application/json; charset=utf-8",
  ".safetensors": "application/octet-stream",
};

/** Subfolders of the conformance directory whose cases are served too (see the module doc). */
export const DEFAULT_CASE_FOLDERS: readonly string[] = ["video-text"];

/** Case file suffixes served from the conformance directory. */
const CASE_SUFFIXES = [".json", ".safetensors"];

const PLAIN_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;

export interface ServerOptions {
  /** The built page (default browser/dist). */
  readonly distDir?: string;
  /** The conformance cases (default ../shared/conformance beside the checkout). */
  readonly casesDir?: string;
  /** Subfolders of casesDir served as FOLDER/NAME (default DEFAULT_CASE_FOLDERS). */
  readonly caseFolders?: readonly string[];
  /** Default 0: any free port. */
  readonly port?: number;
}

export interface RunningServer {
  /** e.g. "http://127.0.0.1:43125/" */
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

/**
 * The regular file `name` directly inside `dir`, or null. Checked on the real paths, so a
 * symbolic link is served only if it resolves to a file directly inside `dir` too.
 */
async function fileIn(dir: string, name: string): Promise<string | null> {
  if (!PLAIN_NAME.test(name) || name.includes("..")) return null;
  try {
    const real = await realpath(join(dir, name));
    const inside = relative(await realpath(dir), real);
    if (inside === "" || inside.startsWith("..") || inside.includes(sep)) return null;
    return (await stat(real)).isFile() ? real : null;
  } catch {
    return null;
  }
}

/**
 * The case folder `folder` of `casesDir`, or null: only a name in `caseFolders`, and only a
 * real directory directly inside casesDir (after resolving links).
 */
async function caseFolderIn(
  casesDir: string,
  folder: string,
  caseFolders: readonly string[],
): Promise<string | null> {
  if (!caseFolders.includes(folder) || !PLAIN_NAME.test(folder) || folder.includes(".."))
    return null;
  try {
    const real = await realpath(join(casesDir, folder));
    const inside = relative(await realpath(casesDir), real);
    if (inside === "" || inside.startsWith("..") || inside.includes(sep)) return null;
    return (await stat(real)).isDirectory() ? real : null;
  } catch {
    return null;
  }
}

/** Names of the cases: NAME.json files with a NAME.safetensors beside them, sorted. */
export async function caseNames(casesDir: string): Promise<string[]> {
  const entries = new Set(await readdir(casesDir));
  return [...entries]
    .filter((e) => e.endsWith(".json") && entries.has(e.replace(/\.json$/, ".safetensors")))
    .map((e) => e.replace(/\.json$/, ""))
    .sort();
}

/**
 * Every case name the server lists: caseNames(casesDir), then FOLDER/NAME for the cases of
 * each case folder. A case folder that is missing (or not a directory directly inside
 * casesDir) is an error, answered 500: never a shorter list.
 */
export async function allCaseNames(
  casesDir: string,
  caseFolders: readonly string[],
): Promise<string[]> {
  const names = await caseNames(casesDir);
  for (const folder of caseFolders) {
    const dir = await caseFolderIn(casesDir, folder, caseFolders);
    if (dir === null) throw new CaseError(`case folder "${folder}" is missing from ${casesDir}`);
    for (const name of await caseNames(dir)) names.push(`${folder}/${name}`);
  }
  return names;
}

function send(res: ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { "content-type": type, "cache-control": "no-store" });
  res.end(body);
}

async function sendFile(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
  const { size } = await stat(path);
  res.writeHead(200, {
    "content-type": TYPES[extname(path)] ?? "application/octet-stream",
    "content-length": size,
    "cache-control": "no-store",
  });
  if (req.method === "HEAD") {
    res.end();
    return;
  }
  await new Promise<void>((done, fail) => {
    const stream = createReadStream(path);
    stream.on("error", fail);
    res.on("close", done);
    stream.pipe(res);
  });
}

async function handle(
  req: IncomingMessage,
  res: ServerResponse,
  distDir: string,
  casesDir: string,
  caseFolders: readonly string[],
): Promise<void> {
  if (req.method !== "GET" && req.method !== "HEAD") {
    res.writeHead(405, { allow: "GET, HEAD" });
    res.end();
    return;
  }
  let pathname: string;
  try {
    pathname = decodeURIComponent(new URL(req.url ?? "/", "http://localhost").pathname);
  } catch {
    send(res, 400, "text/plain", "bad request path\n");
    return;
  }
  const parts = pathname.split("/").filter((p) => p !== "");
  let file: string | null = null;
  if (parts.length === 0) {
    file = await fileIn(distDir, "index.html");
  } else if (parts.length === 1 && parts[0] === "cases") {
    const names = await allCaseNames(casesDir, caseFolders);
    send(res, 200, TYPES[".json"]!, `${JSON.stringify(names)}\n`);
    return;
  } else if (parts[0] === "cases" && (parts.length === 2 || parts.length === 3)) {
    const folder = parts.length === 3 ? parts[1]! : null;
    const name = parts.at(-1)!;
    const dir = folder === null ? casesDir : await caseFolderIn(casesDir, folder, caseFolders);
    if (dir !== null && CASE_SUFFIXES.some((suffix) => name.endsWith(suffix)))
      file = await fileIn(dir, name);
  } else if (parts.length === 1) {
    file = await fileIn(distDir, parts[0]!);
  }
  if (file === null) {
    send(res, 404, "text/plain", "not found\n");
    return;
  }
  await sendFile(req, res, file);
}

export async function startServer(options: ServerOptions = {}): Promise<RunningServer> {
  const distDir = resolve(options.distDir ?? DIST_DIR);
  const casesDir = resolve(options.casesDir ?? DEFAULT_CASES_DIR);
  const caseFolders = options.caseFolders ?? DEFAULT_CASE_FOLDERS;
  const server = createServer((req, res) => {
    handle(req, res, distDir, casesDir, caseFolders).catch((error: unknown) => {
      if (res.headersSent) res.destroy();
      else send(res, 500, "text/plain", `${error instanceof Error ? error.message : error}\n`);
    });
  });
  await new Promise<void>((ready, fail) => {
    server.once("error", fail);
    server.listen(options.port ?? 0, "127.0.0.1", () => ready());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    port,
    close: () =>
      new Promise<void>((done, fail) => {
        server.closeAllConnections();
        server.close((error) => (error === undefined ? done() : fail(error)));
      }),
  };
}

function flag(name: string): string | undefined {
  const at = process.argv.indexOf(name);
  return at < 0 ? undefined : process.argv[at + 1];
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const port = Number(flag("--port") ?? 0);
  const casesDir = flag("--cases");
  const folders = flag("--folders");
  const running = await startServer({
    port,
    ...(casesDir === undefined ? {} : { casesDir }),
    ...(folders === undefined
      ? {}
      : { caseFolders: folders.split(",").filter((folder) => folder !== "") }),
  });
  console.log(`serving browser/dist and the conformance cases at ${running.url}`);
  console.log(`  cases:     ${running.url}`);
  console.log(`  benchmark: ${running.url}?bench=attention&frames=4,8,16`);
  console.log("Ctrl-C to stop");
}
