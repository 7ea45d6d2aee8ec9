/**
 * The conformance upstream as one function of a Request, so the same logic
 * serves Node, Deno, Bun, Chromium and happy-dom (over node:http) and
 * workerd (as Miniflare's outbound service). Routes are keyed by a run id so
 * runtimes never share counters. Every answer allows CORS (Chromium, happy-dom).
 */
const counts = new Map<
  string,
  { n: number; keys: Array<string | null>; auth: Array<string | null>; healed: boolean }
>();

const CORS = {
  "access-control-allow-origin": "*",
  "access-control-allow-headers": "*",
  "access-control-allow-methods": "GET, POST, PUT, PATCH, DELETE, OPTIONS",
  "access-control-expose-headers": "*",
};

function answer(body: BodyInit | null, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(body, { status, headers: { ...CORS, ...headers } });
}

export async function conformanceUpstream(request: Request): Promise<Response> {
  if (request.method === "OPTIONS") return answer(null, 204);
  const url = new URL(request.url);
  const [, route = "", id = ""] = url.pathname.split("/");
  const key = `${url.host}/${route}/${id}`;
  const entry = counts.get(key) ?? { n: 0, keys: [], auth: [], healed: false };
  counts.set(key, entry);
  if (route === "__count") {
    const target = counts.get(`${url.host}/${url.searchParams.get("route")}/${id}`);
    return Response.json(target ?? { n: 0, keys: [], auth: [] }, { headers: CORS });
  }
  if (route === "__heal") {
    const target = counts.get(`${url.host}/${url.searchParams.get("route")}/${id}`);
    if (target) target.healed = true;
    return answer("healed");
  }
  entry.n++;
  entry.keys.push(request.headers.get("idempotency-key"));
  entry.auth.push(request.headers.get("authorization"));
  const body = request.method === "GET" || request.method === "HEAD" ? "" : await request.text();
  switch (route) {
    case "flaky": // 503, 503, then 200
      return entry.n <= 2 ? answer(null, 503) : answer('{"ok":true}', 200, { "content-type": "application/json" });
    case "retry-after": // 429 with Retry-After: 1, then 200
      return entry.n === 1 ? answer(null, 429, { "retry-after": "1" }) : answer('{"ok":true}');
    case "always500":
      return answer(null, 500);
    case "down": // 500 until healed
      return entry.healed ? answer('{"ok":true}') : answer(null, 500);
    case "hold": // 503 with a long Retry-After: a client waiting on it can be aborted
      return answer(null, 503, { "retry-after": "30" });
    case "redirect": // 302 to the URL in ?to=
      return answer(null, 302, { location: url.searchParams.get("to") ?? "/" });
    case "echo":
      return answer(body, 200, { "content-type": "application/json" });
    case "auth":
      return Response.json(
        {
          authorization: request.headers.get("authorization"),
          apiKey: request.headers.get("x-api-key"),
          served: url.host,
        },
        { headers: CORS },
      );
    case "stream": {
      const encoder = new TextEncoder();
      let sent = 0;
      const stream = new ReadableStream<Uint8Array>({
        async pull(controller) {
          if (sent === 0) controller.enqueue(encoder.encode("chunk-1;"));
          else if (sent === 1) {
            // The second chunk waits until the client has read the first one and said so.
            for (let i = 0; i < 200 && !entry.healed; i++) await new Promise((r) => setTimeout(r, 10));
            controller.enqueue(encoder.encode(entry.healed ? "chunk-2" : "chunk-2-timeout"));
          } else controller.close();
          sent++;
        },
      });
      return answer(stream, 200, { "content-type": "text/plain" });
    }
    default:
      return answer(`no route ${route}`, 404);
  }
}
