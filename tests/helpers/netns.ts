/**
 * A second "host" for tests: a Linux network namespace joined to this one by a veth pair, so a
 * browser can be a real remote device whose only routes are loopback and the test's own link.
 * Media never goes to the machine's LAN address. Needs root (CI runs as root).
 *
 * The interfaces are named `nl*`, not `veth*`: werift skips interfaces whose names start with
 * veth (ENVIRONMENT.md).
 */

/** A namespace and its link to the host namespace. */
export interface TestHost {
  /** Namespace name, for `ip netns exec`. */
  name: string;
  /** This (host) side's address on the link: bind servers here for the test host to reach. */
  hostAddress: string;
  /** The namespace side's address. */
  peerAddress: string;
  /** Prefix a command with this to run it inside the namespace. */
  exec: string[];
  remove(): Promise<void>;
}

async function ip(...args: string[]): Promise<void> {
  const result = await new Deno.Command("ip", { args, stdout: "null", stderr: "piped" }).output();
  if (!result.success) {
    throw new Error(`ip ${args.join(" ")}: ${new TextDecoder().decode(result.stderr).trim()}`);
  }
}

/** True when this process may create namespaces (root with iproute2). */
export async function canCreateTestHost(): Promise<boolean> {
  if (Deno.uid() !== 0) return false;
  return await new Deno.Command("ip", { args: ["netns", "list"], stdout: "null", stderr: "null" })
    .output().then((r) => r.success, () => false);
}

/** Creates a namespace with a /30 link to this one; `index` keeps concurrent tests apart. */
export async function createTestHost(index = Deno.pid % 200): Promise<TestHost> {
  const suffix = `${Deno.pid % 10000}x${index}`;
  const name = `naila_${suffix}`;
  const hostSide = `nlh${suffix}`.slice(0, 15);
  const peerSide = `nlp${suffix}`.slice(0, 15);
  const subnet = `10.${200 + Math.floor(index / 64)}.${(index % 64) * 4}`;
  const hostAddress = `${subnet}.1`;
  const peerAddress = `${subnet}.2`;
  await ip("netns", "add", name);
  try {
    await ip("link", "add", hostSide, "type", "veth", "peer", "name", peerSide);
    await ip("link", "set", peerSide, "netns", name);
    await ip("addr", "add", `${hostAddress}/30`, "dev", hostSide);
    await ip("link", "set", hostSide, "up");
    await ip("-n", name, "addr", "add", `${peerAddress}/30`, "dev", peerSide);
    await ip("-n", name, "link", "set", peerSide, "up");
    await ip("-n", name, "link", "set", "lo", "up");
  } catch (error) {
    await ip("netns", "del", name).catch(() => {});
    await ip("link", "del", hostSide).catch(() => {});
    throw error;
  }
  return {
    name,
    hostAddress,
    peerAddress,
    exec: ["ip", "netns", "exec", name],
    async remove() {
      await ip("link", "del", hostSide).catch(() => {});
      await ip("netns", "del", name).catch(() => {});
    },
  };
}
