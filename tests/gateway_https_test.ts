/**
 * The gateway process serves the browser device page over HTTPS when GATEWAY_TLS_CERT and
 * GATEWAY_TLS_KEY are set (browsers give a page the microphone only on https or localhost), on
 * GATEWAY_HTTP_HOST, with its signaling WebSocket on wss.
 */
import { WebPairing } from "../shared/web_pairing.ts";
import assert from "node:assert/strict";
import { startGatewayProcess } from "../scripts/lib/gateway_process.ts";
import { startMosquitto } from "../scripts/lib/mosquitto.ts";
import { freePort } from "../scripts/lib/ports.ts";
import { selfSignedCertificate } from "./helpers/tls.ts";

Deno.test("the gateway serves its device page over https and wss from GATEWAY_TLS_*", async () => {
  const dir = await Deno.makeTempDir({ prefix: "naila_gateway_https_" });
  const broker = await startMosquitto();
  const { cert, key } = await selfSignedCertificate(dir);
  const client = Deno.createHttpClient({ caCerts: [await Deno.readTextFile(cert)] });
  let gateway: Awaited<ReturnType<typeof startGatewayProcess>> | undefined;
  try {
    const port = await freePort();
    gateway = await startGatewayProcess({
      MQTT_HOST: "127.0.0.1",
      MQTT_PORT: String(broker.port),
      // Nothing listens there: the page does not need the AI server.
      AI_SERVER_PORT: String(await freePort()),
      GATEWAY_WEB: "on",
      GATEWAY_HTTP_HOST: "127.0.0.1",
      GATEWAY_HTTP_PORT: String(port),
      GATEWAY_TLS_CERT: cert,
      GATEWAY_TLS_KEY: key,
      NAILA_DATA_DIR: dir,
    });
    const listening = await gateway.waitForLog((l) => l.msg === "device page listening", 10_000);
    assert.deepEqual(listening.fields, { port, https: true, pairing: true });

    const response = await fetch(`https://127.0.0.1:${port}/`, { client });
    assert.equal(response.status, 200);
    assert.match(await response.text(), /RTCPeerConnection/);

    // A browser paired with the gateway's code (what its pairing link does).
    const pairing = WebPairing.open(dir);
    const { token } = pairing.pair(pairing.code, "web_https");
    const socket = new WebSocket(`wss://127.0.0.1:${port}/ws?device=web_https&token=${token}`, {
      client,
    });
    await new Promise((resolve, reject) => {
      socket.addEventListener("open", resolve, { once: true });
      socket.addEventListener("error", reject, { once: true });
    });
    await gateway.waitForLog(
      (l) => l.msg === "browser device connected" && l.fields?.device === "web_https",
      10_000,
    );
    const closed = new Promise((resolve) => socket.addEventListener("close", resolve));
    socket.close();
    await closed;
    assert.equal(await gateway.stop(), 0);
  } finally {
    await gateway?.kill();
    client.close();
    await broker.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
