import assert from "node:assert/strict";
import { connectMqtt } from "../shared/mqtt.ts";
import { createLogger } from "../shared/log.ts";
import { WebPairing } from "../shared/web_pairing.ts";
import { startMosquitto } from "../tests/helpers/mosquitto.ts";
import { MAX_MESSAGE_BYTES, REPLACED_CLOSE_CODE, serveDevicePage } from "./web_bridge.ts";

/** A broker, a data dir with a pairing store and a bridge that requires pairing. */
async function startPairedBridge(options: { maxSockets?: number } = {}) {
  const broker = await startMosquitto();
  const dataDir = await Deno.makeTempDir({ prefix: "naila_web_pairing_" });
  const pairing = WebPairing.open(dataDir);
  const mqtt = await connectMqtt(
    { embedded: false, host: "127.0.0.1", port: broker.port },
    { clientId: `web-security-test-${crypto.randomUUID().slice(0, 8)}` },
  );
  const bridge = await serveDevicePage({
    port: 0,
    hostname: "127.0.0.1",
    mqtt,
    log: createLogger("web_bridge_security_test", { level: "error" }),
    pairing,
    maxSockets: options.maxSockets,
  });
  const base = `127.0.0.1:${bridge.port}`;
  return {
    bridge,
    pairing,
    base,
    origin: `http://${base}`,
    async close() {
      await bridge.close();
      await mqtt.close();
      await broker.stop();
      await Deno.remove(dataDir, { recursive: true });
    },
  };
}

/** Opens a socket; resolves "open" or the close code when it never opened. */
function openSocket(
  url: string,
  origin?: string,
): Promise<{ socket: WebSocket; result: "open" | number }> {
  const socket = new WebSocket(url, origin ? { headers: { origin } } : {});
  return new Promise((resolve) => {
    socket.addEventListener("open", () => resolve({ socket, result: "open" }), { once: true });
    socket.addEventListener("close", (e) => resolve({ socket, result: e.code }), { once: true });
  });
}

/** The HTTP status line a raw upgrade request gets (what a refused browser sees). */
async function upgradeStatus(port: number, path: string, origin?: string): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const lines = [
    `GET ${path} HTTP/1.1`,
    `Host: 127.0.0.1:${port}`,
    "Upgrade: websocket",
    "Connection: Upgrade",
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
    "Sec-WebSocket-Version: 13",
    ...(origin ? [`Origin: ${origin}`] : []),
  ];
  await conn.write(new TextEncoder().encode(lines.join("\r\n") + "\r\n\r\n"));
  const buffer = new Uint8Array(4096);
  const n = await conn.read(buffer);
  conn.close();
  return new TextDecoder().decode(buffer.subarray(0, n ?? 0));
}

