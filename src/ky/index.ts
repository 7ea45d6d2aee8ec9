import ky, { isKyError, isNetworkError, type KyInstance, type Options, replaceOption } from "ky";
import { ConfigError } from "../core/errors.ts";
import { isListenableSignal } from "../core/kind-of.ts";
import { optionKeys } from "../core/options/option-keys.ts";
import { isPlain, plainCopy, shallowCopy } from "../core/plain-copy.ts";
import { platformSignal } from "../core/platform-signal.ts";
import { redactErrorChain, redactUrlsIn } from "../core/redact-url.ts";
import { shownValue, withValuesShown } from "../core/shown-name.ts";
import { createResilience, type Resilience } from "../http/create-resilience.ts";
import { CHECKED_FIELDS } from "../http/request/check-request.ts";
import type { FetchLike, ResilienceOptions } from "../http/resilience-options.ts";
import { resolveOptions } from "../http/resolve-options.ts";
import { listedHeaders, namePlatformRefusal, namingBadHeader, refuseBadHeaders } from "./header-values.ts";

/** ky's options, plus the resilience layer to run them on. */
export interface ClientOptions extends Omit<Options, "fetch" | "retry"> {
  /**
   * The resilience layer, or options to create one.
   * @default a layer with default options
   */
  resilience?: Resilience | ResilienceOptions | undefined;
}

/**
 * A ky instance whose transport is `resilience.fetch`, with ky's own retry
 * off so retries happen once, in one place, under the retry budget. ky's
 * 10 s `timeout` is off too unless given: generation calls take longer, and
 * `resilience` has its own `timeout.attempt` / `timeout.total`.
 * `.json(schema)` validates with any Standard Schema (zod, valibot, …).
 * ky's `retry` and `fetch` are refused with a `ConfigError` here, per call,
 * by `extend` and `create`, and when an `init` hook sets them, so no call
 * leaves the layer or retries twice.
 *
 * @example
 * const api = createClient({ prefix: "https://api.example/v1", resilience: { retry: { maxAttempts: 4 } } });
 * const job = await api.post("jobs", { json: { prompt } }).json(JobSchema);
 */
export function createClient(options: ClientOptions = {}): KyInstance {
  // Refused as `createResilience` refuses options that are no object, not with a destructuring error.
  if (typeof options !== "object" || options === null)
    throw new ConfigError("options", `expected object, received ${shownValue(options)}`);
  let layer: ClientOptions["resilience"];
  let kyOptions: Options;
  try {
    layer = refuseOwn(refuseMisspeltLayer(options)).resilience;
    // Every key but the layer's, hidden ones too: ky reads its options by name.
    kyOptions = optionsCopy(options, "resilience");
    // What ky reads later (a revoked Proxy as `headers` or `hooks`) fails here, at once.
    for (const key of Reflect.ownKeys(kyOptions)) {
      const value: unknown = (kyOptions as Record<PropertyKey, unknown>)[key];
      if (Object(value) === value) Object.getPrototypeOf(value);
    }
    // Kept as read now: ky keeps a `searchParams` or `json` by reference.
    kyOptions = copied(kyOptions);
  } catch (error) {
    // A getter that throws, a revoked Proxy: refused as `createResilience` refuses them.
    if (error instanceof ConfigError) throw error;
    throw new ConfigError(
      unreadableKey(options),
      "expected a value that can be read, received a value that cannot be read",
    );
  }
  // Checked first under the path the caller wrote (`resilience.retry`), then made.
  if (!isResilience(layer)) resolveOptions(layer, "resilience");
  const resilience = isResilience(layer) ? layer : createResilience(layer);
  return guarded(onLayer(kyOptions, resilience.fetch), resilience.fetch);
}

/**
 * A ky instance on `fetch`: its retry off, its timeout off unless given.
 * Its first `beforeError` hook cuts the URL in ky's error messages, so
 * hooks of the caller's see it cut, and one that throws (a logger's
 * rethrow, which ends ky's hook loop) cannot keep it whole; each call's
 * last hook cuts what the caller's hooks wrote (see `lastInit`).
 */
