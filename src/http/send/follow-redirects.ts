import type { BrowserBuild } from "../../core/browser-build.ts";
import { isCircuitOpenError, unlessThrows } from "../../core/errors.ts";
import type { Emitter } from "../../core/events.ts";
import { pageBase } from "../../core/page-base.ts";
import { realm } from "../../core/realm-shared.ts";
import { redactUrl } from "../../core/redact-url.ts";
import type { ResilienceEvents } from "../../core/resilience-events.ts";
import { untilAborted } from "../../core/until-aborted.ts";
import { attemptKeys, isSourceless, replayDecisions, requestBodyStreams } from "../request/call-request.ts";
import { normalizeMethod } from "../request/check-request.ts";
import { headersForOrigin } from "../request/cross-origin.ts";
import { copyHeaders, sameStatusAndHeaders } from "../request/headers.ts";
import { overridden, requestProperties } from "../request/normalize-request.ts";
import { byteSize, isReplayable } from "../request/replay-body.ts";
import type { FetchLike } from "../resilience-options.ts";
import { answerOf } from "./answer-of.ts";
import { discardBody } from "./discard-body.ts";
import { checkIntegrity } from "./integrity.ts";
import { referrerPolicyOf, sentReferrer } from "./redirect-referrer.ts";
import type { HopOutcome } from "./send-attempt.ts";
import { standIn } from "./stand-in.ts";

/** Who follows a `redirect: "follow"` call's redirects. */
export type RedirectMode = "library" | "platform";

/** The Fetch standard's limit: the 21st redirect is a network error. */
const MAX_REDIRECTS = 20;
/** Headers that describe a body, removed when a redirect turns the request into a GET. */
const BODY_HEADERS = ["content-type", "content-length", "content-encoding", "content-language", "content-location"];

/**
 * Browsers answer `redirect: "manual"` with an opaque response that hides
 * `Location`, so only they can follow; they also enforce credential rules
 * themselves. Everywhere else (Node, Deno, Bun, workerd) the library follows.
 * The browser build only ever leaves them to the platform.
 */
export function defaultRedirectMode(): RedirectMode {
  if ((globalThis as BrowserBuild).__RESILIENT_FETCH_BROWSER__) return "platform";
  const scope = globalThis as { document?: unknown; importScripts?: unknown };
  return scope.document !== undefined || typeof scope.importScripts === "function" ? "platform" : "library";
}

/**
 * A transport that follows redirects itself, hop by hop with
 * `redirect: "manual"`, so that credentials never reach another origin: at
 * the first hop to a different origin only the cross-origin allowlist
 * (content-type, accept…, and the user's `crossOriginHeaders`) goes on, and
 * nothing dropped is put back, even if a later hop returns. The platform's
 * own follower only drops `Authorization` and cookies, so an `x-api-key`
 * would travel on.
 * Otherwise it does what the Fetch standard does: at most 20 hops, only
 * http(s) targets, 301/302 turn a POST into a GET and 303 turns anything but
 * GET/HEAD into a GET (without body), 307/308 replay the method and body.
 * Calls that ask for `redirect: "manual"` or `"error"` pass through untouched.
 */
