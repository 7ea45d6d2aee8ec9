/**
 * A URL as events, errors and health show it: without its query string or
 * fragment, which often carry API keys (`?key=…`, `?api_key=…`). Only
 * computed when someone listens.
 */
export function redactUrl(url: string): string {
  const cut = url.search(/[?#]/);
  return cut < 0 ? url : url.slice(0, cut);
}
