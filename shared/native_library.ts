/**
 * System C libraries over Deno FFI (libopus for every device's audio, libvpx for cameras): open
 * the first soname that loads, once per thread, and read C strings back.
 *
 * @example
 * ```ts
 * const opus = new NativeLibrary(SYMBOLS, {
 *   names: ["libopus.so.0"],
 *   debianPackage: "libopus0",
 *   unavailable: OpusUnavailableError,
 * });
 * const version = cString(opus.symbols().opus_get_version_string());
 * ```
 */

/** Where a {@link NativeLibrary} comes from. */
export interface NativeLibrarySource {
  /** Sonames tried in order. */
  names: readonly string[];
  /** The Debian package that installs it, named in the error. */
  debianPackage: string;
  /** The error class thrown when no soname loads (not installed, or no `--allow-ffi`). */
  unavailable: new (message: string) => Error;
}

/** One system library, opened on first use. */
export class NativeLibrary<S extends Deno.ForeignLibraryInterface> {
  #symbols: S;
  #names: readonly string[];
  #debianPackage: string;
  #unavailable: new (message: string) => Error;
  #library: Deno.DynamicLibrary<S> | undefined;

  constructor(symbols: S, source: NativeLibrarySource) {
    this.#symbols = symbols;
    this.#names = source.names;
    this.#debianPackage = source.debianPackage;
    this.#unavailable = source.unavailable;
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
