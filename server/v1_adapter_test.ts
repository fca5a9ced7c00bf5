import assert from "node:assert/strict";
import { parseV1Responses, readUntil, v1Request } from "../scripts/lib/audio_socket_clients.ts";
import { withServer } from "./audio_socket_testing.ts";
import { EchoPipeline, type Pipeline } from "./pipeline.ts";

Deno.test("v1: each request gets one 48 kHz response with the same ids, in order", async () => {
  await withServer(new EchoPipeline(), async (server) => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
    try {
      const pcm = new Uint8Array(1600 * 2).map((_, i) => i % 251);
      await conn.write(v1Request({ device: "living_room", rate: 16000, request: "req_1", pcm }));
      await conn.write(
        v1Request({
          device: "living_room",
          rate: 48000,
          request: "req_2",
          pcm: new Uint8Array(960),
        }),
      );
      const { bytes } = await readUntil(conn, (b) => parseV1Responses(b).length === 2);
      const [first, second] = parseV1Responses(bytes);
      assert.deepEqual(first.header.filter((_, i) => i !== 1), ["living_room", "48000", "req_1"]);
      assert.equal(Number(first.header[1]), first.body.length);
      assert.equal(first.body.length, pcm.length * 3, "0.1 s at 16 kHz echoed at 48 kHz");
      assert.deepEqual(second.header, ["living_room", "960", "48000", "req_2"]);
    } finally {
      conn.close();
    }
  });
});

Deno.test("v1: an utterance with nothing to say gets an empty body", async () => {
  const silent: Pipeline = {
    kind: "full",
    run: () =>
      Promise.resolve({ cancelled: false, transcript: "", reply: "", stages: {}, replyAudioMs: 0 }),
    markInterrupted: () => {},
  };
  await withServer(silent, async (server) => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
    try {
      await conn.write(
        v1Request({ device: "kitchen", rate: 16000, request: "r9", pcm: new Uint8Array(3200) }),
      );
      const { bytes } = await readUntil(conn, (b) => parseV1Responses(b).length === 1);
      assert.equal(new TextDecoder().decode(bytes), "kitchen|0|48000|r9\n");
    } finally {
      conn.close();
    }
  });
});