function onLayer(options: Options, fetch: FetchLike): KyInstance {
  // `cutFirst` hands back a copy of its own, to edit here.
  const own = cutFirst(timeoutKeptOff(options));
  // ky reads only an enumerable `timeout` (a hidden one is none to it): off then too.
  if (!Object.prototype.propertyIsEnumerable.call(own, "timeout"))
    Object.defineProperty(own, "timeout", { value: false, enumerable: true, writable: true, configurable: true });
  own.retry = 0;
  own.fetch = fetch;
  refuseBadHeaders(own.headers);
  if (own.headers) own.headers = listedHeaders(own.headers);
  return ky.create(followedSignal(own));
}

/**
 * `options` (a copy of the caller's, edited in place) with a `signal` that
 * is not the platform's (a polyfill's) replaced by one of the platform's
 * that follows it: ky joins a signal to its timeout with `AbortSignal.any`,
 * which in Node takes such a signal and never hears it abort.
 */
function followedSignal<T extends Options | undefined>(options: T): T {
  if (isListenableSignal(options?.signal)) (options as Options).signal = platformSignal(options.signal);
  return options;
}

/**
 * `options` whose `beforeError` hooks begin with the URL cut: the instance's
 * own (`createClient`, `create`), and an `extend`'s, whose hooks may replace
 * the parent's (`replaceOption`) and the cut with them.
 */
function cutFirst<T extends Options | undefined>(options: T): T {
  if (!options) return options;
  // `beforeError: undefined` clears the parent's hooks, as in ky: the cut goes with them (each call adds its own).
  const hooks = editHooks(options.hooks, (h) =>
    Object.assign(shallowCopy(h ?? {}), {
      // `init: undefined` clears the parent's, as in ky: the call's own guard then runs first.
      init: h && Object.hasOwn(h, "init") && h.init === undefined ? undefined : [guardInitList, ...(h?.init ?? [])],
      beforeError: clears(h) ? undefined : [redactMessage, ...(h?.beforeError ?? [])],
    }),
  );
  return Object.assign(optionsCopy(options), { hooks });
}

type Call = (input: unknown, options?: Options) => unknown;

/**
 * `instance` with every way in checked: a call, a method (`get`, `post`, …),
 * `extend` and `create` refuse ky's `retry` and `fetch` at once (ky would
 * retry the layer's final answer, or send past the layer), and what `extend`
 * and `create` return is guarded the same way. `create` starts from ky's
 * defaults, so it gets the layer again.
 */
function guarded(instance: KyInstance, fetch: FetchLike): KyInstance {
  // A call's own `retry` or `fetch` is refused by the last `init` hook, as one an `init` hook sets.
  const client = ((input: unknown, options?: Options) =>
    redacting(instance as unknown as Call, input, lastInit(options, fetch))) as unknown as KyInstance;
  for (const [name, value] of Object.entries(instance)) {
    (client as unknown as Record<string, unknown>)[name] = REQUEST_METHODS.has(name)
      ? (input: unknown, options?: Options) => redacting(value as Call, input, lastInit(options, fetch))
      : value;
  }
  client.extend = (options) =>
    guarded(
      instance.extend(
        typeof options === "function"
          ? (parent) =>
              followedSignal(
                cutFirst(refuseChanged(timeoutKeptOff(noLayer(withHeadersChecked(copied(options(parent))))), parent)),
              )
          : followedSignal(cutFirst(refuseOwn(timeoutKeptOff(noLayer(withHeadersChecked(copied(options))))))),
      ),
      fetch,
    );
  client.create = (options) => guarded(onLayer(refuseOwn(noLayer(copied(options))) ?? {}, fetch), fetch);
  return client;
}

/**
 * `options` as read now (see `plainCopy`), a `URLSearchParams` given as
 * `searchParams` copied too: ky keeps it by reference, so an edit to it
 * after `createClient`, `extend` or `create` would change later calls.
 */
