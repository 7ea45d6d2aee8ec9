import { type HttpHandler, http } from "msw";
import { redactUrl } from "../core/redact-url.ts";
import { shownValue } from "../core/shown-name.ts";
import type { Fault } from "./faults.ts";

/** An HTTP method an upstream answers. */
export type Method = "GET" | "POST" | "PUT" | "PATCH" | "DELETE" | "HEAD" | "OPTIONS";

/** An MSW handler that answers with a fault and records what reached it. */
export interface Upstream {
  /** Pass to `server.use(…)` or `worker.use(…)`. */
  readonly handler: HttpHandler;
  /** Every request that reached the handler, in order (clones: their bodies are readable). */
  readonly requests: Request[];
  /** The body of each request as text. */
  readonly bodies: string[];
  /** How many requests reached it. */
  count(): number;
  /** The value of header `name` on each request (`null` where absent). */
  header(name: string): Array<string | null>;
  /** Forgets what was recorded. */
  reset(): void;
}

/**
 * Records every request for `method url` and answers with `fault`.
 *
 * @example
 * const api = upstream("POST", "https://gen.example/v1/images", sequence([status(503), status(503), json({ id: 1 })]));
 * server.use(api.handler);
 * // … exercise your code …
 * expect(api.count()).toBe(3);
 * expect(api.header("idempotency-key")).not.toContain(null); // a key on every attempt
 * expect(new Set(api.header("idempotency-key")).size).toBe(1); // the same one
 */
export function upstream(method: Method, url: string, fault: Fault): Upstream {
  const requests: Request[] = [];
  const bodies: string[] = [];
  const routes = {
    GET: http.get,
    POST: http.post,
    PUT: http.put,
    PATCH: http.patch,
    DELETE: http.delete,
    HEAD: http.head,
    OPTIONS: http.options,
  };
  // Own names only: an inherited one (`toString`) is no method.
  const route = Object.hasOwn(routes, method) ? routes[method] : undefined;
  if (!route) throw new TypeError(`upstream(method): expected an HTTP method, got ${shownValue(method)}`);
  // MSW would fail on it inside its matcher (`url.endsWith is not a function`).
  if (typeof url !== "string")
    throw new TypeError(`upstream(method, url): expected a URL as text, got ${shownValue(url)}`);
  if (typeof fault !== "function")
    throw new TypeError(`upstream(${method}, ${redactUrl(url)}, fault): fault must be a function`);
  // Bumped by `reset()`: a body still being read then belongs to a request forgotten since.
  let recording = 0;
  const handler = route(url, async ({ request }) => {
    requests.push(request.clone());
    const attempt = requests.length;
    const current = recording;
    // Reserve the slot first so concurrent requests keep bodies in request order.
    bodies.push("");
    if (method !== "GET" && method !== "HEAD") {
      let text: string;
      try {
        text = await request.clone().text();
      } catch (error) {
        // The client aborted while its body was read: the request ends, as a network error.
        if (request.signal.aborted) return Response.error();
        throw error;
      }
      if (current === recording) bodies[attempt - 1] = text;
    }
    return fault(request, { attempt });
  });
  return {
    handler,
    requests,
    bodies,
    count: () => requests.length,
    header: (name) => requests.map((r) => r.headers.get(name)),
    reset: () => {
      recording++;
      requests.length = 0;
      bodies.length = 0;
    },
  };
}
