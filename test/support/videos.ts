import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { expect } from "vitest";

/**
 * Makes `count` small H.264 clips in `dir` with ffmpeg's testsrc2 (96 x 72, 25 fps):
 * clip i lasts 1 + i·step seconds and is hue-shifted by i·hue degrees, so that clips differ
 * in length and content. Returns their paths, clip0.mp4 first.
 */
export function makeTestClips(
  dir: string,
  count: number,
  { step, hue }: { readonly step: number; readonly hue: number },
): string[] {
  const paths: string[] = [];
  for (let i = 0; i < count; i++) {
    const path = join(dir, `clip${i}.mp4`);
    const made = spawnSync("ffmpeg", [
      "-nostdin",
      "-loglevel",
      "error",
      "-f",
      "lavfi",
      "-i",
      `testsrc2=size=96x72:rate=25:duration=${1 + i * step}`,
      "-vf",
      `hue=h=${i * hue}`,
      "-pix_fmt",
      "yuv420p",
      path,
    ]);
    expect(made.status, made.stderr?.toString()).toBe(0);
    paths.push(path);
  }
  return paths;
}
