import type { HttpHandler } from "msw";
import { setupServer } from "msw/node";
import { afterAll, afterEach, beforeAll } from "vitest";
import { type Fault, sequence, type Upstream, upstream } from "../../src/testing/index.ts";

/** Starts an MSW server for the calling test file; unhandled requests fail. */
export function useMswServer(...initial: HttpHandler[]): ReturnType<typeof setupServer> {
  const server = setupServer(...initial);
  beforeAll(() => server.listen({ onUnhandledFrame: "error" }));
  afterEach(() => server.resetHandlers());
  afterAll(() => server.close());
  return server;
}

/**
 * Shorthand over the kit: an `upstream` answering with `faults` in order (the
 * last one repeats), registered on `server`.
 */
export function route(
  server: ReturnType<typeof setupServer>,
  method: "GET" | "POST" | "PUT" | "PATCH" | "DELETE",
  url: string,
  ...faults: Fault[]
): Upstream {
  const api = upstream(method, url, sequence(faults));
  server.use(api.handler);
  return api;
}
