import assert from "node:assert/strict";
import { readUntil, sendTurn, v1Request, V2Client } from "../scripts/lib/audio_socket_clients.ts";
import { gatewayProof, newNonce, serverProof } from "../shared/audio_auth.ts";
import { encodeV2, FrameDecoder, type V2Message } from "../shared/frame_codec.ts";
import { parseRanges } from "../shared/ip_ranges.ts";
import { selfSignedCertificate } from "../tests/helpers/tls.ts";
import { withServer } from "./audio_socket_testing.ts";
import { EchoPipeline } from "./pipeline.ts";

const SECRET = "a".repeat(24) + "0123456789abcdef0123456789abcdef";
const OTHER_SECRET = "b".repeat(64);
/** Polls before a test counts as hung (a count, not a time bound). */
const MAX_POLLS = 4000;
const PCM = new Uint8Array(3200).fill(3);

function hello(nonce?: string): V2Message {
  return {
    type: "hello",
    version: 2,
    role: "gateway",
    capabilities: ["stream", "text"],
    ts: Date.now(),
    ...(nonce === undefined ? {} : { nonce }),
  };
}

/** Every v2 message in `bytes` read from the server (which may begin with an error). */
function messages(bytes: Uint8Array): V2Message[] {
  const decoder = new FrameDecoder({ version: 2 });
  decoder.push(encodeV2(hello())); // the decoder wants a hello first; the server's may be missing
  return decoder.push(bytes).flatMap((item) => item.version === 2 ? [item.message] : []);
}

/** Raw handshake: hello with `nonce`, then whatever `answer` makes of the server's hello. */
async function rawHandshake(
  port: number,
  answer: (serverHello: V2Message & { type: "hello" }, gatewayNonce: string) => V2Message[],
): Promise<{ conn: Deno.TcpConn; seen: V2Message[]; closed: boolean }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const nonce = newNonce();
  await conn.write(encodeV2(hello(nonce)));
  const first = await readUntil(conn, (bytes) => messages(bytes).length > 0);
  const serverHello = messages(first.bytes)[0];
  assert.equal(serverHello.type, "hello");
  const out = answer(serverHello as V2Message & { type: "hello" }, nonce);
  for (const message of out) await conn.write(encodeV2(message));
  const rest = await readUntil(conn, () => false);
  const all = new Uint8Array([...first.bytes, ...rest.bytes]);
  return { conn, seen: messages(all), closed: rest.closed };
}

function errorsOf(seen: V2Message[]): string[] {
  return seen.flatMap((m) => m.type === "error" ? [m.code] : []);
}

Deno.test("the right secret: hellos carry nonces and proofs, and turns flow", async () => {
  await withServer(new EchoPipeline(), async (server) => {
    const client = await V2Client.connect(server.port, undefined, SECRET);
    try {
      await sendTurn(client, { turn: "t1", rate: 16000, pcm: PCM });
      const end = await client.next((m) => m.type === "end" && m.turn === "t1");
      assert.equal(end.type, "end");
      assert.equal(server.connections, 1);
    } finally {
      client.close();
    }
  }, { secret: SECRET });
});

Deno.test("a wrong secret is refused with auth_failed and gets no turn", async () => {
  await withServer(new EchoPipeline(), async (server) => {
    const start = { type: "start", turn: "t1", device: "real", rate: 16000, ts: 1 } as const;
    const { conn, seen, closed } = await rawHandshake(server.port, (h, ng) => [
      { type: "auth", proof: gatewayProof(OTHER_SECRET, h.nonce!, ng), ts: Date.now() },
      start,
      { type: "end", turn: "t1", ts: 2 },
    ]);
    conn.close();
    assert.ok(closed, "the server closed the connection");
    assert.deepEqual(errorsOf(seen), ["auth_failed"]);
    const error = seen.find((m) => m.type === "error");
    assert.match(error?.type === "error" ? error.message : "", /AI_SERVER_SECRET/);
    assert.deepEqual(seen.map((m) => m.type), ["hello", "error"], "nothing but the refusal");
    assert.equal(server.connections, 0);
  }, { secret: SECRET });
});

