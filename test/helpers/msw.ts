import { HttpResponse, http } from "msw";
import { setupServer } from "msw/node";
import { afterAll, afterEach, beforeAll } from "vitest";

/** One scripted reply: a Response, a network error, or a function of the request. */
export type Reply = Response | "network-error" | ((request: Request) => Response | Promise<Response>);

/** What a scripted route saw: every request, with a copy of its body text. */
export interface Route {
  readonly requests: Request[];
  readonly bodies: string[];
  readonly count: () => number;
}

/** Starts an MSW server for the calling test file; unhandled requests fail. */
export function useMswServer(): ReturnType<typeof setupServer> {
  const server = setupServer();
  beforeAll(() => server.listen({ onUnhandledFrame: "error" }));
  afterEach(() => server.resetHandlers());
  afterAll(() => server.close());
  return server;
}

/**
 * Adds a handler for `method url` that answers with `replies` in order (the
 * last one repeats) and records every request that reached it.
 */
export function route(
  server: ReturnType<typeof setupServer>,
  method: "GET" | "POST" | "PUT" | "PATCH" | "DELETE",
  url: string,
  ...replies: Reply[]
): Route {
  const requests: Request[] = [];
  const bodies: string[] = [];
  const builder = { GET: http.get, POST: http.post, PUT: http.put, PATCH: http.patch, DELETE: http.delete }[method];
  server.use(
    builder(url, async ({ request }) => {
      requests.push(request.clone());
      bodies.push(method === "GET" ? "" : await request.clone().text());
      const reply = replies[Math.min(requests.length - 1, replies.length - 1)];
      if (reply === undefined) throw new Error(`route ${method} ${url}: no reply scripted`);
      if (reply === "network-error") return HttpResponse.error();
      return typeof reply === "function" ? reply(request) : reply.clone();
    }),
  );
  return { requests, bodies, count: () => requests.length };
}

export const status = (code: number, headers?: Record<string, string>): Response =>
  new Response(code === 204 ? null : `status ${code}`, { status: code, ...(headers ? { headers } : {}) });
export const json = (body: unknown, init?: ResponseInit): Response => HttpResponse.json(body as never, init);
