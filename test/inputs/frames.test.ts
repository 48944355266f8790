import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import {
  middleFrameIndices,
  middleFrameSample,
  truncatedLinspace,
} from "../../src/inputs/frames.js";
import { readSafetensors } from "../../src/io/safetensors.js";

const INPUTS = fileURLToPath(new URL("../../../shared/conformance/inputs/", import.meta.url));

describe("middleFrameIndices: the reference's get_frame_indices(T, vlen, 'middle')", () => {
  it("matches the conformance case for the 60-frame clips (t4 and t8)", async () => {
    const { tensors } = await readSafetensors(`${INPUTS}v1_video_preprocess.safetensors`);
    const sidecar = JSON.parse(await readFile(`${INPUTS}v1_video_preprocess.json`, "utf8"));
    for (const video of ["clip_lossless.mov", "clip.mp4"]) {
      const facts = sidecar.videos[video];
      expect(facts.vlen).toBe(60);
      expect([...middleFrameIndices(4, facts.vlen)]).toEqual(facts.frame_indices_t4);
      expect([...middleFrameIndices(8, facts.vlen)]).toEqual(facts.frame_indices_t8);
    }
    expect([...middleFrameIndices(4, 60)]).toEqual([
      ...tensors.get("expected.frame_indices.t4")!.data,
    ]);
    expect([...middleFrameIndices(8, 60)]).toEqual([
      ...tensors.get("expected.frame_indices.t8")!.data,
    ]);
    expect([...middleFrameIndices(4, 60)]).toEqual([7, 22, 37, 52]);
    expect([...middleFrameIndices(8, 60)]).toEqual([3, 10, 18, 25, 33, 40, 48, 55]);
  });

  it("hand-computed cases", () => {
    // edges = trunc(linspace(0, 10, 4)) = trunc([0, 3.33, 6.67, 10]) = [0, 3, 6, 10];
    // middles (0 + 2) // 2, (3 + 5) // 2, (6 + 9) // 2
    expect([...middleFrameIndices(3, 10)]).toEqual([1, 4, 7]);
    // edges [0, 14, 28, 42, 57, 71, 85, 100]
    expect([...middleFrameIndices(7, 100)]).toEqual([6, 20, 34, 49, 63, 77, 92]);
    // one interval [0, 59]: (0 + 59) // 2
    expect([...middleFrameIndices(1, 60)]).toEqual([29]);
    // vlen == T: every frame once
    expect([...middleFrameIndices(4, 4)]).toEqual([0, 1, 2, 3]);
  });

  it("pads with the last index when the video is shorter than T", () => {
    // n = min(8, 3) = 3 intervals [0,0], [1,1], [2,2], then the last index repeated
    expect(middleFrameSample(8, 3)).toEqual({
      indices: Int32Array.from([0, 1, 2, 2, 2, 2, 2, 2]),
      padded: true,
    });
    expect(middleFrameSample(5, 1)).toEqual({ indices: new Int32Array(5), padded: true });
    expect(middleFrameSample(4, 60).padded).toBe(false);
    expect(middleFrameSample(60, 60).padded).toBe(false);
  });

  it("truncates numpy's float64 linspace, not the exact quotient", () => {
    // numpy 1.24: linspace(0, 30, 23)[11] = 11 * (30 / 22) = 14.999999999999998 -> 14, where
    // exact arithmetic gives 15; get_frame_indices(22, 30)[11] is then (14 + 16 - 1) // 2 = 14.
    // Expected lists computed with numpy 1.24.2 and the reference's get_frame_indices.
    expect(truncatedLinspace(30, 23)).toEqual([
      0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, 16, 17, 19, 20, 21, 23, 24, 25, 27, 28, 30,
    ]);
    expect([...middleFrameIndices(22, 30)]).toEqual([
      0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, 16, 17, 19, 20, 21, 23, 24, 25, 27, 28,
    ]);
  });

  it("rejects a frame count or video length below 1", () => {
    expect(() => middleFrameIndices(0, 60)).toThrow(RangeError);
    expect(() => middleFrameIndices(4, 0)).toThrow(RangeError);
    expect(() => middleFrameIndices(2.5, 60)).toThrow(RangeError);
  });
});