Deno.test("a hello without a nonce (no secret configured) is refused with auth_required", async () => {
  await withServer(new EchoPipeline(), async (server) => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
    await conn.write(encodeV2(hello()));
    const { bytes, closed } = await readUntil(conn, () => false);
    conn.close();
    assert.ok(closed);
    assert.deepEqual(messages(bytes).map((m) => m.type === "error" ? m.code : m.type), [
      "auth_required",
    ]);
  }, { secret: SECRET });
});

Deno.test("a turn before auth gets auth_required, no transcript and no reply", async () => {
  await withServer(new EchoPipeline(), async (server) => {
    const { conn, seen } = await rawHandshake(server.port, () => [
      { type: "start", turn: "t1", device: "real", rate: 16000, ts: 1 },
      { type: "end", turn: "t1", ts: 2 },
    ]);
    conn.close();
    assert.deepEqual(seen.map((m) => m.type === "error" ? m.code : m.type), [
      "hello",
      "auth_required",
    ]);
  }, { secret: SECRET });
});

Deno.test("a replayed auth and a reflected server proof both fail", async () => {
  await withServer(new EchoPipeline(), async (server) => {
    // Connection 1 succeeds; its nonce and proof are recorded by an eavesdropper.
    const recorded = { nonce: newNonce(), proof: "" };
    const first = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
    await first.write(encodeV2(hello(recorded.nonce)));
    const answer = messages((await readUntil(first, (b) => messages(b).length > 0)).bytes)[0];
    assert.ok(answer.type === "hello" && answer.nonce !== undefined);
    recorded.proof = gatewayProof(SECRET, answer.nonce, recorded.nonce);
    await first.write(encodeV2({ type: "auth", proof: recorded.proof, ts: Date.now() }));
    await first.write(encodeV2({ type: "ping", id: 1, ts: Date.now() }));
    const pong = await readUntil(first, (b) => messages(b).some((m) => m.type === "pong"));
    first.close();
    assert.ok(messages(pong.bytes).some((m) => m.type === "pong"), "connection 1 authenticated");
    // Replay on a new connection, same gateway nonce: the server's nonce is new.
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
    await conn.write(encodeV2(hello(recorded.nonce)));
    await readUntil(conn, (bytes) => messages(bytes).length > 0);
    await conn.write(encodeV2({ type: "auth", proof: recorded.proof, ts: Date.now() }));
    const replay = await readUntil(conn, () => false);
    conn.close();
    assert.deepEqual(errorsOf(messages(replay.bytes)), ["auth_failed"]);
    // Reflection: the server's own proof sent back as the gateway's.
    const reflected = await rawHandshake(server.port, (h) => [
      { type: "auth", proof: h.proof!, ts: Date.now() },
    ]);
    reflected.conn.close();
    assert.deepEqual(errorsOf(reflected.seen), ["auth_failed"]);
  }, { secret: SECRET, authTimeoutMs: 500 });
});

Deno.test("the server's proof lets the gateway tell a server without the secret", async () => {
  await withServer(new EchoPipeline(), async (server) => {
    const { conn, seen } = await rawHandshake(server.port, () => []);
    conn.close();
    const serverHello = seen[0];
    assert.ok(serverHello.type === "hello" && serverHello.proof !== undefined);
    // The proof is over the gateway's nonce: one made with another secret does not match.
    assert.notEqual(
      serverHello.proof,
      serverProof(OTHER_SECRET, "0".repeat(64), serverHello.nonce!),
    );
  }, { secret: SECRET, authTimeoutMs: 300 });
});

Deno.test("a peer that does not authenticate in time is told auth_timeout and closed", async () => {
  await withServer(new EchoPipeline(), async (server) => {
    const { conn, seen, closed } = await rawHandshake(server.port, () => []);
    conn.close();
    assert.ok(closed);
    assert.deepEqual(errorsOf(seen), ["auth_timeout"]);
  }, { secret: SECRET, authTimeoutMs: 200 });
});

Deno.test("audio before auth is refused before it is buffered", async () => {
  await withServer(new EchoPipeline(), async (server) => {
    const big = new Uint8Array(960_000);
    const { conn, seen } = await rawHandshake(server.port, () => [
      { type: "audio", turn: "t1", seq: 0, rate: 48000, ts: 1, pcm: big },
    ]).catch(() => ({ conn: undefined, seen: [] as V2Message[] }));
    conn?.close();
    // The write of the big frame may fail once the server closed: the refusal came first.
    assert.ok(seen.length === 0 || errorsOf(seen).includes("auth_required"), JSON.stringify(seen));
    assert.equal(server.connections, 0);
  }, { secret: SECRET });
});

