import { pageOrigin } from "../../core/page-base.ts";
import type { CallRequest } from "../request/call-request.ts";
import { originOf } from "../request/cross-origin.ts";
import { markPlatformRefusal } from "./failure-reason.ts";

/**
 * A page's fetch refuses a `mode: "same-origin"` request to another origin
 * before sending anything, with the bare "Failed to fetch" a network failure
 * gives: the layer refuses it first, saying why, as the caller's mistake. It
 * is not retried, and no host's breaker hears of it (a healthy API would
 * open for it). Called in page builds only: a server runtime has no page.
 */
export function refuseOtherOrigin(request: CallRequest): void {
  if (request.init?.mode !== "same-origin") return;
  const page = pageOrigin();
  let target: string;
  try {
    target = originOf(request.url);
  } catch {
    return;
  }
  if (page !== undefined && target !== page)
    throw markPlatformRefusal(
      new TypeError(`resilience.fetch: mode "same-origin" cannot fetch ${target} from a page of ${page}`),
    );
}
