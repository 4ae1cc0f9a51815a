// Small facts of HTTP that several modules need: which messages have bodies, and what Content-Length says.

/** Whether a request with this method carries a body to forward (GET and HEAD never do). */
export function requestHasBody(method: string): boolean {
  return method !== "GET" && method !== "HEAD";
}

/** Whether an answer to `method` with `status` has a body (RFC 9110: never for HEAD, 204 or 304). */
export function responseHasBody(method: string, status: number): boolean {
  return method !== "HEAD" && status !== 204 && status !== 304;
}

/**
 * A message's headers read once into a plain object: lower-case names, repeated headers joined with ", " (as
 * Headers.get joins them). A request's headers are read into one at the server, once, and that map is what the
 * layers below read: none of them goes back to the Request's Headers.
 */
export type HeaderMap = Readonly<Record<string, string>>;

/** Reads `headers` into a HeaderMap. */
export function headerMap(headers: Headers): HeaderMap {
  const map = headers.toJSON() as Record<string, string | string[]>;
  // Only Set-Cookie comes as a list (it is never joined); in a request it has no meaning, and is kept as one value.
  const cookies = map["set-cookie"];
  if (Array.isArray(cookies)) map["set-cookie"] = cookies.join(", ");
  return map as HeaderMap;
}

/**
 * The length a message's Content-Length announces. Repeated headers with one value (RFC 9110 section 8.6
 * allows `10, 10`) count as that value; differing or malformed ones are an error, never guessed at (a proxy
 * and its backend that read a length differently is how requests are smuggled).
 * @returns the length, null when there is none, or "invalid".
 */
export function contentLength(headers: HeaderMap): number | null | "invalid" {
  const raw = headers["content-length"];
  if (raw === undefined) return null;
  if (/^\d{1,15}$/.test(raw)) return Number(raw);
  let length: number | undefined;
  for (const part of raw.split(",")) {
    const s = part.trim();
    if (!/^\d{1,15}$/.test(s)) return "invalid";
    const n = Number(s);
    if (length !== undefined && n !== length) return "invalid";
    length = n;
  }
  return length ?? "invalid";
}

/**
 * Reads a body whole, but no more than `max` bytes: a longer one (a chunked body announces no length) is
 * cancelled as soon as it passes the limit, never buffered whole.
 * @returns the bytes, or undefined when the body is longer than `max`.
 */
export async function readUpTo(body: ReadableStream<Uint8Array> | null, max: number): Promise<Uint8Array | undefined> {
  if (!body) return new Uint8Array();
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > max) {
      reader.cancel().catch(() => {});
      return undefined;
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks, size);
}