export function followingFetch(
  base: () => FetchLike,
  crossOriginHeaders: readonly string[],
  events: Emitter<ResilienceEvents>,
  maxReplayBytes: number,
  /**
   * Rejects to refuse a hop to `url` before it is sent (a host whose breaker
   * is open), or at the `signal`'s abort while it waits; `from` is the
   * attempt's first URL, `fromKey` its breaker key when the layer sent it
   * changed. What it resolves hears the hop's outcome (its host's probe).
   */
  gate?: (
    url: string,
    from: string,
    signal: AbortSignal | null | undefined,
    fromKey: string | undefined,
  ) => Promise<HopOutcome | undefined>,
): FetchLike {
  return function followRedirects(input, init) {
    const transport = base();
    const request = typeof input === "object" && !(input instanceof URL) ? input : undefined;
    const mode = init?.redirect ?? request?.redirect ?? "follow";
    // Checked here on the final answer: every hop goes without it (see checkIntegrity).
    const integrity = init?.integrity ?? request?.integrity ?? "";
    // A transport that throws instead of rejecting still rejects here.
    let sent: Promise<Response>;
    try {
      if (mode !== "follow") return Promise.resolve(transport(input, init));
      const first: RequestInit = { ...init, redirect: "manual" };
      if (integrity) first.integrity = "";
      // The first request's referrer is worked out as every later hop's is, so
      // a redirect only ever trims what was sent (see redirect-referrer.ts).
      const referrer = init?.referrer ?? request?.referrer;
      // Parsed as fetch parses it (`" https://…"` is an https URL).
      if (referrer && URL.canParse(referrer) && /^https?:$/.test(new URL(referrer).protocol)) {
        const policy = init?.referrerPolicy ?? request?.referrerPolicy ?? "";
        first.referrer = sentReferrer(referrer, policy, request ? request.url : String(input));
        first.referrerPolicy = "unsafe-url";
      }
      sent = Promise.resolve(transport(input, first));
    } catch (error) {
      return Promise.reject(error);
    }
    // Most responses are not redirects: the first hop is one promise step,
    // and only a redirect enters the loop (an async frame costs more).
    return sent.then((answer) => {
      // No Response, or `Response.error()`: a network error, before anything reads its status.
      const first = answerOf(answer);
      if (!isRedirect(first)) return integrity ? checkIntegrity(first, integrity) : first;
      const last = follow(transport, input, init, request, first);
      return (integrity ? last.then((response) => checkIntegrity(response, integrity)) : last).catch(afterRedirect);
    });
  };

  /** Follows the redirect `first` answered, hop by hop. */
  async function follow(
    transport: FetchLike,
    input: RequestInfo | URL,
    init: RequestInit | undefined,
    request: Request | undefined,
    first: Response,
  ): Promise<Response> {
    const given = request ? request.url : String(input);
    // A relative URL (Deno with `--location`, a DOM test environment) hops from where fetch sent it.
    const pageUrl = URL.canParse(given) ? undefined : pageBase();
    const start = pageUrl !== undefined && URL.canParse(given, pageUrl) ? new URL(given, pageUrl).href : given;
    let hop: Hop = {
      url: start,
      method: normalizeMethod(init?.method ?? request?.method ?? "GET"),
      headers: copyHeaders(init?.headers ?? request?.headers),
      // A Request's own body is only left there when it was too large to keep
      // for replay: a stream, which a 307/308 then cannot send again.
      body: init?.body ?? request?.body,
      replayable: init ? replayDecisions.get(init) : undefined,
    };
    // Every hop is the same request, as the platform's follower keeps it: a
    // `Request`'s own cache, credentials, referrer… go to each.
    const base = request ? overridden(requestProperties(request), init) : { ...init };
    if (base.integrity) base.integrity = "";
    let response = first;
    // Once a hop left the first URL's origin, fetch reports the answer as `"cors"` (its response tainting), even back home.
    let crossed = false;
    // `signal: null` in `init` leaves a `Request`'s own behind, as fetch does.
    const signal = init?.signal !== undefined ? init.signal : request?.signal;
    for (let hops = 1; ; hops++) {
      // Nobody reads a redirect's body, whether it is followed or refused.
      discardBody(response);
      // An answer that came after the attempt was given up (a transport that
      // ignores its signal) leads nowhere: no hop, no event.
      signal?.throwIfAborted();
      if (hops > MAX_REDIRECTS) {
        throw new TypeError(`resilience.fetch: more than ${MAX_REDIRECTS} redirects from ${redactUrl(start)}`);
      }
      const { next, dropped } = nextHop(hop, response);
      if (dropped) crossed = true;
      if (events.has("redirect")) {
        events.emit("redirect", {
          from: redactUrl(hop.url),
          to: redactUrl(next.url),
          status: response.status,
          crossOrigin: dropped !== null,
          dropped: dropped ?? [],
        });
      }
      // Where a referrer is sent at all: the next hop starts from the one the
      // request that answered carried (a redirect can only trim it further),
      // under the redirect's own `Referrer-Policy` when it names one.
      // `sendsAsIs`: the hop gets the referrer worked out here, not re-judged.
      let sendsAsIs: { referrerPolicy: ReferrerPolicy } | undefined;
      if (base.referrer && base.referrer !== "about:client") {
        base.referrer = sentReferrer(base.referrer, base.referrerPolicy ?? "", hop.url);
        const policy = referrerPolicyOf(response);
        if (policy) base.referrerPolicy = policy;
        // And what the next hop is sent is worked out here too, under that policy ("" sends none),
        // then sent as it is: the platform would apply the policy again, wrongly.
        base.referrer = sentReferrer(base.referrer, base.referrerPolicy ?? "", next.url);
        if (base.referrer) sendsAsIs = { referrerPolicy: "unsafe-url" };
      }
      hop = next;
      const settle = await gate?.(hop.url, start, signal, init && attemptKeys.get(init));
      try {
        const sent = transport(hop.url, { ...base, ...sendable(hop), ...sendsAsIs, redirect: "manual" });
        // A probe's slot is freed at the abort, even by a transport that ignores the signal.
        // A hop's answer is checked as the attempt's is: a network error is the hop's failure.
        response = answerOf(await (settle ? untilAborted(sent, signal ?? undefined, discardBody) : sent));
      } catch (error) {
        // The attempt's timer aborts this signal too: the gate tells its timeout, the hop's failure, from the caller's abort.
        settle?.(undefined, error, signal?.aborted);
        throw error;
      }
      try {
        settle?.(response);
      } catch (error) {
        // A store that threw as the hop's outcome was told: the call fails with
        // it, and the hop's answer, which no one gets, is released.
        discardBody(response);
        throw error;
      }
      if (!isRedirect(response)) return markRedirected(response, hop.url, crossed);
    }
  }

  /**
   * Where one redirect leads and what is sent there. `dropped` names the
   * headers removed when the hop changes origin, else `null`.
   */
  function nextHop(hop: Hop, response: Response): { next: Hop; dropped: string[] | null } {
    // isRedirect checked that Location is present.
    const location = readLocation(response.headers);
    let target: URL;
    try {
      target = new URL(location, hop.url);
    } catch {
      throw new TypeError(`resilience.fetch: a redirect from ${redactUrl(hop.url)} has an invalid Location`);
    }
    if (target.protocol !== "http:" && target.protocol !== "https:") {
      throw new TypeError(`resilience.fetch: a redirect from ${redactUrl(hop.url)} leads to a ${target.protocol} URL`);
    }
    // Refused as fetch refuses a URL with credentials, without quoting them.
    if (target.username || target.password) {
      throw new TypeError(`resilience.fetch: a redirect from ${redactUrl(hop.url)} leads to a URL with credentials`);
    }
    let headers = copyHeaders(hop.headers);
    let { method, body } = hop;
    const { status } = response;
    // The standard's rule, before any method change: a body with no source
    // (a stream, sent once) fails every redirect but a 303, which drops it.
    // A `Request`'s body carried on is taken as one with a source (see `requestBodyStreams`).
    if (status !== 303 && isSourceless(body) && !requestBodyStreams.has(body as object)) {
      throw new TypeError(
        `resilience.fetch: cannot follow a ${status} redirect from ${redactUrl(hop.url)}: its body is a stream, sent once`,
      );
    }
    if (
      ((status === 301 || status === 302) && method === "POST") ||
      (status === 303 && method !== "GET" && method !== "HEAD")
    ) {
      method = "GET";
      body = undefined;
      for (const name of BODY_HEADERS) headers.delete(name);
    } else if (
      body != null &&
      !(hop.replayable ?? (isReplayable(body) && byteSize(body, maxReplayBytes) <= maxReplayBytes))
    ) {
      // 307/308 send the body again: not one that is sent once. Judged as the
      // caller gave it: a rule or a `transform` may have replaced it since.
      // A `Request`'s body carried on is one past the limit (see `requestBodyStreams`).
      const larger = `is larger than maxReplayBytes (${maxReplayBytes} bytes)`;
      const kind = requestBodyStreams.has(body as object)
        ? larger
        : !isReplayable(body)
          ? isSourceless(body)
            ? "is a stream"
            : "is of a kind fetch does not name"
          : byteSize(body, maxReplayBytes) > maxReplayBytes
            ? larger
            : `was given as a stream or larger than maxReplayBytes (${maxReplayBytes} bytes)`;
      throw new TypeError(
        `resilience.fetch: cannot follow a ${status} redirect from ${redactUrl(hop.url)}: its body ${kind}, sent once`,
      );
    }
    let dropped: string[] | null = null;
    if (target.origin !== new URL(hop.url).origin) {
      ({ headers, dropped } = headersForOrigin(headers, crossOriginHeaders));
    }
    return { next: { url: target.href, method, headers, body, replayable: hop.replayable }, dropped };
  }
}

