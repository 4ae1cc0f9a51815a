// The model a JSON request body names, read after the fact from a small body kept for the forward.

/** JSON bodies up to this size (by Content-Length) are read before forwarding, and scanned for "model". */
export const MODEL_SCAN_LIMIT = 64 * 1024;

/**
 * Whether a request body is worth reading before forwarding to learn its model: JSON of a known,
 * small size. Measured on Bun 1.4.5: forwarding such a body as one buffer costs less CPU than
 * streaming it, and larger or unsized bodies stream untouched.
 */
export function smallJsonBody(headers: Headers): boolean {
  const length = Number(headers.get("content-length") ?? NaN);
  return length > 0 && length <= MODEL_SCAN_LIMIT && (headers.get("content-type")?.includes("json") ?? false);
}

/**
 * The top-level "model" string of a JSON object text that may be cut short. A hand scan rather than
 * JSON.parse: the text may be a prefix, and the scan stops at the key (which SDKs send early).
 * @returns the model, or undefined when the text holds no top-level "model" string.
 */
export function modelFromJsonPrefix(text: string): string | undefined {
  let depth = 0;
  let expectKey = false;
  let objectAtTop = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 34 /* " */) {
      const end = stringEnd(text, i);
      if (end < 0) return undefined;
      if (depth === 1 && objectAtTop && expectKey) {
        expectKey = false;
        const colon = skipSpace(text, end + 1);
        if (text.charCodeAt(colon) !== 58 /* : */) return undefined;
        if (end - i === 6 && text.startsWith('"model"', i)) {
          const v = skipSpace(text, colon + 1);
          if (text.charCodeAt(v) !== 34) return undefined;
          const vEnd = stringEnd(text, v);
          if (vEnd < 0) return undefined;
          try {
            return JSON.parse(text.slice(v, vEnd + 1)) as string;
          } catch {
            return undefined;
          }
        }
        i = colon;
      } else {
        i = end;
      }
    } else if (c === 123 /* { */ || c === 91 /* [ */) {
      if (depth === 0) objectAtTop = c === 123;
      depth++;
      if (depth === 1) expectKey = true;
    } else if (c === 125 /* } */ || c === 93 /* ] */) {
      if (--depth <= 0) return undefined;
    } else if (c === 44 /* , */ && depth === 1) {
      expectKey = true;
    }
  }
  return undefined;
}

/** The index of the quote closing the string that opens at `open`, or -1 when the text ends first. */
function stringEnd(text: string, open: number): number {
  for (let i = open + 1; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 92) i++;
    else if (c === 34) return i;
  }
  return -1;
}

function skipSpace(text: string, i: number): number {
  while (i < text.length) {
    const c = text.charCodeAt(i);
    if (c !== 32 && c !== 10 && c !== 13 && c !== 9) break;
    i++;
  }
  return i;
}
