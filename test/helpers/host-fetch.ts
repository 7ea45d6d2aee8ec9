/**
 * A user `fetch` that answers by host, for outside-in tests: the n-th
 * request to a host gets `answers[host](request, n)`, and every request is
 * recorded as the platform builds it from the arguments (a `Request` made
 * of `(input, init)`, as fetch makes one), so a test sees what fetch would
 * have sent. A host without an answer fails as an unreachable one does.
 */

/** What one request that reached a host carried: its headers as pairs, in order. */
export interface Received {
  method: string;
  url: string;
  headers: Array<[string, string]>;
  /** The body's bytes (`null` without a body), and the same as UTF-8 text. */
  bytes: Uint8Array | null;
  text: string;
  mode: RequestMode;
  cache: RequestCache;
  referrerPolicy: ReferrerPolicy;
}

export type Answer = (request: Request, n: number) => Response | Promise<Response>;

export function hostFetch(answers: Record<string, Answer>) {
  const log: Received[] = [];
  const inits: Array<RequestInit | undefined> = [];
  const counts = new Map<string, number>();
  // Calls made, even those whose arguments fetch refuses (no `Request` could be built).
  const state = { entered: 0 };
  const fetch = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    state.entered++;
    inits.push(init);
    const request = new Request(input, init);
    const url = new URL(request.url);
    const n = (counts.get(url.host) ?? 0) + 1;
    counts.set(url.host, n);
    const received: Received = {
      method: request.method,
      url: request.url,
      headers: [...request.headers],
      bytes: null,
      text: "",
      mode: request.mode,
      cache: request.cache,
      referrerPolicy: request.referrerPolicy,
    };
    log.push(received);
    if (request.body) {
      received.bytes = new Uint8Array(await request.arrayBuffer());
      received.text = new TextDecoder().decode(received.bytes);
    }
    const answer = answers[url.host];
    if (!answer) throw new TypeError("fetch failed");
    return answer(request, n);
  };
  return { fetch, log, inits, state };
}

/** The value of a header a request carried (its first, for a name sent twice). */
export const header = (r: Received | undefined, name: string): string | undefined =>
  r?.headers.find(([n]) => n === name)?.[1];

/** An answer with these statuses, one per request to the host, the last repeated. */
export const status =
  (...codes: number[]): Answer =>
  (_request, n) =>
    new Response(`answer ${n}`, { status: codes[Math.min(n, codes.length) - 1] ?? 200 });