Deno.test("pairing: the code buys an id and a token; the socket needs both and the same origin", async (t) => {
  const { base, origin, pairing, bridge, close } = await startPairedBridge();
  try {
    let paired = { device: "", token: "" };
    await t.step("a wrong code is refused", async () => {
      const response = await fetch(`http://${base}/pair`, {
        method: "POST",
        headers: { origin },
        body: JSON.stringify({ code: "0".repeat(32) }),
      });
      assert.equal(response.status, 403);
      assert.match((await response.json()).error, /pairing code is wrong/);
    });
    await t.step("the right code pairs a new browser id", async () => {
      const response = await fetch(`http://${base}/pair`, {
        method: "POST",
        headers: { origin },
        body: JSON.stringify({ code: pairing.code }),
      });
      assert.equal(response.status, 200);
      paired = await response.json();
      assert.match(paired.device, /^web_[0-9a-f]{8}$/);
      assert.match(paired.token, /^[0-9a-f]{64}$/);
    });
    await t.step("pairing an id that has a token again is refused (no takeover)", async () => {
      const response = await fetch(`http://${base}/pair`, {
        method: "POST",
        headers: { origin },
        body: JSON.stringify({ code: pairing.code, device: paired.device }),
      });
      assert.equal(response.status, 409);
    });
    const url = (token: string) => `/ws?device=${paired.device}&token=${token}`;
    await t.step("no token or a wrong token: 403, no socket", async () => {
      assert.match(
        await upgradeStatus(bridge.port, `/ws?device=${paired.device}`, origin),
        /^HTTP\/1.1 403/,
      );
      const wrong = await upgradeStatus(bridge.port, url("f".repeat(64)), origin);
      assert.match(wrong, /^HTTP\/1.1 403/);
      assert.match(wrong, /not paired with this browser/);
    });
    await t.step("a cross-origin socket is refused even with the right token", async () => {
      const status = await upgradeStatus(bridge.port, url(paired.token), "http://evil.example");
      assert.match(status, /^HTTP\/1.1 403/);
      assert.match(status, /origin http:\/\/evil.example/);
      const { result } = await openSocket(
        `ws://${base}${url(paired.token)}`,
        "http://evil.example",
      );
      assert.notEqual(result, "open");
      assert.deepEqual(bridge.devices(), []);
    });
    await t.step(
      "same origin and the right token connect; a second tab replaces the first (code 4000)",
      async () => {
        const { socket, result } = await openSocket(`ws://${base}${url(paired.token)}`, origin);
        assert.equal(result, "open");
        assert.deepEqual(bridge.devices(), [paired.device]);
        const firstClosed = new Promise<CloseEvent>((resolve) =>
          socket.addEventListener("close", resolve, { once: true })
        );
        const second = await openSocket(`ws://${base}${url(paired.token)}`, origin);
        assert.equal(second.result, "open");
        const event = await firstClosed;
        assert.equal(event.code, REPLACED_CLOSE_CODE);
        assert.match(event.reason, /replaced/);
        assert.deepEqual(bridge.devices(), [paired.device]);
        const secondClosed = new Promise((resolve) =>
          second.socket.addEventListener("close", resolve, { once: true })
        );
        second.socket.close();
        await secondClosed;
      },
    );
  } finally {
    await close();
  }
});

Deno.test("a 60 MB message is refused from its frame header, before its payload is sent", async () => {
  const { bridge, pairing, close } = await startPairedBridge();
  const { device, token } = pairing.pair(pairing.code);
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: bridge.port });
  try {
    const request = [
      `GET /ws?device=${device}&token=${token} HTTP/1.1`,
      `Host: 127.0.0.1:${bridge.port}`,
      "Upgrade: websocket",
      "Connection: Upgrade",
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
      "Sec-WebSocket-Version: 13",
    ].join("\r\n") + "\r\n\r\n";
    await conn.write(new TextEncoder().encode(request));
    const buffer = new Uint8Array(65536);
    const n = await conn.read(buffer);
    assert.match(new TextDecoder().decode(buffer.subarray(0, n!)), /^HTTP\/1.1 101/);
    // A masked text frame announcing 60 MB (64-bit length), then only 1 KiB of it.
    const header = new Uint8Array(14);
    header[0] = 0x81;
    header[1] = 0x80 | 127;
    new DataView(header.buffer).setBigUint64(2, 60_000_000n);
    await conn.write(header);
    await conn.write(new Uint8Array(1024));
    // The bridge answers with a close frame 1009 (message too big) without waiting for the rest.
    const got: number[] = [];
    while (got.length < 4) {
      const read = await conn.read(buffer);
      if (read === null) break;
      got.push(...buffer.subarray(0, read));
    }
    assert.equal(got[0], 0x88, "a close frame");
    assert.equal((got[2] << 8) | got[3], 1009);
    assert.ok(60_000_000 > MAX_MESSAGE_BYTES);
  } finally {
    conn.close();
    await close();
  }
});

Deno.test("sockets beyond the cap are refused with 503", async () => {
  const { base, bridge, pairing, origin, close } = await startPairedBridge({ maxSockets: 2 });
  const sockets: WebSocket[] = [];
  try {
    for (let i = 0; i < 2; i++) {
      const { device, token } = pairing.pair(pairing.code);
      const { socket, result } = await openSocket(
        `ws://${base}/ws?device=${device}&token=${token}`,
        origin,
      );
      assert.equal(result, "open");
      sockets.push(socket);
    }
    const { device, token } = pairing.pair(pairing.code);
    const status = await upgradeStatus(bridge.port, `/ws?device=${device}&token=${token}`, origin);
    assert.match(status, /^HTTP\/1.1 503/);
    assert.equal(bridge.devices().length, 2);
  } finally {
    for (const socket of sockets) {
      const closed = new Promise((resolve) =>
        socket.addEventListener("close", resolve, { once: true })
      );
      socket.close();
      await closed;
    }
    await close();
  }
});