function copied<T>(options: T): T {
  const copy = plainCopy(options);
  const params = (copy as Options | undefined)?.searchParams;
  if (!(params instanceof URLSearchParams)) return copy;
  // A class instance passes `plainCopy` as it is, the caller's own: what ky reads of it goes on a copy to edit.
  const editable = (copy === options ? optionsCopy(copy as object) : copy) as Options;
  editable.searchParams = new URLSearchParams(params);
  return editable as T;
}

/**
 * `options` in a new object to edit, less `omit`, as ky reads them: by name,
 * so a class's getters (`headers`, `hooks`) come along with the own keys
 * (`shallowCopy` takes those, hidden ones too); each is read once per copy
 * (`extend` copies more than once), and one not an own key stays hidden, as
 * it was on the class.
 */
function optionsCopy<T extends object>(options: T, omit?: PropertyKey): T {
  const copy = shallowCopy(options, omit);
  for (const key of optionKeys(options)) {
    if (key === omit || Object.hasOwn(copy, key)) continue;
    const value: unknown = (options as Record<string, unknown>)[key];
    Object.defineProperty(copy, key, { value, enumerable: false, writable: true, configurable: true });
  }
  return copy;
}

/** `options`, its `headers` checked (see `refuseBadHeaders`) and a `Headers` listed (see `listedHeaders`). */
function withHeadersChecked<T extends Options | undefined>(options: T): T {
  // Listed before the check: a generator the check read would leave ky none.
  const listed = options?.headers && listedHeaders(options.headers);
  refuseBadHeaders(listed);
  // On a copy: a class instance passes `plainCopy` as it is, the caller's own.
  return listed !== options?.headers
    ? (Object.assign(optionsCopy(options as object), { headers: listed }) as T)
    : options;
}

type Hooks = NonNullable<Options["hooks"]>;

/**
 * A call's options with one more `init` hook, the last to run (ky appends
 * a call's hooks after the instance's): ky's `init` hooks may rewrite any
 * option, and one that set `retry` or `fetch` would retry twice or leave
 * the layer. It refuses that with a `ConfigError` before anything is sent.
 * Hooks replaced with ky's `replaceOption(hooks)` get it too.
 */
function lastInit(options: Options | undefined, fetch: FetchLike): Options {
  refuseOwn(noLayer(options));
  const check = (merged: Options) => {
    lastMerged = merged;
    // What an `init` hook set is refused as a call's own is: `resilience`, or a key one or two letters from it.
    noLayer(merged);
    for (const [key, value] of [
      ["fetch", fetch],
      ["retry", 0],
    ] as const) {
      let pinned = false;
      try {
        // As data: a getter a hook set could give the layer's to this check and another to ky.
        if (merged[key] === value)
          pinned = !!Object.defineProperty(merged, key, {
            value,
            writable: true,
            enumerable: true,
            configurable: true,
          });
      } catch {}
      if (!pinned) throw onKy(key);
    }
    // Headers an `init` hook set are refused as a call's own are: by name, never quoting the value
    // (listed first: a generator the check read would leave ky none).
    const listed = listedHeaders(merged.headers);
    if (listed !== merged.headers) merged.headers = listed as NonNullable<Options["headers"]>;
    namePlatformRefusal(merged.headers);
    // The cut first and last, whatever the hooks left: a call's `beforeError: undefined`, or an `init` hook
    // that set `hooks` or `beforeError` anew, dropped it. A hook that throws ends ky's loop before the last
    // one, which cuts what the hooks wrote: its throw is cut.
    const errorHooks = (merged.hooks?.beforeError ?? []).map(cutOnThrow);
    if (errorHooks[0] !== redactMessage) errorHooks.unshift(redactMessage);
    if (errorHooks.at(-1) !== redactMessage) errorHooks.push(redactMessage);
    merged.hooks = { ...merged.hooks, beforeError: errorHooks };
  };
  // The cut first too: a call's hooks may replace the instance's (`replaceOption`), the cut with them.
  const checked = editHooks(options?.hooks, (hooks) =>
    Object.assign(shallowCopy(hooks ?? {}), {
      init: [guardInitList, ...(hooks?.init ?? []), check],
      beforeError: clears(hooks) ? undefined : [redactMessage, ...(hooks?.beforeError ?? []), redactMessage],
    }),
  );
  const last = Object.assign(optionsCopy(timeoutKeptOff(options) ?? {}), { hooks: checked });
  if (last.headers) last.headers = listedHeaders(last.headers);
  return followedSignal(last);
}

