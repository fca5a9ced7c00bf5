/**
 * `deno task devices`: the MQTT logins of NAILA's devices and machines (spec 17.2), kept in the
 * server's data directory (NAILA_DATA_DIR, default ./data; shared/credentials.ts).
 *
 *   deno task devices add kitchen      # prints what the kitchen device needs
 *   deno task devices list
 *   deno task devices remove kitchen
 *   deno task devices gateway          # the login a gateway on another machine (a Pi) needs
 *   deno task devices mosquitto --out /etc/mosquitto/naila [--tls] [--port 8883]
 *
 * Run it on the server's machine. The embedded broker sees an added or removed device at its
 * next login; Mosquitto needs `devices mosquitto` again and a reload (SIGHUP).
 */
import { existsSync } from "node:fs";
import { parseArgs } from "node:util";
import { brokerCertificatePaths } from "../shared/certificates.ts";
import {
  addDevice,
  deviceIdProblem,
  ensureRoleUsers,
  mqttUsersPath,
  readMqttUsers,
  removeDevice,
  storedLogin,
} from "../shared/credentials.ts";
import { writeMosquittoFiles } from "../shared/mosquitto_files.ts";
import { audioSecretPath, readAudioSecret } from "../shared/audio_auth.ts";
import { WebPairing } from "../shared/web_pairing.ts";

const USAGE = `usage: deno task devices add ID | list | remove ID | gateway | pair [--page URL]
       deno task devices mosquitto --out DIR [--tls] [--port PORT] [--bind HOST] [--tls-host NAME]
options: --data-dir DIR (default $NAILA_DATA_DIR or ./data)
         --broker HOST[:PORT] (what to print as the broker; default this machine's name)
pair: run where the gateway runs (its data dir); prints the device page's pairing link`;

function fail(message: string): never {
  console.error(`devices: ${message}\n${USAGE}`);
  Deno.exit(2);
}

/** The lines a machine needs to reach the broker with `login`: env variables and the CA. */
function printLogin(
  what: string,
  login: { username: string; password: string },
  broker: string,
  dataDir: string,
) {
  const [host, port] = broker.split(":");
  const ca = brokerCertificatePaths(dataDir).ca;
  console.log(`# MQTT login for ${what} (keep it secret; shown again by the same command)`);
  console.log(`MQTT_HOST=${host}`);
  if (port) console.log(`MQTT_PORT=${port}`);
  console.log(`MQTT_USERNAME=${login.username}`);
  console.log(`MQTT_PASSWORD=${login.password}`);
  if (existsSync(ca)) {
    console.log(`MQTT_TLS=true`);
    console.log(`MQTT_CA=ca.pem   # copy this file: ${ca}`);
    console.log(Deno.readTextFileSync(ca).trim());
  }
}

function main() {
  const { values, positionals } = parseArgs({
    args: Deno.args,
    allowPositionals: true,
    options: {
      "data-dir": { type: "string", default: Deno.env.get("NAILA_DATA_DIR") ?? "./data" },
      broker: { type: "string" },
      page: { type: "string" },
      out: { type: "string" },
      tls: { type: "boolean", default: false },
      port: { type: "string" },
      bind: { type: "string" },
      "tls-host": { type: "string", multiple: true },
      help: { type: "boolean" },
    },
  });
  if (values.help) return console.log(USAGE);
  const dataDir = values["data-dir"];
  const broker = values.broker ??
    `${Deno.env.get("MQTT_HOST") ?? `${Deno.hostname()}.local`}:${
      Deno.env.get("MQTT_PORT") ?? "1883"
    }`;
  const [command, id] = positionals;
  switch (command) {
    case "add": {
      if (id === undefined) fail("add needs a device id");
      const problem = deviceIdProblem(id);
      if (problem) fail(problem);
      printLogin(`device ${id}`, addDevice(dataDir, id), broker, dataDir);
      console.log(`# e.g. deno task device --id ${id} --say "hello" (with the lines above set)`);
      return;
    }
    case "list": {
      const users = readMqttUsers(dataDir)?.users ?? {};
      const devices = Object.entries(users).filter(([, user]) => user.role === "device");
      if (devices.length === 0) console.log(`no devices in ${mqttUsersPath(dataDir)}`);
      for (const [name, user] of devices) console.log(`${name}\tadded ${user.created}`);
      return;
    }
    case "remove": {
      if (id === undefined) fail("remove needs a device id");
      if (!removeDevice(dataDir, id)) fail(`no device ${JSON.stringify(id)} in ${dataDir}`);
      console.log(`removed device ${id}; it can no longer log in to the embedded broker`);
      return;
    }
    case "gateway": {
      ensureRoleUsers(dataDir);
      printLogin("a gateway", storedLogin(dataDir, { role: "gateway" })!, broker, dataDir);
      // The audio socket's secret (docs/protocol.md "Authentication"), made by the server.
      const secret = readAudioSecret(dataDir);
      if (secret) console.log(`AI_SERVER_SECRET=${secret}`);
      else console.log(`# no ${audioSecretPath(dataDir)} yet: start the server once, then rerun`);
      return;
    }
    case "pair": {
      const page = values.page ?? `http://${Deno.hostname()}:8080`;
      console.log(`Open once in each browser to pair it with the device page:`);
      console.log(WebPairing.open(dataDir).link(page));
      return;
    }
    case "mosquitto": {
      if (values.out === undefined) fail("mosquitto needs --out DIR");
      const port = values.port === undefined ? undefined : Number(values.port);
      if (port !== undefined && !(Number.isInteger(port) && port > 0 && port < 65536)) {
        fail(`--port ${JSON.stringify(values.port)} is not a TCP port`);
      }
      return writeMosquittoFiles(dataDir, values.out, {
        port,
        bindHost: values.bind,
        tls: values.tls,
        tlsHosts: values["tls-host"],
      }).then((files) => {
        console.log(`wrote ${files.config}, ${files.passwordFile}, ${files.aclFile}`);
        console.log(`run: mosquitto -c ${files.config}`);
      });
    }
    default:
      fail(command === undefined ? "no command" : `unknown command ${JSON.stringify(command)}`);
  }
}

if (import.meta.main) await main();
