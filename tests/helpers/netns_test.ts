import assert from "node:assert/strict";
import { canCreateTestHost, createTestHost } from "./netns.ts";

Deno.test({
  name: "a test host reaches this namespace over its own link and nothing else",
  ignore: !(await canCreateTestHost()),
  fn: async () => {
    const host = await createTestHost(7);
    try {
      const routes = await new Deno.Command(host.exec[0], {
        args: [...host.exec.slice(1), "ip", "-4", "-o", "addr"],
        stdout: "piped",
      }).output();
      const text = new TextDecoder().decode(routes.stdout);
      assert.match(text, new RegExp(host.peerAddress.replaceAll(".", "\\.")));
      assert.doesNotMatch(text, /eth0/);
      const listener = Deno.listen({ hostname: host.hostAddress, port: 0 });
      const port = (listener.addr as Deno.NetAddr).port;
      const accepted = listener.accept();
      const code =
        `(await Deno.connect({ hostname: "${host.hostAddress}", port: ${port} })).close()`;
      const connect = await new Deno.Command(host.exec[0], {
        args: [...host.exec.slice(1), Deno.execPath(), "eval", code],
        stdout: "null",
        stderr: "piped",
      }).output();
      assert.ok(connect.success, new TextDecoder().decode(connect.stderr));
      const conn = await accepted;
      assert.equal((conn.remoteAddr as Deno.NetAddr).hostname, host.peerAddress);
      conn.close();
      listener.close();
    } finally {
      await host.remove();
    }
    const list = new TextDecoder().decode(
      (await new Deno.Command("ip", { args: ["netns", "list"], stdout: "piped" }).output()).stdout,
    );
    assert.doesNotMatch(list, new RegExp(host.name));
  },
});
