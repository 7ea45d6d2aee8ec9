/** The part of opossum's API the benchmarks use (its types package lags its major version). */
declare module "opossum" {
  export default class CircuitBreaker<A extends unknown[] = unknown[], R = unknown> {
    constructor(action: (...args: A) => Promise<R>, options?: { resetTimeout?: number; timeout?: number | false });
    fire(...args: A): Promise<R>;
  }
}
