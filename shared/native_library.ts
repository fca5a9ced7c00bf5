/**
 * System C libraries over Deno FFI (libopus for every device's audio, libvpx for cameras): open
 * the first soname that loads, once per thread, and read C strings back.
 *
 * @example
 * ```ts
 * const opus = new NativeLibrary(["libopus.so.0"], SYMBOLS, "libopus0", OpusUnavailableError);
 * const version = cString(opus.symbols().opus_get_version_string());
 * ```
 */

/** One system library, opened on first use. */
export class NativeLibrary<S extends Deno.ForeignLibraryInterface> {
  #names: readonly string[];
  #symbols: S;
  #debianPackage: string;
  #unavailable: new (message: string) => Error;
  #library: Deno.DynamicLibrary<S> | undefined;

  /**
   * `names`: sonames tried in order; `debianPackage` is named in the error; `unavailable` is the
   * error class thrown when none loads (not installed, or no `--allow-ffi`).
   */
  constructor(
    names: readonly string[],
    symbols: S,
    debianPackage: string,
    unavailable: new (message: string) => Error,
  ) {
    this.#names = names;
    this.#symbols = symbols;
    this.#debianPackage = debianPackage;
    this.#unavailable = unavailable;
  }

  /** The library's functions. Throws the `unavailable` error naming every soname's failure. */
  symbols(): Deno.DynamicLibrary<S>["symbols"] {
    if (this.#library) return this.#library.symbols;
    const failures: string[] = [];
    for (const name of this.#names) {
      try {
        this.#library = Deno.dlopen(name, this.#symbols);
        return this.#library.symbols;
      } catch (error) {
        failures.push(`${name}: ${(error as Error).message}`);
      }
    }
    throw new this.#unavailable(
      `cannot load ${
        this.#names[0]
      } (install the Debian package ${this.#debianPackage}; needs --allow-ffi): ${
        failures.join("; ")
      }`,
    );
  }
}

/** The NUL-terminated string at `pointer` ("" for NULL). */
export function cString(pointer: Deno.PointerValue): string {
  return pointer === null ? "" : Deno.UnsafePointerView.getCString(pointer);
}
