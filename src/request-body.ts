// Watching a request body on its way to the backend: its size, and the model a JSON body names, read
// from a copy of its first 64 KB after the fact so the forward never waits for it.

/** Only this much of a JSON body is kept to look for its "model"; a large body streams on unwatched. */
export const MODEL_SCAN_LIMIT = 64 * 1024;

/** What a tapped request body has shown so far. */
export interface BodyTap {
  /** Bytes passed to the backend so far. */
  readonly bytes: number;
  /** The top-level "model" of a JSON body, when found in its first 64 KB; read on demand (after the fact). */
  model(): string | undefined;
}

/**
 * Passes a request body through unchanged (never holding a chunk), counting its bytes and, for JSON,
 * keeping references to the chunks that make up its first 64 KB.
 * @param body the client's request body.
 * @param json whether the body is JSON (only then is it scanned for the model).
 * @returns the stream to send instead, and the tap to read afterwards.
 */
export function tapRequestBody(body: ReadableStream<Uint8Array>, json: boolean): { body: ReadableStream<Uint8Array>; tap: BodyTap } {
  const reader = body.getReader();
  const kept: Uint8Array[] = [];
  let keptBytes = 0;
  let model: string | null | undefined; // undefined: not looked yet; null: looked, none
  const tap = {
    bytes: 0,
    model(): string | undefined {
      if (model === undefined) model = json && kept.length ? (modelFromJsonPrefix(decodePrefix(kept)) ?? null) : null;
      return model ?? undefined;
    },
  };
  const stream = new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        const { done, value } = await reader.read();
        if (done) return controller.close();
        controller.enqueue(value);
        tap.bytes += value.length;
        if (json && keptBytes < MODEL_SCAN_LIMIT) {
          kept.push(value);
          keptBytes += value.length;
        }
      },
      cancel: (reason) => reader.cancel(reason),
    },
    { highWaterMark: 0 },
  );
  return { body: stream, tap };
}

function decodePrefix(chunks: Uint8Array[]): string {
  const dec = new TextDecoder();
  let text = "";
  let left = MODEL_SCAN_LIMIT;
  for (const c of chunks) {
    if (left <= 0) break;
    text += dec.decode(c.length > left ? c.subarray(0, left) : c, { stream: true });
    left -= c.length;
  }
  return text;
}

/**
 * The top-level "model" string of a JSON object text that may be cut short. A hand scan rather than
 * JSON.parse: the text is often a prefix, and the scan stops at the key (which SDKs send early).
 * @returns the model, or undefined when the prefix holds no top-level "model" string.
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
