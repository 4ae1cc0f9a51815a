// The model a JSON request body names, read after the fact from a small body kept for the forward.

/** JSON bodies up to this size (by Content-Length) are read before forwarding, and scanned for "model". */
export const MODEL_SCAN_LIMIT = 64 * 1024;

/**
 * Whether a request body is read before forwarding to learn its model: JSON of a known, small size.
 * Larger or unsized bodies stream through untouched.
 * @param length the announced Content-Length (null when there is none).
 * @param contentType the Content-Type header.
 */
export function smallJsonBody(length: number | null, contentType: string | null): boolean {
  return length !== null && length > 0 && length <= MODEL_SCAN_LIMIT && (contentType?.includes("json") ?? false);
}

/** One decoder for all: one-shot decoding keeps no state. */
const utf8 = new TextDecoder();

/** The JSON string at bytes[from, to) (quotes included), decoded. */
function modelString(bytes: Uint8Array, from: number, to: number): string | undefined {
  try {
    return JSON.parse(utf8.decode(bytes.subarray(from, to))) as string;
  } catch {
    return undefined;
  }
}

/**
 * The top-level "model" string of a JSON object, given as UTF-8 bytes that may be cut short. A scan of
 * the bytes rather than JSON.parse: the body may be a prefix of 64 KiB, nothing before the key is decoded,
 * and the scan stops at the key (which SDKs send early, before the long messages). In UTF-8 every byte of a multi-byte
 * character has its high bit set, so none is mistaken for a quote, backslash or bracket.
 * @returns the model, or undefined when the bytes hold no top-level "model" string.
 */
export function modelFromJsonPrefix(bytes: Uint8Array): string | undefined {
  let depth = 0;
  let expectKey = false;
  let objectAtTop = false;
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i]!;
    if (c === 34 /* " */) {
      const end = stringEnd(bytes, i);
      if (end < 0) return undefined;
      if (depth === 1 && objectAtTop && expectKey) {
        expectKey = false;
        const colon = skipSpace(bytes, end + 1);
        if (bytes[colon] !== 58 /* : */) return undefined;
        if (end - i === 6 && isModelKey(bytes, i)) {
          const v = skipSpace(bytes, colon + 1);
          if (bytes[v] !== 34) return undefined;
          const vEnd = stringEnd(bytes, v);
          if (vEnd < 0) return undefined;
          return modelString(bytes, v, vEnd + 1);
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

/** `"model"` at `at` (its 7 bytes; the caller checked the closing quote). */
function isModelKey(bytes: Uint8Array, at: number): boolean {
  return bytes[at + 1] === 109 && bytes[at + 2] === 111 && bytes[at + 3] === 100 && bytes[at + 4] === 101 && bytes[at + 5] === 108;
}

/** The index of the quote closing the string that opens at `open`, or -1 when the bytes end first. */
function stringEnd(bytes: Uint8Array, open: number): number {
  for (let i = open + 1; i < bytes.length; i++) {
    const c = bytes[i]!;
    if (c === 92) i++;
    else if (c === 34) return i;
  }
  return -1;
}

function skipSpace(bytes: Uint8Array, i: number): number {
  while (i < bytes.length) {
    const c = bytes[i]!;
    if (c !== 32 && c !== 10 && c !== 13 && c !== 9) break;
    i++;
  }
  return i;
}
