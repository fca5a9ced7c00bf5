/**
 * Greedy decoding's arithmetic on one row of decoder logits (float32, one value per token id),
 * with a mask of token ids that may not be generated (1 = suppressed).
 */

/** The index of the largest value not masked out. */
export function argmaxAllowed(row: Float32Array, masked: Uint8Array): number {
  let best = -1;
  let bestValue = -Infinity;
  for (let i = 0; i < row.length; i++) {
    if (masked[i] === 0 && (best < 0 || row[i] > bestValue)) {
      best = i;
      bestValue = row[i];
    }
  }
  return best;
}

/** softmax(row)[index], computed stably. */
export function softmaxAt(row: Float32Array, index: number): number {
  let max = -Infinity;
  for (let i = 0; i < row.length; i++) if (row[i] > max) max = row[i];
  let sum = 0;
  for (let i = 0; i < row.length; i++) sum += Math.exp(row[i] - max);
  return Math.exp(row[index] - max) / sum;
}

/** log(softmax(row)[index]) over the entries not masked out (the suppressed tokens' logits are −∞). */
export function logSoftmaxAllowed(row: Float32Array, index: number, masked: Uint8Array): number {
  let max = -Infinity;
  for (let i = 0; i < row.length; i++) if (masked[i] === 0 && row[i] > max) max = row[i];
  let sum = 0;
  for (let i = 0; i < row.length; i++) if (masked[i] === 0) sum += Math.exp(row[i] - max);
  return row[index] - max - Math.log(sum);
}
