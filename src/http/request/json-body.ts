import { bodyKind, isBlob } from "../../core/kind-of.ts";

/** A request body that parsed as JSON: its text as sent, and its value. */
export interface JsonBody {
  text: string;
  value: unknown;
}

/**
 * A request body read as JSON, or `undefined` when there is none or it is
 * not JSON (a form, a stream, plain text). Bytes and Blobs are decoded as
 * UTF-8, a leading byte-order mark kept in `text`; bytes labelled with
 * another charset, or that are no valid UTF-8, are not read (a rewrite
 * would send them back changed).
 * `contentType`, when it names JSON, allows any JSON value, otherwise
 * only objects and arrays are attempted.
 */
export async function readJsonBody(
  body: BodyInit | null | undefined,
  contentType?: string | null,
): Promise<JsonBody | undefined> {
  if (body == null) return undefined;
  let text: string | undefined;
  // A byte-order mark is kept in `text` (a rewrite sends it back) and skipped
  // by the parse. Bytes that are no UTF-8 throw (`fatal`), and are not read:
  // decoding them leniently would put U+FFFD in their place, and a rewrite
  // would send that instead.
  const decode = (bytes: AllowSharedBufferSource): string =>
    new TextDecoder("utf-8", { ignoreBOM: true, fatal: true }).decode(bytes);
  try {
    if (typeof body === "string") text = body;
    else {
      // fetch sends a string as UTF-8 whatever the label says; bytes are in the
      // label's charset (a Blob's own type labels it when no header does).
      const label = contentType ?? (body as Blob).type ?? "";
      if (!isUtf8(label)) return undefined;
      // Labelled neither JSON nor text (an image, a video, a form): no JSON,
      // and a file upload is never read into memory to find out. Nor is a
      // Blob whose first bytes show it holds no object or array.
      const json = namesJson(label);
      if (!json && /^(?!text\/)[^\s;]/i.test(label)) return undefined;
      if (isBlob(body)) {
        if (!json && !startsLikeJson(await body.slice(0, 256).text())) return undefined;
        text = decode(await body.arrayBuffer());
      } else if (ArrayBuffer.isView(body) || bodyKind(body) === "ArrayBuffer") text = decode(body as ArrayBuffer);
    }
    if (text === undefined) return undefined;
    if (!namesJson(contentType) && !startsLikeJson(text)) return undefined;
    return { text, value: JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text) };
  } catch {
    return undefined; // no UTF-8, or no JSON
  }
}

/**
 * Whether a `content-type` names JSON by its type, in any case
 * (`application/json`, `application/vnd.api+JSON`), its parameters aside
 * (`; name="a.json"` names a file, not the type).
 */
const namesJson = (label: string | null | undefined): boolean => /^[^;]*json\s*(?:;|$)/i.test(label ?? "");

/** Whether `text` opens as a JSON object or array would (after spaces; `\s` takes a byte-order mark too). */
const startsLikeJson = (text: string): boolean => /^\s*[[{]/.test(text);

/** Whether a `content-type` names no charset, or one the Encoding Standard reads as UTF-8 (`utf8`, `unicode-1-1-utf-8`…). */
function isUtf8(contentType: string | null | undefined): boolean {
  // The parameters as fetch's MIME parser reads them: a name up to its `=`
  // (`charset =x` names none), a quoted value whole with its escapes undone
  // (`profile="a;charset=x"` names no charset); the first named charset wins.
  let label: string | undefined;
  for (const [, name, quoted, bare] of (contentType ?? "").matchAll(
    /;[\t\n\r ]*([^;=]*)(?:=(?:"((?:[^"\\]|\\.)*)"?[^;]*|([^;]*)))?/g,
  )) {
    const value = quoted === undefined ? bare?.replace(/[\t\n\r ]+$/, "") : quoted.replace(/\\(.)/gs, "$1");
    if (label === undefined && value && name?.toLowerCase() === "charset") label = value;
  }
  if (label === undefined) return true;
  try {
    return new TextDecoder(label).encoding === "utf-8";
  } catch {
    return false; // a label no decoder knows
  }
}
