/**
 * Joins chunks of samples or bytes that arrived one by one into one array, sized once.
 *
 * @example
 * ```ts
 * const all = concatChunks([new Float32Array([1, 2]), new Float32Array([3])]); // [1, 2, 3]
 * ```
 */

/** A typed array {@link concatChunks} joins. */
export type Chunk = Float32Array | Uint8Array;

/** The chunks one after another in a new array of their total length (empty for none). */
export function concatChunks(chunks: readonly Float32Array[]): Float32Array;
export function concatChunks(chunks: readonly Uint8Array[]): Uint8Array;
export function concatChunks(chunks: readonly Chunk[]): Chunk {
  let total = 0;
  for (const chunk of chunks) total += chunk.length;
  const out = chunks[0] instanceof Uint8Array ? new Uint8Array(total) : new Float32Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.length;
  }
  return out;
}
