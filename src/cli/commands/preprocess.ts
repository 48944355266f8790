import type { Command } from "commander";
import { parseIntOption } from "../../config/flags.js";
import { MAX_FRAMES, MAX_IMAGE_SIZE, preprocessVideo } from "../../inputs/video.js";
import { writeSafetensors } from "../../io/safetensors.js";
import { i32Tensor } from "../../ir/tensor.js";

/**
 * `sprig preprocess VIDEO --frames T [--image-size S] --out FILE.safetensors`: decodes a
 * video (or a folder of PNG/JPEG frames) with the system's ffmpeg, samples T frames and
 * resizes and normalises them exactly as the authors' evaluation does (src/inputs/video.ts),
 * and writes the model's input:
 *
 *   pixel_values   F32 [T, 3, S, S]
 *   frame_indices  I64 [T]   the decoded-frame numbers sampled
 *
 * with metadata source, kind, vlen, width, height, codec, container, frames, image_size,
 * sampling ("middle"), padded ("true" when vlen < T and the last frame was repeated) and
 * notes. The file is written atomically; a failed run leaves none.
 */

interface PreprocessFlags {
  readonly frames: string;
  readonly imageSize: string;
  readonly out: string;
}

export function registerPreprocess(program: Command): void {
  program
    .command("preprocess")
    .description(
      "decode a video (or a folder of frames), sample and resize frames as the SViTT evaluation does, and write pixel_values as safetensors",
    )
    .argument("<video>", "video file (anything ffmpeg decodes) or a folder of .png/.jpg frames")
    .requiredOption("--frames <T>", "number of frames to sample ('middle' of T equal segments)")
    .option("--image-size <S>", "side of the square frames, in pixels", "224")
    .requiredOption("--out <file>", "safetensors file to write")
    .action(async (video: string, flags: PreprocessFlags) => {
      const frames = parseIntOption(
        "--frames",
        "frames",
        flags.frames,
        { min: 1, max: MAX_FRAMES },
        8,
      );
      const imageSize = parseIntOption(
        "--image-size",
        "imageSize",
        flags.imageSize,
        { min: 1, max: MAX_IMAGE_SIZE },
        224,
      );
      const result = await preprocessVideo(video, { frames, imageSize });
      const { source } = result;
      await writeSafetensors(
        flags.out,
        {
          pixel_values: result.pixelValues,
          frame_indices: i32Tensor([frames], result.frameIndices),
        },
        {
          source: video,
          kind: source.kind,
          vlen: String(result.vlen),
          width: String(source.width),
          height: String(source.height),
          codec: source.codec,
          container: source.container,
          frames: String(frames),
          image_size: String(imageSize),
          sampling: "middle",
          padded: String(result.padded),
          notes: result.notes.join("; "),
        },
      );
      const shape = result.pixelValues.shape.join(",");
      process.stdout.write(
        `wrote ${flags.out}: pixel_values [${shape}] from frames ${[...result.frameIndices].join(",")} ` +
          `of ${result.vlen} (${source.width}x${source.height} ${source.codec})\n`,
      );
      for (const note of result.notes) process.stdout.write(`note: ${note}\n`);
    });
}
