/**
 * Test fixtures of gateway/video/: the shared ones (photos, VP8 encoding, Y4M clips) from
 * shared/video/testing.ts, plus libvpx thumbnails. Test-only.
 */

import { downscaleLuma, thumbnailSize } from "./luma_thumbnail.ts";
import { VpxDecoder } from "./vpx_decoder.ts";
import { ivfFrames } from "../../shared/video/testing.ts";

export * from "../../shared/video/testing.ts";

/** A decoded frame's grey thumbnail and the frame's size. */
export interface Thumbnail {
  image: { data: Uint8Array; width: number; height: number };
  frame: { width: number; height: number };
}

/** Decodes every frame of an IVF with libvpx and downscales each to its grey thumbnail. */
export function thumbnails(ivf: Uint8Array): Thumbnail[] {
  const decoder = new VpxDecoder();
  try {
    return ivfFrames(ivf).map((vp8) => {
      const frame = decoder.decode(vp8)!;
      const size = thumbnailSize(frame.width, frame.height);
      const data = downscaleLuma(frame.y, new Uint8Array(size.width * size.height), size);
      return { image: { data, ...size }, frame: { width: frame.width, height: frame.height } };
    });
  } finally {
    decoder.close();
  }
}