type ErrorHook = NonNullable<Hooks["beforeError"]>[number];
type InitHook = NonNullable<Hooks["init"]>[number];

/** The lists of `init` hooks a guard has wrapped, each once. */
const guardedLists = new WeakSet<object>();

/**
 * The first `init` hook at every level (the instance's, an `extend`'s, the
 * call's). ky walks the live list, so a hook could drop the client's check
 * (the last) or add one after it, and a call would leave the layer: each
 * later hook is wrapped, and one that adds or removes hooks is refused as
 * it returns.
 */
function guardInitList(merged: Options): void {
  const list = merged.hooks?.init;
  if (!Array.isArray(list) || guardedLists.has(list)) return;
  guardedLists.add(list);
  for (let i = list.indexOf(guardInitList) + 1; i < list.length; i++) {
    const hook = list[i] as InitHook;
    list[i] = (options) => {
      hook(options);
      // Each entry as it stands, never through a getter or a method the hook gave the list: ky reads what is there.
      if (
        list.length !== kept.length ||
        kept.some((entry, at) => Object.getOwnPropertyDescriptor(list, at)?.value !== entry)
      )
        throw new ConfigError(
          "hooks.init",
          "an init hook may not add or remove init hooks while ky runs them: the client's check runs last",
        );
    };
  }
  // The list as ky walks it, the wrappers in it.
  const kept = [...list];
}

/** `hook`, the ky error it throws (a logger's that wrote the URL in and rethrew) cut as the last hook would have. */
function cutOnThrow(hook: ErrorHook): ErrorHook {
  if (hook === redactMessage) return hook;
  return async (...args: Parameters<ErrorHook>) => {
    try {
      return await hook(...args);
    } catch (error) {
      throw isKyError(error) ? redactErrorChain(error) : error;
    }
  };
}

/** Whether `hooks` sets `beforeError` to `undefined`, which ky reads as "no more hooks of the instance's". */
function clears(hooks: Hooks | undefined): boolean {
  return hooks !== undefined && Object.hasOwn(hooks, "beforeError") && hooks.beforeError === undefined;
}

/**
 * `hooks` edited by `edit`, inside ky's `replaceOption(…)` wrapper when it
 * has one (it marks an object with a symbol and wraps the hooks in `value`).
 */
function editHooks(hooks: Hooks | undefined, edit: (hooks: Hooks | undefined) => Hooks): Hooks {
  // Judged on the copy ky reads, as ky judges it: by its mark, never by a key named `value` (hooks of yours may
  // have one), read once.
  const copy = hooks && (shallowCopy(hooks) as Hooks & { value?: Hooks } & Record<symbol, unknown>);
  // The symbol ky marks a `replaceOption(…)` wrapper with is its own: read off one it makes, at the first call
  // (importing the client runs nothing).
  replaceMark ??= Object.getOwnPropertySymbols(replaceOption(undefined))[0] as symbol;
  return (copy?.[replaceMark] === true ? Object.assign(copy, { value: edit(copy.value) }) : edit(copy)) as Hooks;
}

let replaceMark: symbol | undefined;

/**
 * ky's own errors (`HTTPError`, `TimeoutError`) end their
 * message with the request's URL, query and all: the last `beforeError`
 * hook cuts it as the layer's errors cut theirs (messages get logged). The
 * error's `request` is still the Request ky sent, as ky documents it.
 */
