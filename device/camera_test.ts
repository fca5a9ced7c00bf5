import assert from "node:assert/strict";
import { loadPhoto } from "./camera.ts";

const PHOTOS_DIR = new URL("../test-data/photos/", import.meta.url).pathname;

Deno.test("loadPhoto reads the format and size of real JPEG and PNG photos; refuses anything else", async () => {
  const dir = await Deno.makeTempDir({ prefix: "naila_camera_" });
  try {
    // A real JPEG as a camera makes it: the photo scaled to 1280×720 by ffmpeg.
    const ffmpeg = await new Deno.Command("ffmpeg", {
      args: [
        "-loglevel",
        "error",
        "-i",
        `${PHOTOS_DIR}astronaut.png`,
        "-vf",
        "scale=1280:720",
        `${dir}/person.jpg`,
      ],
    }).output();
    assert.ok(ffmpeg.success, new TextDecoder().decode(ffmpeg.stderr));
    const jpeg = await loadPhoto(`${dir}/person.jpg`);
    assert.deepEqual([jpeg.format, jpeg.width, jpeg.height], ["jpeg", 1280, 720]);
    const png = await loadPhoto(`${PHOTOS_DIR}chelsea.png`);
    assert.deepEqual([png.format, png.width, png.height], ["png", 451, 300]);
    await Deno.writeTextFile(`${dir}/notes.txt`, "not a photo");
    await assert.rejects(loadPhoto(`${dir}/notes.txt`), /notes\.txt is not a JPEG or PNG photo/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
