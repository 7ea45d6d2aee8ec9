/** One request as the transport received it. */
export interface Sent {
  url: string;
  method: string;
  headers: Headers;
  body: string | null;
  init: RequestInit | undefined;
}

/**
 * A transport that records every request and answers with `answer` (200
 * "ok" by default); a thrown error becomes the attempt's failure.
 */
export function recordingFetch(
  answer: (sent: Sent, n: number) => Response | Promise<Response> = () => new Response("ok"),
) {
  const sent: Sent[] = [];
  const fetch = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const request = new Request(input, init);
    const entry: Sent = {
      url: request.url,
      method: request.method,
      headers: request.headers,
      body: request.body ? await request.text() : null,
      init,
    };
    sent.push(entry);
    return answer(entry, sent.length);
  };
  return { fetch, sent };
}