Deno.test("50 unauthenticated connections do not lock the real gateway out", async () => {
  await withServer(new EchoPipeline(), async (server) => {
    const intruders: Deno.TcpConn[] = [];
    try {
      for (let i = 0; i < 50; i++) {
        const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
        // A third say nothing, a third say hello and stop, a third send garbage.
        if (i % 3 === 1) await conn.write(encodeV2(hello(newNonce())));
        if (i % 3 === 2) await conn.write(new TextEncoder().encode('{"type":"start"}\n'));
        intruders.push(conn);
      }
      for (let polls = 0; server.pending > 16; polls++) {
        assert.ok(polls < MAX_POLLS, `${server.pending} pending`);
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      const gateway = await V2Client.connect(server.port, undefined, SECRET);
      try {
        await sendTurn(gateway, { turn: "t1", rate: 16000, pcm: PCM });
        await gateway.next((m) => m.type === "end" && m.turn === "t1");
        assert.equal(server.connections, 1, "only the gateway holds a slot");
        assert.ok(server.pending <= 16, `${server.pending} pending`);
      } finally {
        gateway.close();
      }
    } finally {
      for (const conn of intruders) {
        try {
          conn.close();
        } catch {
          // closed by the server
        }
      }
    }
  }, { secret: SECRET, maxConnections: 4 });
});

Deno.test("v1 is refused unless the address is allow-listed", async (t) => {
  const request = v1Request({ device: "real", rate: 16000, request: "r1", pcm: PCM });
  await t.step("no allow-list: refused, nothing answered", async () => {
    await withServer(new EchoPipeline(), async (server) => {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
      await conn.write(request);
      const { bytes, closed } = await readUntil(conn, () => false);
      conn.close();
      assert.ok(closed);
      assert.equal(bytes.length, 0);
    }, { secret: SECRET });
  });
  await t.step("allow-listed 127.0.0.1: answered", async () => {
    await withServer(new EchoPipeline(), async (server) => {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
      await conn.write(request);
      const { bytes } = await readUntil(conn, (b) => b.includes(10));
      conn.close();
      assert.match(new TextDecoder().decode(bytes.subarray(0, bytes.indexOf(10))), /^real\|/);
    }, { secret: SECRET, allow: parseRanges("127.0.0.0/8") });
  });
  await t.step("an address not on the allow-list is closed at once, v2 too", async () => {
    await withServer(new EchoPipeline(), async (server) => {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
      await conn.write(encodeV2(hello(newNonce()))).catch(() => 0);
      const { bytes, closed } = await readUntil(conn, () => false);
      conn.close();
      assert.ok(closed);
      assert.equal(bytes.length, 0);
    }, { secret: SECRET, allow: parseRanges("192.168.1.10") });
  });
});

Deno.test("over TLS with the CA: authenticates and serves a turn", async () => {
  const dir = await Deno.makeTempDir({ prefix: "socket_auth_tls_" });
  try {
    const { cert, key } = await selfSignedCertificate(dir);
    const certPem = await Deno.readTextFile(cert);
    await withServer(new EchoPipeline(), async (server) => {
      const conn = await Deno.connectTls({
        hostname: "127.0.0.1",
        port: server.port,
        caCerts: [certPem],
      });
      const client = await V2Client.handshake(conn, undefined, SECRET);
      try {
        await sendTurn(client, { turn: "t1", rate: 16000, pcm: PCM });
        await client.next((m) => m.type === "end" && m.turn === "t1");
      } finally {
        client.close();
      }
      // A plain TCP client gets nothing readable from a TLS listener.
      const plain = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
      await plain.write(encodeV2(hello(newNonce())));
      const { bytes } = await readUntil(plain, () => false);
      plain.close();
      assert.equal(messages(bytes.subarray(0, 0)).length, 0);
      assert.ok(!new TextDecoder().decode(bytes).includes('"hello"'));
    }, { secret: SECRET, tls: { cert: certPem, key: await Deno.readTextFile(key) } });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