/**
 * Errors of a redirect's later hops (in the realm's shared `afterSent`, so a
 * layer of another copy of the package reads them too). The first server
 * answered the request, so whatever happens next (a refused connection at
 * the target included), it may have processed it: see `maySendAgain`. So
 * too a retry the layer refused after an answer it could not keep (see
 * {@link afterAnswer}).
 */
export function markAfterSent(error: unknown): void {
  // Only an object can be remembered (a primitive never counts as "not sent").
  if (Object(error) === error) realm().afterSent.add(error as object);
}

/**
 * Whether `error` came after the host had the request (see
 * {@link markAfterSent}), or is a `CircuitOpenError` flagged so (its
 * `afterRedirect`: an older copy of the package read by a newer one).
 */
export function isAfterRedirect(error: unknown): boolean {
  return (
    realm().afterSent.has(error as object) ||
    (isCircuitOpenError(error) && unlessThrows(() => error.afterRedirect === true, false))
  );
}

/**
 * Marks an error of a followed redirect (a later hop's, or the follower's own
 * refusal: an invalid Location, too many hops, a body sent once) and rethrows it.
 */
function afterRedirect(error: unknown): never {
  markAfterSent(error);
  // A caller tells a refused hop from a call that sent nothing by it. An
  // error that cannot take the field (frozen, or a hostile Proxy) goes as it is.
  try {
    if (isCircuitOpenError(error)) Reflect.defineProperty(error, "afterRedirect", { value: true, enumerable: true });
  } catch {}
  throw error;
}

