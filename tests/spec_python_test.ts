/**
 * Byte-for-byte interoperability of v1 with the spec's own Python (section 6.1): the spec's
 * `AudioInferenceServer._handle_client` loop, run by python3, serves our real gateway; and a Python
 * client framing requests exactly as section 4.2 talks to our real server.
 */
import assert from "node:assert/strict";
import { DevicePeer } from "../device/peer.ts";
import { startGatewayProcess } from "../scripts/lib/gateway_process.ts";
import { startMosquitto } from "../scripts/lib/mosquitto.ts";
import { freePort } from "../scripts/lib/ports.ts";
import { startServerProcess } from "../scripts/lib/server_process.ts";
import { speak } from "../scripts/lib/speech.ts";

/**
 * Spec 6.1's server loop verbatim, with `_process` answering the utterance's own audio (the
 * spec's phase-1 passthrough) and a log of each header to stdout.
 */
const SPEC_SERVER = `
import asyncio, sys

class AudioInferenceServer:
    async def start(self, host, port):
        server = await asyncio.start_server(self._handle_client, host, port)
        print("listening", flush=True)
        await server.serve_forever()

    async def _process(self, device_id, pcm_bytes):
        return pcm_bytes

    async def _handle_client(self, reader, writer):
        while True:
            header = await reader.readline()
            if not header:
                break
            device_id, audio_len, sample_rate, request_id = (
                header.decode().strip().split("|")
            )
            print("request", device_id, audio_len, sample_rate, request_id, flush=True)
            pcm_bytes = await reader.readexactly(int(audio_len))
            response_audio = await self._process(device_id, pcm_bytes)
            resp_header = f"{device_id}|{len(response_audio)}|48000|{request_id}\\n"
            writer.write(resp_header.encode() + response_audio)
            await writer.drain()

asyncio.run(AudioInferenceServer().start("127.0.0.1", int(sys.argv[1])))
`;

/** A client framing one request per spec 4.2 and printing the response header and body length. */
const SPEC_CLIENT = `
import socket, sys, math, struct
samples = [int(8000 * math.sin(2 * math.pi * 440 * i / 16000)) for i in range(16000)]
pcm = struct.pack("<%dh" % len(samples), *samples)
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(f"py_device|{len(pcm)}|16000|req_py1\\n".encode() + pcm)
f = s.makefile("rb")
header = f.readline().decode().strip()
device_id, audio_len, sample_rate, request_id = header.split("|")
body = f.read(int(audio_len))
print(header, len(body), body == pcm if sample_rate == "16000" else "resampled")
`;

function python(code: string, args: string[]): Deno.ChildProcess {
  return new Deno.Command("/usr/bin/python3", {
    args: ["-c", code, ...args],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

async function lines(child: Deno.ChildProcess, into: string[], until: (line: string) => boolean) {
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let rest = "";
  const pump = (async () => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      rest += value;
      const parts = rest.split("\n");
      rest = parts.pop()!;
      into.push(...parts);
    }
  })();
  for (let i = 0; i < 500 && !into.some(until); i++) await new Promise((r) => setTimeout(r, 20));
  return { done: pump };
}

Deno.test("v1: our gateway against the spec's Python AudioInferenceServer", async () => {
  const broker = await startMosquitto();
  const port = await freePort();
  const server = await python(SPEC_SERVER, [String(port)]);
  const output: string[] = [];
  const reading = await lines(server, output, (l) => l === "listening");
  const gateway = await startGatewayProcess({
    MQTT_HOST: "127.0.0.1",
    MQTT_PORT: String(broker.port),
    AI_SERVER_HOST: "127.0.0.1",
    AI_SERVER_PORT: String(port),
    AI_SERVER_PROTOCOL: "v1",
    AUDIO_SAMPLE_RATE: "16000",
  });
  const device = new DevicePeer({
    id: "spec_py",
    mqtt: { host: "127.0.0.1", port: broker.port },
    hostAddresses: ["127.0.0.1"],
  });
  try {
    await device.connect();
    const question = await speak("Hello from the spec.");
    await device.speak(question.samples, question.rate);
    const reply = await device.nextReply(20_000);
    const request = output.find((l) => l.startsWith("request "))?.split(" ");
    assert.ok(request, `the Python server saw a request: ${output.join(" | ")}`);
    const [, deviceId, length, rate, requestId] = request;
    assert.equal(deviceId, "spec_py");
    assert.equal(rate, "16000");
    assert.ok(requestId.length > 0);
    const seconds = Number(length) / 2 / 16000;
    const spoken = question.samples.length / question.rate;
    assert.ok(
      seconds > spoken * 0.6 && seconds < spoken + 1,
      `utterance ${seconds} s of ${spoken} s`,
    );
    // The Python server echoed 16 kHz audio labelled 48000 (spec 6.1 hard-codes it): the gateway
    // plays what the header says, so the reply lasts a third as long.
    const got = reply.samples();
    assert.ok(Math.abs(got.length / 48000 - seconds / 3) < 0.2, `${got.length / 48000} s played`);
  } finally {
    await device.close();
    await gateway.stop();
    server.kill("SIGTERM");
    await server.status;
    await reading.done.catch(() => {});
    await server.stderr.cancel().catch(() => {});
    await broker.stop();
  }
});

Deno.test("v1: the spec's framing from a Python client against our server", async () => {
  // v1 cannot authenticate: the server serves it from allow-listed addresses only.
  const server = await startServerProcess({ PIPELINE: "echo", AUDIO_SOCKET_ALLOW: "127.0.0.1" });
  try {
    const client = await python(SPEC_CLIENT, [String(server.audioPort)]);
    const { stdout, stderr, code } = await client.output();
    assert.equal(code, 0, new TextDecoder().decode(stderr));
    const [header, length] = new TextDecoder().decode(stdout).trim().split(" ");
    const [device, audioLength, rate, request] = header.split("|");
    assert.equal(device, "py_device");
    assert.equal(request, "req_py1");
    assert.equal(rate, "48000", "spec 6.1 answers at 48 kHz");
    assert.equal(Number(audioLength), Number(length));
    assert.equal(Number(audioLength), 16000 * 3 * 2, "one second resampled to 48 kHz");
  } finally {
    await server.stop();
  }
});
