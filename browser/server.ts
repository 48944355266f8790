import { createReadStream } from "node:fs";
import { readdir, realpath, stat } from "node:fs/promises";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { dirname, extname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { DIST_DIR } from "./build.js";

/**
 * A small static server for the browser page, on 127.0.0.1 (port 0: a free one by default):
 *   GET /                      -> dist/index.html
 *   GET /FILE                  -> dist/FILE (entry.js, entry.js.map, index.html)
 *   GET /cases                 -> JSON array of the case names in the conformance directory
 *   GET /cases/NAME.json, /cases/NAME.safetensors -> that file
 * Read-only (GET and HEAD only) and confined: a request names one file by a plain name
 * ([A-Za-z0-9_.-], no leading dot, no separators), which must be a regular file directly
 * inside its folder (after resolving links); anything else is 404. No directory listings.
 *
 * `npx tsx browser/server.ts [--port N] [--cases DIR]` serves a built bundle (see build.ts)
 * until interrupted.
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

/** Case file suffixes served from the conformance directory. */
const CASE_SUFFIXES = [".json", ".safetensors"];

const PLAIN_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;

export interface ServerOptions {
  /** The built page (default browser/dist). */
  readonly distDir?: string;
  /** The conformance cases (default ../shared/conformance beside the checkout). */
  readonly casesDir?: string;
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

/** Names of the cases: NAME.json files with a NAME.safetensors beside them, sorted. */
export async function caseNames(casesDir: string): Promise<string[]> {
  const entries = new Set(await readdir(casesDir));
  return [...entries]
    .filter((e) => e.endsWith(".json") && entries.has(e.replace(/\.json$/, ".safetensors")))
    .map((e) => e.replace(/\.json$/, ""))
    .sort();
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
    send(res, 200, TYPES[".json"]!, `${JSON.stringify(await caseNames(casesDir))}\n`);
    return;
  } else if (parts.length === 2 && parts[0] === "cases") {
    const name = parts[1]!;
    if (CASE_SUFFIXES.some((suffix) => name.endsWith(suffix))) file = await fileIn(casesDir, name);
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
  const server = createServer((req, res) => {
    handle(req, res, distDir, casesDir).catch((error: unknown) => {
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
  const running = await startServer({ port, ...(casesDir === undefined ? {} : { casesDir }) });
  console.log(`serving browser/dist and the conformance cases at ${running.url}`);
  console.log(`  cases:     ${running.url}`);
  console.log(`  benchmark: ${running.url}?bench=attention&frames=4,8,16`);
  console.log("Ctrl-C to stop");
}
