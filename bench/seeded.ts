/**
 * The random 503s of the flaky upstream, reproducible from a seed.
 *
 * A counter-based generator: a draw is a 32-bit hash of (seed, stream,
 * index), so draw `k` of stream `s` is the same whatever order requests
 * arrive in, however many clients send them and however long each library
 * waits between attempts. The random-503 scenario gives each call its own
 * stream (its id in the URL) and each attempt of it the next index, so call
 * `i` meets the same answers in every variant and every run of one seed,
 * and the calls that no 3-attempt client could serve (all three draws
 * failed) can be counted on the very draws a run used.
 */

/** The seed the benchmarks use unless told otherwise (`--seed`). */
export const DEFAULT_SEED = 1;

/** A bijective 32-bit mixer (lowbias32, Chris Wellons' hash-prospector). */
function mix(x: number): number {
  let h = x >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d);
  h ^= h >>> 15;
  h = Math.imul(h, 0x846ca68b);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Uniform in [0, 1): draw `index` of stream `stream` under `seed`. */
export function draw(seed: number, stream: number, index: number): number {
  return mix(mix(mix(seed ^ 0x9e3779b9) ^ stream) ^ index) / 2 ** 32;
}

/** Whether attempt `attempt` (0-based) of call `call` is answered 503. */
export function failsAt(rate: number, seed: number, call: number, attempt: number): boolean {
  // Stream 0 is the arrival-order stream (requests that name no call).
  return draw(seed, call + 1, attempt) < rate;
}

/** How many of calls 0 … calls−1 draw a 503 on each of their first `attempts` attempts. */
export function unservable(rate: number, seed: number, calls: number, attempts: number): number {
  let lost = 0;
  for (let call = 0; call < calls; call++) {
    let all = true;
    for (let a = 0; a < attempts && all; a++) all = failsAt(rate, seed, call, a);
    if (all) lost++;
  }
  return lost;
}
