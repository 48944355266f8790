import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningServer, startServer } from "../../browser/server.js";

/**
 * The page's static server: serves the built page and the case files, lists the cases,
 * and nothing else (read-only, no path traversal). No browser needed.
 */

let root: string;
let server: RunningServer;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "sprig-server-"));
  const dist = join(root, "dist");
  const cases = join(root, "cases");
  await mkdir(dist);
  await mkdir(cases);
  await writeFile(join(dist, "index.html"), "<!doctype html>page");
  await writeFile(join(dist, "entry.js"), "export {};");
  await writeFile(join(dist, ".hidden.js"), "secret");
  await writeFile(join(cases, "a1.json"), "{}");
  await writeFile(join(cases, "a1.safetensors"), new Uint8Array([1, 2, 3]));
  await writeFile(join(cases, "orphan.json"), "{}");
  await writeFile(join(cases, "README.md"), "readme");
  await writeFile(join(root, "secret.json"), "outside");
  await mkdir(join(cases, "sub.json"));
  await symlink(join(root, "secret.json"), join(cases, "link.json"));
  server = await startServer({ distDir: dist, casesDir: cases });
});

afterAll(async () => {
  await server?.close();
  await rm(root, { recursive: true, force: true });
});

/** A raw request (fetch would normalise "..", which is exactly what must be tested). */
function get(
  path: string,
  method = "GET",
): Promise<{ status: number; type: string | undefined; body: string }> {
  return new Promise((done, fail) => {
    const req = request({ host: "127.0.0.1", port: server.port, path, method }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () =>
        done({
          status: res.statusCode ?? 0,
          type: res.headers["content-type"],
          body: Buffer.concat(chunks).toString("utf8"),
        }),
      );
    });
    req.on("error", fail);
    req.end();
  });
}

describe("browser/server.ts", () => {
  it("listens on 127.0.0.1 on a free port", () => {
    expect(server.url).toBe(`http://127.0.0.1:${server.port}/`);
    expect(server.port).toBeGreaterThan(0);
  });

  it("serves the page and its script", async () => {
    expect(await get("/")).toMatchObject({ status: 200, body: "<!doctype html>page" });
    expect((await get("/")).type).toMatch(/^text\/html/);
    expect(await get("/entry.js")).toMatchObject({ status: 200, body: "export {};" });
    expect((await get("/entry.js")).type).toMatch(/^text\/javascript/);
    expect(await get("/?cases=a1")).toMatchObject({ status: 200 });
  });

  it("lists cases that have both files, and serves them", async () => {
    expect(JSON.parse((await get("/cases")).body)).toEqual(["a1"]);
    expect(await get("/cases/a1.json")).toMatchObject({ status: 200, body: "{}" });
    const tensors = await get("/cases/a1.safetensors");
    expect(tensors.status).toBe(200);
    expect(tensors.type).toBe("application/octet-stream");
  });

  it("answers 404 for anything outside the two folders or not a case file", async () => {
    for (const path of [
      "/../secret.json",
      "/cases/../../secret.json",
      "/cases/..%2F..%2Fsecret.json",
      "/cases/%2e%2e/secret.json",
      "/%2e%2e/%2e%2e/etc/passwd",
      "/cases/..%5csecret.json",
      "/cases/README.md",
      "/cases/link.json",
      "/cases/sub.json",
      "/cases/missing.json",
      "/.hidden.js",
      "/dist/entry.js",
      "/cases/a1.json/x",
      "/index.html%00.js",
    ]) {
      expect((await get(path)).status, path).toBe(404);
    }
  });

  it("is read-only and rejects malformed paths", async () => {
    expect((await get("/", "POST")).status).toBe(405);
    expect((await get("/cases/a1.json", "PUT")).status).toBe(405);
    expect((await get("/cases/a1.json", "DELETE")).status).toBe(405);
    expect((await get("/%E0%A4%A")).status).toBe(400);
    const head = await get("/cases/a1.json", "HEAD");
    expect(head).toMatchObject({ status: 200, body: "" });
  });
});