/**
 * Marks the layer's refusal of a retry (its breaker opened, its bulkhead is
 * full) that follows an answer too large or slow to keep: the host had the
 * request, so a layer or chain in front must not take the refusal for
 * "nothing sent". Returns `error`, for the caller to throw.
 */
export function afterAnswer(error: unknown): unknown {
  markAfterSent(error);
  return error;
}

/** One request of a redirect chain. */
interface Hop {
  url: string;
  method: string;
  headers: Headers;
  body: BodyInit | null | undefined;
  /** The entry's decision whether `body` may be sent again, when the layer made one (see `replayDecisions`). */
  replayable: boolean | undefined;
}

function sendable(hop: Hop): RequestInit {
  return { method: hop.method, headers: hop.headers, body: hop.body ?? null };
}

function isRedirect(response: Response): boolean {
  const { status } = response;
  return (
    (status === 301 || status === 302 || status === 303 || status === 307 || status === 308) &&
    // `get`, the one reader `answerOf` checked a transport's headers have (a
    // Map's gives `undefined` for a name it lacks, fetch's `null`).
    typeof response.headers.get("location") === "string"
  );
}

/** As a followed fetch reports it: `redirected`, the last hop's URL, and `"cors"` once a hop `crossed` origins. */
function markRedirected(response: Response, url: string, crossed: boolean): Response {
  const to = response.url || url;
  const type = crossed ? "cors" : response.type;
  // A transport's frozen answer takes no property: its copy does.
  if (!Object.isExtensible(response)) response = new Response(response.body, sameStatusAndHeaders(response));
  return standIn(response, to, true, type);
}

/**
 * Whether fetch's own follower here reads a `Location` as UTF-8 from the
 * one character per byte that `Headers` hands back: undici's (Node) and
 * Bun's do, a byte that is not UTF-8 becoming U+FFFD. Deno's follows the
 * bytes as they are (Latin-1), and workerd hands the text already decoded:
 * there it is taken as given, so each runtime's follower and the library's
 * go to the same URL (see docs/retry.md#redirects for the one exception).
 */
// Asked at a redirect, not at load: the browser build, which has no follower, carries none of it.
const readsUtf8 = (): boolean => /^(?:Node\.js|Bun)\//.test(globalThis.navigator?.userAgent ?? "");

/**
 * A `Location` as this runtime's follower reads it: `/café` sent as UTF-8
 * leads to `/caf%C3%A9` in Node and Bun. Several headers come joined
 * (`a, b`); identical ones are one, as browsers, Deno and Bun read them.
 */
function readLocation(headers: Headers): string {
  let text = headers.get("location") as string;
  const parts = text.split(", ");
  if (parts.length > 1 && parts.every((part) => part === parts[0])) text = parts[0] as string;
  // Only text of one character per byte can be bytes: a character past U+00FF
  // means the runtime decoded it already (a later Node or Bun might).
  if (!/[\x80-\xff]/.test(text) || /[\u0100-\uffff]/.test(text) || !readsUtf8()) return text;
  return new TextDecoder("utf-8", { ignoreBOM: true }).decode(Uint8Array.from(text, (c) => c.charCodeAt(0)));
}
