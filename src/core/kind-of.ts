/**
 * A value's kind by its built-in tag (`Error`, `Blob`, `File`, `ArrayBuffer`,
 * `Uint8Array`, `URLSearchParams`, `FormData`, `ReadableStream`), not only by
 * `instanceof`: a value made in another realm (a same-origin iframe's
 * `Blob`, an error from a `vm` context) is of its kind all the same, and the
 * platform treats it so.
 */
export function kindOf(value: unknown): string {
  // This realm's are known by class too: happy-dom's Blob, File and FormData carry no tag.
  return value instanceof Blob ? "Blob" : value instanceof FormData ? "FormData" : {}.toString.call(value).slice(8, -1);
}

/**
 * A request body's kind, its tag believed only from the class it names (or
 * this realm's `Blob` and `FormData`), or from a Blob-like object that can
 * be read (a tag `Blob` or `File` and an `arrayBuffer()`, which fetch takes
 * for a Blob too): another realm's `Blob` is a `Blob`; an object of yours
 * whose tag only says so is of no kind (`""`), passed on as given.
 */
export function bodyKind(body: unknown): string {
  const kind = kindOf(body);
  const like = body as { constructor?: { name?: unknown }; arrayBuffer?: unknown } | null;
  return body instanceof Blob ||
    body instanceof FormData ||
    like?.constructor?.name === kind ||
    (/^(Blob|File)$/.test(kind) && typeof like?.arrayBuffer === "function")
    ? kind
    : "";
}

/** Whether `body` is a `Blob` (a `File` is one), of any realm. */
export function isBlob(body: unknown): body is Blob {
  return /^(Blob|File)$/.test(bodyKind(body));
}

/**
 * Whether `value` is an `AbortSignal` of any realm (a same-origin iframe's,
 * which `AbortSignal.any` and fetch take) that can be listened to. Read by
 * its shape, as fetch reads one, with `removeEventListener` too (a listener
 * is removed when the work settles); one that is not this realm's is then
 * listened to once, so that a signal that throws when listened to (a broken
 * polyfill) throws now, before any work runs, not once the work has run.
 * Not a pure read, hence the name: {@link hasSignalShape} is the read alone.
 */
export function isListenableSignal(value: unknown): value is AbortSignal {
  if (!hasSignalShape(value)) return false;
  const signal = value as AbortSignal;
  if (typeof AbortSignal !== "function" || !(signal instanceof AbortSignal)) {
    // As the layer listens: `{ once: true }` (an old shim refuses an options object).
    signal.addEventListener("abort", ignore, { once: true });
    signal.removeEventListener("abort", ignore);
  }
  return true;
}

const ignore = (): void => {};

/** Whether `value` has a signal's shape: `aborted`, `addEventListener` and `removeEventListener`, read only. */
export function hasSignalShape(value: unknown): boolean {
  const signal = value as Partial<AbortSignal> | null | undefined;
  return (
    typeof signal?.aborted === "boolean" &&
    typeof signal.addEventListener === "function" &&
    typeof signal.removeEventListener === "function"
  );
}

/**
 * Whether `value` is a `String` object (of any realm, a subclass's, one
 * whose tag was redefined), which fetch sends as its text: known by the
 * slot `String.prototype.valueOf` reads, not by a tag or a class name.
 */
export function isStringObject(value: unknown): boolean {
  if (typeof value !== "object" || value === null || ArrayBuffer.isView(value)) return false;
  // Bodies of a kind fetch names (a Blob, a form, a stream) are told apart
  // without the throw below, which costs microseconds on every such call.
  const kind = bodyKind(value);
  if (kind !== "") return kind === "String";
  try {
    String.prototype.valueOf.call(value);
    return typeof value === "object";
  } catch {
    return false;
  }
}
