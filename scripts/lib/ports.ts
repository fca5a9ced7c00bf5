/**
 * Free loopback ports for tests.
 *
 * @example
 * ```ts
 * import { freePort } from "./ports.ts";
 * const port = await freePort(); // e.g. 41234, unused on 127.0.0.1 right now
 * ```
 */

/**
 * Returns a TCP port on `hostname` that was free a moment ago: the OS picks it, we release it.
 * Another process may take it before the caller binds; callers that can retry should.
 */
export function freePort(hostname = "127.0.0.1"): Promise<number> {
  const listener = Deno.listen({ hostname, port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return Promise.resolve(port);
}
