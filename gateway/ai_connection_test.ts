import assert from "node:assert/strict";
import { gatewayProof, newNonce, proofMatches, serverProof } from "../shared/audio_auth.ts";
import { delay } from "../shared/async.ts";
import { encodeV2, FrameDecoder, type V2Message } from "../shared/frame_codec.ts";
import { createLogger } from "../shared/log.ts";
import { AiConnection } from "./ai_connection.ts";
import { V2_PROTOCOL } from "./ai_protocol.ts";

const SECRET = "c".repeat(64);
const OTHER = "d".repeat(64);
/** Polls before a test counts as hung (a count, not a time bound). */
const MAX_POLLS = 2000;

/**
 * A server written from docs/protocol.md "Authentication": answers the hello with a nonce and a
 * proof made with `secret` (none when `secret` is undefined), and records what the gateway sent.
 */
function authServer(secret: string | undefined) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const received: V2Message[] = [];
  let authOk: boolean | undefined;
  const conns: Deno.Conn[] = [];
  const accepting = (async () => {
    try {
      for await (const conn of listener) {
        conns.push(conn);
        void (async () => {
          const decoder = new FrameDecoder({ version: 2 });
          const buffer = new Uint8Array(65536);
          const serverNonce = newNonce();
          let gatewayNonce = "";
          for (;;) {
            const n = await conn.read(buffer).catch(() => null);
            if (n === null) return;
            for (const item of decoder.push(buffer.subarray(0, n))) {
              if (item.version !== 2) continue;
              const m = item.message;
              received.push(m);
              if (m.type === "hello") {
                gatewayNonce = m.nonce ?? "";
                await conn.write(encodeV2({
                  type: "hello",
                  version: 2,
                  role: "server",
                  capabilities: ["ping"],
                  ts: Date.now(),
                  ...(secret === undefined ? {} : {
                    nonce: serverNonce,
                    proof: serverProof(secret, gatewayNonce, serverNonce),
                  }),
                }));
              }
              if (m.type === "auth" && secret !== undefined) {
                authOk = proofMatches(gatewayProof(secret, serverNonce, gatewayNonce), m.proof);
              }
            }
          }
        })();
      }
    } catch {
      // closed
    }
  })();
  return {
    port: listener.addr.port,
    received,
    get authOk() {
      return authOk;
    },
    async close() {
      listener.close();
      for (const conn of conns) {
        try {
          conn.close();
        } catch {
          // closed
        }
      }
      await accepting;
    },
  };
}

async function run(serverSecret: string | undefined, gatewaySecret: string | undefined) {
  const server = authServer(serverSecret);
  const records: { msg: string }[] = [];
  const log = createLogger("test.ai", {
    level: "error",
    write: (l) => records.push(JSON.parse(l)),
  });
  let ready = 0;
  const connection = new AiConnection(
    { host: "127.0.0.1", port: server.port, protocol: V2_PROTOCOL, log, secret: gatewaySecret },
    { ready: () => ready++, turn: () => {}, lost: () => {} },
  );
  connection.start();
  // Until the gateway either became ready or gave up on this server (an error logged).
  for (let polls = 0; ready === 0 && records.length === 0; polls++) {
    assert.ok(polls < MAX_POLLS, "neither ready nor refused");
    await delay(5);
  }
  // A little longer, for the auth message to arrive.
  const authenticating = gatewaySecret !== undefined && ready > 0;
  for (let polls = 0; authenticating && server.authOk === undefined; polls++) {
    assert.ok(polls < MAX_POLLS, "no auth message");
    await delay(5);
  }
  connection.close("test over");
  await server.close();
  return { ready, records, received: server.received, authOk: server.authOk };
}

Deno.test("the same secret: the gateway checks the server's proof and proves its own", async () => {
  const { ready, received, authOk } = await run(SECRET, SECRET);
  assert.equal(ready, 1);
  assert.equal(authOk, true);
  const hello = received[0];
  assert.ok(
    hello.type === "hello" && hello.nonce !== undefined && /^[0-9a-f]{64}$/.test(hello.nonce),
  );
  assert.deepEqual(received.map((m) => m.type).slice(0, 2), ["hello", "auth"]);
});

Deno.test("a server with another secret is refused by the gateway: nothing but the hello is sent", async () => {
  const { ready, records, received } = await run(OTHER, SECRET);
  assert.equal(ready, 0);
  assert.match(records[0].msg, /proof does not match.*AI_SERVER_SECRET/);
  assert.deepEqual(received.map((m) => m.type), ["hello"]);
});

Deno.test("a server that does not authenticate itself is refused when the gateway has a secret", async () => {
  const { ready, records, received } = await run(undefined, SECRET);
  assert.equal(ready, 0);
  assert.match(records[0].msg, /did not authenticate itself/);
  assert.deepEqual(received.map((m) => m.type), ["hello"]);
});

Deno.test("without a secret the hello carries no nonce", async () => {
  const { ready, received } = await run(undefined, undefined);
  assert.equal(ready, 1);
  const hello = received[0];
  assert.ok(hello.type === "hello" && hello.nonce === undefined);
});
