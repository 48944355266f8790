import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningServer, startServer } from "../../browser/server.js";

/**
 * The page's static server: serves the built page and the case files (those of the
 * conformance directory and of its video-text folder), lists the cases, and nothing else
 * (read-only, no path traversal, no other subfolder). No browser needed.
 */

let root: string;
let server: RunningServer;
/** Every server started here, closed after the tests. */
const others: RunningServer[] = [];

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
  // The served case folder, and a subfolder with case-like files that is not served.
  await mkdir(join(cases, "video-text"));
  await writeFile(join(cases, "video-text", "i1.json"), '{"i":1}');
  await writeFile(join(cases, "video-text", "i1.safetensors"), new Uint8Array([4, 5]));
  await writeFile(join(cases, "video-text", "orphan.json"), "{}");
  await mkdir(join(cases, "inputs"));
  await writeFile(join(cases, "inputs", "v1.json"), "{}");
  await writeFile(join(cases, "inputs", "v1.safetensors"), new Uint8Array([6]));
  // A case folder name that links outside the conformance directory.
  await mkdir(join(root, "elsewhere"));
  await writeFile(join(root, "elsewhere", "x.json"), "{}");
  await writeFile(join(root, "elsewhere", "x.safetensors"), new Uint8Array([7]));
  await symlink(join(root, "elsewhere"), join(cases, "linked"));
  server = await startServer({ distDir: dist, casesDir: cases });
  others.push(server);
});

afterAll(async () => {
  for (const running of others) await running.close();
  await rm(root, { recursive: true, force: true });
});

/** A raw request (fetch would normalise "..", which is exactly what must be tested). */
function get(
  path: string,
  method = "GET",
  port = server.port,
): Promise<{ status: number; type: string | undefined; body: string }> {
  return new Promise((done, fail) => {
    const req = request({ host: "127.0.0.1", port, path, method }, (res) => {
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
    expect(JSON.parse((await get("/cases")).body)).toEqual(["a1", "video-text/i1"]);
    expect(await get("/cases/a1.json")).toMatchObject({ status: 200, body: "{}" });
    const tensors = await get("/cases/a1.safetensors");
    expect(tensors.status).toBe(200);
    expect(tensors.type).toBe("application/octet-stream");
  });

  it("serves the cases of the video-text folder as video-text/NAME", async () => {
    expect(await get("/cases/video-text/i1.json")).toMatchObject({ status: 200, body: '{"i":1}' });
    const tensors = await get("/cases/video-text/i1.safetensors");
    expect(tensors).toMatchObject({ status: 200, type: "application/octet-stream" });
    expect(tensors.body).toBe("\u0004\u0005");
  });

  it("serves no other subfolder, and no folder that leads outside", async () => {
    for (const path of [
      "/cases/inputs/v1.json",
      "/cases/inputs/v1.safetensors",
      "/cases/linked/x.json",
      "/cases/video-text/orphan.json/x",
      "/cases/video-text",
      "/cases/video-text/",
      "/cases/video-text/..%2F..%2Fsecret.json",
      "/cases/video-text/%2e%2e%2Fa1.json",
      "/cases/%2e%2e/secret.json",
      "/cases/video-text%2F..%2Fa1.json",
      "/cases/video-text/sub/i1.json",
    ]) {
      expect((await get(path)).status, path).toBe(404);
    }
    // A case folder that leads outside is no case folder, even when asked for by name.
    const linked = await startServer({
      distDir: join(root, "dist"),
      casesDir: join(root, "cases"),
      caseFolders: ["linked"],
    });
    others.push(linked);
    expect((await get("/cases/linked/x.json", "GET", linked.port)).status).toBe(404);
    expect((await get("/cases", "GET", linked.port)).status).toBe(500);
  });

  it("fails the listing when a case folder is missing, instead of listing fewer cases", async () => {
    const bare = await startServer({
      distDir: join(root, "dist"),
      casesDir: join(root, "cases"),
      caseFolders: ["video-text", "absent"],
    });
    others.push(bare);
    const listing = await get("/cases", "GET", bare.port);
    expect(listing.status).toBe(500);
    expect(listing.body).toContain('case folder "absent" is missing');
    const none = await startServer({
      distDir: join(root, "dist"),
      casesDir: join(root, "cases"),
      caseFolders: [],
    });
    others.push(none);
    expect(JSON.parse((await get("/cases", "GET", none.port)).body)).toEqual(["a1"]);
    expect((await get("/cases/video-text/i1.json", "GET", none.port)).status).toBe(404);
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
