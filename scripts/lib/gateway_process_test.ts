import assert from "node:assert/strict";
import { gatewayEnvFor, startGatewayProcess } from "./gateway_process.ts";
import { startServerProcess } from "./server_process.ts";

/** First runs compile the gateway's modules; the AI connection follows "signaling ready". */
const CONNECT_TIMEOUT_MS = 20_000;

Deno.test("gatewayEnvFor: a gateway started with it logs in to the server's broker and reaches its audio socket", async () => {
  const server = await startServerProcess({ PIPELINE: "echo" });
  try {
    // "signaling ready" comes only after the MQTT login with the data dir's gateway credentials.
    const gateway = await startGatewayProcess(gatewayEnvFor(server));
    try {
      const connected = await gateway.waitForLog(
        (l) => l.msg === "AI server connected",
        CONNECT_TIMEOUT_MS,
      );
      assert.equal(connected.fields?.port, server.audioPort);
    } finally {
      await gateway.stop();
    }
  } finally {
    await server.stop();
  }
});
