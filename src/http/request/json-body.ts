/** A request body that parsed as JSON: its text as sent, and its value. */
export interface JsonBody {
  text: string;
  value: unknown;
}

/**
 * A request body read as JSON, or `undefined` when there is none or it is
 * not JSON (a form, a stream, plain text). Bytes and Blobs are decoded as
 * UTF-8; `contentType`, when it names JSON, allows any JSON value, otherwise
 * only objects and arrays are attempted.
 */
export async function readJsonBody(
  body: BodyInit | null | undefined,
  contentType?: string | null,
): Promise<JsonBody | undefined> {
  if (body == null) return undefined;
  let text: string | undefined;
  if (typeof body === "string") text = body;
  else if (body instanceof ArrayBuffer || ArrayBuffer.isView(body)) text = new TextDecoder().decode(body);
  else if (typeof Blob !== "undefined" && body instanceof Blob) text = await body.text();
  if (text === undefined) return undefined;
  if (!contentType?.includes("json") && !/^\s*[[{]/.test(text)) return undefined;
  try {
    return { text, value: JSON.parse(text) };
  } catch {
    return undefined;
  }
}
