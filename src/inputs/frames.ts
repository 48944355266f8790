/**
 * Which frames of a video the model sees: the authors' evaluation sampling,
 * `get_frame_indices(num_frames, vlen, sample="middle")` in dataset/video_utils.py.
 *
 * The video's vlen frames are cut into n = min(T, vlen) intervals by
 *
 *   edges = np.linspace(0, vlen, n + 1).astype(int)
 *
 * and interval i contributes its middle frame, (edges[i] + (edges[i+1] - 1)) // 2.
 * When the video has fewer frames than asked for (vlen < T), n = vlen, every frame is
 * taken once and the list is padded to T entries by repeating the last index.
 *
 * numpy (1.24) computes linspace in float64 as k * (vlen / n) for k < n and puts `stop`
 * itself in the last slot; astype(int) truncates toward zero. Both are reproduced here
 * operation for operation, so the truncation sees the same doubles numpy does.
 */

/** The sampled frame indices, and whether the list was padded (vlen < T). */
export interface FrameSample {
  readonly indices: Int32Array;
  readonly padded: boolean;
}

/** numpy.linspace(0, stop, count) with endpoint=True, in float64, then astype(int). */
export function truncatedLinspace(stop: number, count: number): number[] {
  const edges: number[] = [];
  const step = stop / (count - 1);
  for (let k = 0; k < count; k++) {
    // numpy writes `stop` into the last slot exactly instead of (count - 1) * step.
    const value = count > 1 && k === count - 1 ? stop : k * step;
    edges.push(Math.trunc(value));
  }
  return edges;
}

/**
 * The reference's 'middle' sampling of `numFrames` indices from a video of `vlen` frames
 * (both positive integers; a video with no frames has nothing to sample, and the
 * reference fails on it with an IndexError).
 */
export function middleFrameSample(numFrames: number, vlen: number): FrameSample {
  if (!Number.isSafeInteger(numFrames) || numFrames < 1) {
    throw new RangeError(`numFrames must be a positive integer, got ${numFrames}`);
  }
  if (!Number.isSafeInteger(vlen) || vlen < 1) {
    throw new RangeError(`vlen must be a positive integer, got ${vlen}`);
  }
  const intervals = Math.min(numFrames, vlen);
  const edges = truncatedLinspace(vlen, intervals + 1);
  const indices = new Int32Array(numFrames);
  for (let i = 0; i < intervals; i++) {
    const first = edges[i]!;
    const last = edges[i + 1]! - 1;
    // Python's // floors; the operands are never negative here, but floor keeps the meaning.
    indices[i] = Math.floor((first + last) / 2);
  }
  indices.fill(indices[intervals - 1]!, intervals);
  return { indices, padded: intervals < numFrames };
}

/** Just the indices of middleFrameSample. */
export function middleFrameIndices(numFrames: number, vlen: number): Int32Array {
  return middleFrameSample(numFrames, vlen).indices;
}
