import assert from "node:assert/strict";
import { cString, NativeLibrary } from "./native_library.ts";

class MissingError extends Error {}

Deno.test("a library that is not installed is refused naming the package and every soname tried", () => {
  const library = new NativeLibrary({ nothing: { parameters: [], result: "void" } }, {
    names: ["libnaila-missing.so.9", "libnaila-missing.so"],
    debianPackage: "libnaila-missing9",
    unavailable: MissingError,
  });
  assert.throws(
    () => library.symbols(),
    (e: unknown) =>
      e instanceof MissingError && /install the Debian package libnaila-missing9/.test(e.message) &&
      /libnaila-missing\.so\.9: .*; libnaila-missing\.so: /.test(e.message),
  );
});

Deno.test("the first soname that loads is used, once, and C strings read back", () => {
  const library = new NativeLibrary({
    opus_get_version_string: { parameters: [], result: "pointer" },
  }, {
    names: ["libnaila-missing.so.9", "libopus.so.0"],
    debianPackage: "libopus0",
    unavailable: MissingError,
  });
  const symbols = library.symbols();
  assert.equal(library.symbols(), symbols, "opened once");
  assert.match(cString(symbols.opus_get_version_string()), /^libopus /);
  assert.equal(cString(null), "");
});
