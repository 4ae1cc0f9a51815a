// The model a JSON request body names, read after the fact from a small body kept for the forward.

/** JSON bodies up to this size (by Content-Length) are read before forwarding, and parsed for "model". */
export const MODEL_READ_LIMIT = 64 * 1024;

/**
 * Whether a request body is read before forwarding to learn its model: JSON of a known, small size.
 * Larger or unsized bodies stream through untouched.
 * @param length the announced Content-Length (null when there is none).
 * @param contentType the Content-Type header.
 */
export function smallJsonBody(length: number | null, contentType: string | null): boolean {
  return length !== null && length > 0 && length <= MODEL_READ_LIMIT && (contentType?.includes("json") ?? false);
}

/** One decoder for all: one-shot decoding keeps no state. */
const utf8 = new TextDecoder();

/**
 * The top-level "model" string of a JSON request body read whole. A body larger than MODEL_READ_LIMIT
 * (read ahead only so that another backend can take it again) is not parsed for it.
 * @returns the model, or undefined when the body is not a JSON object with a string "model".
 */
export function modelOf(body: Uint8Array): string | undefined {
  if (body.length > MODEL_READ_LIMIT) return undefined;
  try {
    const model = (JSON.parse(utf8.decode(body)) as { model?: unknown } | null)?.model;
    return typeof model === "string" ? model : undefined;
  } catch {
    return undefined;
  }
}
