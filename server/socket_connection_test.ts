import assert from "node:assert/strict";
import {
  parseV1Responses,
  readUntil,
  v1Request,
  V2Client,
} from "../scripts/lib/audio_socket_clients.ts";
import { withServer } from "./audio_socket_testing.ts";
import { EchoPipeline } from "./pipeline.ts";

const encoder = new TextEncoder();

Deno.test("garbage on one connection closes it and does not disturb another", async () => {
  await withServer(new EchoPipeline(), async (server) => {
    const good = await V2Client.connect(server.port);
    const v1Garbage = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
    const v2Garbage = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
    try {
      await good.send({ type: "start", turn: "t1", device: "d", rate: 16000, ts: 1 });
      await v1Garbage.write(encoder.encode("this is|not a|frame\n"));
      await v2Garbage.write(encoder.encode('{"type":"hello","version":2}\n'));
      const v1 = await readUntil(v1Garbage, () => false);
      assert.deepEqual(v1, { bytes: new Uint8Array(0), closed: true });
      const v2 = await readUntil(v2Garbage, () => false);
      assert.equal(v2.closed, true);
      const error = new TextDecoder().decode(v2.bytes);
      assert.match(error, /^\{"type":"error","code":"bad_frame","message":"ts undefined is not/);
      // The good connection's turn goes on as if nothing happened.
      await good.send({
        type: "audio",
        turn: "t1",
        seq: 0,
        rate: 16000,
        ts: 2,
        pcm: new Uint8Array(320),
      });
      await good.send({ type: "end", turn: "t1", ts: 3 });
      await good.next((m) => m.type === "end");
    } finally {
      good.close();
      v1Garbage.close();
      v2Garbage.close();
    }
  });
});

Deno.test("300 connections of random and mutated bytes never take the server down", async () => {
  // Seeded so a failure can be replayed: xorshift32.
  let seed = 0x2545f491;
  const random = () => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) / 2 ** 32;
  };
  const valid = [
    encoder.encode("kitchen|4|16000|r1\n\x01\x00\x02\x03"),
    encoder.encode(
      '{"type":"hello","version":2,"role":"gateway","capabilities":["text"],"ts":1}\n' +
        '{"type":"start","turn":"t1","device":"d","rate":16000,"ts":2}\n' +
        '{"type":"audio","turn":"t1","seq":0,"rate":16000,"ts":3,"length":4}\n\x01\x00\x02\x03' +
        '{"type":"end","turn":"t1","ts":4}\n',
    ),
  ];
  const sample = (): Uint8Array => {
    const base = valid[Math.floor(random() * valid.length)].slice();
    if (random() < 0.3) return base.map(() => Math.floor(random() * 256));
    for (let i = 0; i < 1 + random() * 4; i++) {
      base[Math.floor(random() * base.length)] = Math.floor(random() * 256);
    }
    return base.subarray(0, Math.max(1, Math.floor(random() * base.length * 1.2)));
  };
  await withServer(new EchoPipeline(), async (server) => {
    for (let batch = 0; batch < 30; batch++) {
      await Promise.all(Array.from({ length: 10 }, async () => {
        const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
        try {
          await conn.write(sample()).catch(() => {});
          await readUntil(conn, () => false, 50);
        } finally {
          try {
            conn.close();
          } catch {
            // closed by the read timeout
          }
        }
      }));
    }
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
    try {
      await conn.write(
        v1Request({ device: "kitchen", rate: 16000, request: "after", pcm: new Uint8Array(640) }),
      );
      const { bytes } = await readUntil(conn, (b) => parseV1Responses(b).length === 1);
      assert.deepEqual(parseV1Responses(bytes)[0].header, ["kitchen", "1920", "48000", "after"]);
    } finally {
      conn.close();
    }
  }, { timeouts: { frameMs: 100, idleMs: 100, turnMs: 100 } });
});

Deno.test("an oversized frame is refused before its payload is read", async () => {
  await withServer(new EchoPipeline(), async (server) => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
    try {
      await conn.write(encoder.encode("kitchen|999999999|48000|r1\n"));
      assert.equal((await readUntil(conn, () => false)).closed, true);
    } finally {
      conn.close();
    }
  });
});

Deno.test("a frame that stalls half-way times out (v1 closed, v2 told why)", async () => {
  await withServer(new EchoPipeline(), async (server) => {
    const v1 = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
    const v2 = await V2Client.connect(server.port);
    try {
      await v1.write(encoder.encode("kitchen|1000|16000|r1\n\x01\x02"));
      await v2.conn.write(encoder.encode('{"type":"ping","id":1,'));
      // `closed` means the server closed it (readUntil's own guard reports false); v1 connections
      // have no other timer, so the stalled frame is why.
      assert.equal((await readUntil(v1, () => false)).closed, true);
      const error = await v2.next((m) => m.type === "error");
      assert.ok(error.type === "error" && error.code === "timeout", JSON.stringify(error));
      assert.match(error.message, /^frame incomplete after 200 ms \(\d+ bytes buffered\)$/);
    } finally {
      v1.close();
      v2.close();
    }
  }, { timeouts: { frameMs: 200 } });
});

Deno.test("a v2 connection that goes silent after its hello is told so and closed", async () => {
  await withServer(new EchoPipeline(), async (server) => {
    const client = await V2Client.connect(server.port);
    try {
      const error = await client.next((m) => m.type === "error");
      assert.ok(error.type === "error" && error.code === "timeout" && error.turn === undefined);
      await assert.rejects(client.next(() => false), /connection closed/);
    } finally {
      client.close();
    }
  }, { timeouts: { idleMs: 200 } });
});