function redactMessage({ error }: { error: Error }): Error {
  try {
    // ky wraps what its `fetch` rejected with when it looks like a network
    // error; that `fetch` is the layer, whose error (a platform's refusal it
    // passed on as it is) reaches the caller itself, as every other one does.
    if (isNetworkError(error) && error.cause instanceof Error) return error.cause;
    // The layer's own errors pass through: their URLs are cut already.
    if (isKyError(error)) {
      // Its stack too: Chromium writes the stack's first line, the message
      // with the URL, when the error is made.
      for (const field of ["message", "stack"] as const) {
        const text = error[field];
        const cut = typeof text === "string" ? redactUrlsIn(text) : text;
        // ky takes any error named `TimeoutError` for its own: a caller's abort
        // reason from `AbortSignal.timeout` is a DOMException, whose message
        // cannot be written. It is the caller's own, and goes as it is.
        if (cut !== text) {
          try {
            error[field] = cut as string;
          } catch {}
        }
      }
    }
  } catch {
    // An error whose fields cannot be read (a `name` getter that throws) is none of
    // these: it reaches the caller as it is, as plain ky hands it on.
  }
  return error;
}

/**
 * A ky call whose synchronous throw (the platform refusing to build the
 * Request, before any hook: a URL with `user:pass@` or a relative one that
 * cannot be parsed is quoted whole, in the message, the stack and the
 * cause's `input`) has the URLs in it cut too, and a header value the
 * platform refused and quoted is named instead.
 */
function redacting(call: Call, input: unknown, options: Options): unknown {
  // A call made while ky builds another's `Request` (a `stringifyJson` that logs through the client) hands
  // that one's options back as it ends.
  const outer = lastMerged;
  lastMerged = undefined;
  try {
    return call(input, options);
  } catch (error) {
    // The fields as ky built its `Request` with them: the client's, `extend`'s, `create`'s, the hooks' and the call's.
    // Without them ky never got that far: what was thrown is an `init` hook's own, as thrown.
    const headerNamed = namingBadHeader(error, options.headers);
    throw redactErrorChain(lastMerged ? namingBadField(headerNamed, lastMerged) : headerNamed);
  } finally {
    // Not kept past the call: they hold its body.
    lastMerged = outer;
  }
}

/**
 * The options the last `init` hook saw, merged: ky runs it at once before it
 * builds the call's `Request`, all within the call, so a refusal of that
 * `Request` is of these.
 */
let lastMerged: Options | undefined;

/** The fields ky hands to the platform's `Request`, which may quote one it refuses. */
const REQUEST_FIELDS = ["method", "integrity", ...CHECKED_FIELDS] as const;

/**
 * The platform's refusal of a field ky built its `Request` with (`'sk/…' is
 * not a valid HTTP method`), as the layer's own refusals show values: one
 * that is no plain word is named `a string`. The platform's error goes, as
 * its stack quotes the value too; any other error is returned as it is.
 */
function namingBadField(error: unknown, options: Options): unknown {
  if (!(error instanceof TypeError)) return error;
  let values: unknown[];
  try {
    // As the platform reads them: a `String` object or an array is quoted as its text.
    values = REQUEST_FIELDS.map((name) => {
      const value = (options as Record<string, unknown>)[name];
      return typeof value === "object" && value !== null ? String(value) : value;
    });
  } catch {
    return error;
  }
  const message = withValuesShown(error.message, values);
  return message === error.message ? error : new TypeError(message);
}

/**
 * ky reads `timeout: undefined` as its 10 s default, even over a parent's
 * `false`; in the layer, as in every option, `undefined` leaves the default
 * (off). The key goes, so ky never sees it.
 */
function timeoutKeptOff<T extends Options | undefined>(options: T): T {
  if (!options || !("timeout" in options) || options.timeout !== undefined) return options;
  return optionsCopy(options, "timeout") as T;
}

const REQUEST_METHODS = new Set(["get", "post", "put", "patch", "head", "delete", "query"]);

/**
 * `resilience` after `createClient`: ky would ignore it without a word. An
 * instance, its `extend` and `create`, and each call run on the client's layer.
 */
