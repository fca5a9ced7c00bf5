import assert from "node:assert/strict";
import sharp from "sharp";
import { decodeImage, decodeRgba, sniffImage, toImageBox } from "./image_decoder.ts";
import { GIF_1X1, jpeg, photo, pngDeclaring, truncatedJpeg } from "./test_images.ts";
import { ImageError, type ImageErrorCode } from "./types.ts";

const LETTERBOX = { inputSize: 64, padValue: 114 };

async function rejectsWith(promise: Promise<unknown>, code: ImageErrorCode, pattern: RegExp) {
  await assert.rejects(promise, (error) => {
    assert.ok(error instanceof ImageError, `expected ImageError, got ${error}`);
    assert.equal(error.code, code);
    assert.match(error.message, pattern);
    return true;
  });
}

Deno.test("sniffImage: JPEG, PNG and WebP by their magic bytes", async () => {
  assert.equal(sniffImage(await jpeg("coffee")), "jpeg");
  assert.equal(sniffImage(await photo("coffee")), "png");
  const webp = new Uint8Array(await sharp(await photo("coffee")).webp().toBuffer());
  assert.equal(sniffImage(webp), "webp");
});

Deno.test("sniffImage: names what is wrong with bytes that are no usable image", () => {
  assert.throws(
    () => sniffImage(new TextEncoder().encode("hello, this is not a picture")),
    (e) => e instanceof ImageError && e.code === "not_image" && /68 65 6c 6c/.test(e.message),
  );
  assert.throws(() => sniffImage(new Uint8Array()), (e) => (e as ImageError).code === "not_image");
  assert.throws(
    () => sniffImage(GIF_1X1),
    (e) => e instanceof ImageError && e.code === "unsupported_format" && /GIF/.test(e.message),
  );
  assert.throws(
    () => sniffImage(new Uint8Array(101), 100),
    (e) => e instanceof ImageError && e.code === "too_large" && /101 bytes.*100/.test(e.message),
  );
});

Deno.test("decodeImage: a PNG declaring 100,000 × 100,000 pixels is refused from its header", async () => {
  const bomb = pngDeclaring(100_000, 100_000);
  const rssBefore = Deno.memoryUsage().rss;
  await rejectsWith(decodeImage(bomb, LETTERBOX), "too_large", /100000 × 100000/);
  // Decoding would need 30 GB; refusing it allocates nothing of the kind.
  assert.ok(Deno.memoryUsage().rss - rssBefore < 100 * 1024 * 1024);
});

Deno.test("decodeImage: a truncated JPEG is 'truncated', not a grey picture", async () => {
  await rejectsWith(decodeImage(await truncatedJpeg(), LETTERBOX), "truncated", /jpeg/);
});

Deno.test("decodeImage: letterboxes a 600×400 photo into the square, centred, padded", async () => {
  const decoded = await decodeImage(await photo("coffee"), LETTERBOX);
  assert.deepEqual([decoded.format, decoded.width, decoded.height], ["png", 600, 400]);
  const { rgb, size, scale, padX, padY } = decoded.letterbox;
  assert.equal(size, 64);
  assert.equal(rgb.length, 64 * 64 * 3);
  assert.equal(scale, 64 / 600);
  // 400 · 64/600 = 42.7 → 43 rows of picture, 10 rows of padding above and 11 below.
  assert.deepEqual([padX, padY], [0, 10]);
  const pixel = (x: number, y: number) => [...rgb.subarray((y * 64 + x) * 3, (y * 64 + x) * 3 + 3)];
  assert.deepEqual(pixel(32, 0), [114, 114, 114]);
  assert.deepEqual(pixel(32, 63), [114, 114, 114]);
  assert.notDeepEqual(pixel(32, 32), [114, 114, 114]);
});

Deno.test("toImageBox: maps letterboxed input pixels back to the original, clipped", () => {
  const letterbox = { size: 640, scale: 0.5, padX: 0, padY: 140 }; // 1280×720 into 640²
  assert.deepEqual(toImageBox([270, 270, 100, 100], letterbox, 1280, 720), [540, 260, 200, 200]);
  // A box reaching into the padding is clipped to the image.
  assert.deepEqual(toImageBox([-10, 100, 50, 60], letterbox, 1280, 720), [0, 0, 80, 40]);
});

Deno.test("decodeRgba: downscales the longer side, keeps the aspect, adds alpha", async () => {
  const { data, width, height } = await decodeRgba(await photo("coffee"), 300);
  assert.deepEqual([width, height], [300, 200]);
  assert.equal(data.length, 300 * 200 * 4);
});

Deno.test("decodeImage: 16-bit, grey, RGBA, CMYK and WebP all become 8-bit RGB", async () => {
  const source = await photo("coffee");
  const variants = {
    png: [
      sharp(source).toColourspace("rgb16").png(),
      sharp(source).toColourspace("grey16").png(),
      sharp(source).greyscale().png(),
      sharp(source).ensureAlpha(0.5).png(),
    ],
    jpeg: [sharp(source).toColourspace("cmyk").jpeg()],
    webp: [sharp(source).webp()],
  };
  const centre = (32 * 64 + 32) * 3; // inside the picture, not the padding
  for (const [format, images] of Object.entries(variants)) {
    for (const image of images) {
      const decoded = await decodeImage(new Uint8Array(await image.toBuffer()), LETTERBOX);
      assert.deepEqual([decoded.format, decoded.width, decoded.height], [format, 600, 400]);
      assert.equal(decoded.letterbox.rgb.length, 64 * 64 * 3);
      // The coffee's centre pixel is a mid-tone in every variant, not a byte-swapped extreme.
      const value = decoded.letterbox.rgb[centre];
      assert.ok(value > 60 && value < 200, `${format}: centre red ${value}`);
    }
  }
});