function noLayer<T extends object | undefined>(options: T): T {
  // As ky refuses them, with its words: no `in` test on a value that is no object.
  if (options !== undefined && (typeof options !== "object" || options === null || Array.isArray(options)))
    throw new TypeError(
      `ky: the \`options\` argument must be an object, got ${options === null ? "null" : Array.isArray(options) ? "an array" : typeof options}`,
    );
  // A misspelt `resilience` would go on to fetch unread, as it would from `createClient`.
  if (options) refuseMisspeltLayer(options);
  if (options && "resilience" in options)
    throw new ConfigError(
      "resilience",
      "give the layer's options to createClient: its calls, extend and create run on it",
    );
  return options;
}

/**
 * A key one or two letters from `resilience` (`resilence`, `resiliance`):
 * ky passes keys it does not know on to `fetch` (as `cf` or `next`, which
 * platforms read), so it would take the typo without a word and the client
 * would run on a default layer. Any other key is ky's to judge.
 */
function refuseMisspeltLayer<T extends object>(options: T): T {
  for (const key of optionKeys(options)) {
    // A key whose length is more than two from the word's is more than two edits from it: not measured.
    if (key !== "resilience" && Math.abs(key.length - 10) <= 2 && editDistance(key.toLowerCase(), "resilience") <= 2)
      throw new ConfigError(key, `unknown option "${key}", did you mean "resilience"?`);
  }
  return options;
}

/** Levenshtein distance: the fewest insertions, deletions and substitutions from `a` to `b`. */
function editDistance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) {
      next[j] = Math.min(
        (row[j] as number) + 1,
        (next[j - 1] as number) + 1,
        (row[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    row = next;
  }
  return row[b.length] as number;
}

function refuseOwn<T extends object | undefined>(options: T): T {
  for (const key of ["retry", "fetch"] as const) if (options && key in options) throw onKy(key);
  return options;
}

/** `extend(fn)` gets the parent's options, the layer's `retry` and `fetch` included: only a change is refused. */
function refuseChanged(options: Options, parent: Options): Options {
  // A function that returns nothing extends with nothing, as ky reads it.
  for (const key of ["retry", "fetch"] as const)
    if (options && key in options && options[key] !== parent[key]) throw onKy(key);
  return options;
}

function onKy(key: "retry" | "fetch"): ConfigError {
  return new ConfigError(
    key,
    `set retries and the transport on the resilience layer (\`resilience.${key}\`), not on ky`,
  );
}

/**
 * The path of the first value under `options` that cannot be read (a getter
 * that throws, a revoked Proxy), down the plain objects and arrays that are
 * copied (`headers.authorization`), or `options` when not even its keys can
 * be. Keys are the caller's text: a URL in one is cut.
 */
function unreadableKey(options: object): string {
  return unreadableUnder(options, "", new Set()) ?? "options";
}

function unreadableUnder(value: object, path: string, seen: Set<object>): string | undefined {
  seen.add(value);
  let keys: PropertyKey[];
  try {
    // Own keys and, at the top, a class's getters too: ky reads its options by name.
    keys = path ? Reflect.ownKeys(value) : [...new Set([...Reflect.ownKeys(value), ...optionKeys(value)])];
  } catch {
    return path || undefined;
  }
  for (const key of keys) {
    const at = path ? `${path}.${redactUrlsIn(String(key))}` : redactUrlsIn(String(key));
    let inner: unknown;
    try {
      inner = (value as Record<PropertyKey, unknown>)[key];
      if (Object(inner) !== inner) continue;
      if (!isPlain(inner as object) || seen.has(inner as object)) continue;
    } catch {
      return at;
    }
    const found = unreadableUnder(inner as object, at, seen);
    if (found) return found;
  }
  return undefined;
}

function isResilience(value: unknown): value is Resilience {
  try {
    return (
      typeof value === "object" &&
      value !== null &&
      typeof (value as Resilience).fetch === "function" &&
      typeof (value as Resilience).health === "function"
    );
  } catch {
    // Options that cannot be read: `createResilience` names what it cannot read.
    return false;
  }
}
