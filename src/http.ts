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
 * The length a message's Content-Length announces. Repeated headers with one value (RFC 9110 section 8.6
 * allows `10, 10`) count as that value; differing or malformed ones are an error, never guessed at (a proxy
 * and its backend that read a length differently is how requests are smuggled).
 * @returns the length, null when there is none, or "invalid".
 */
export function contentLength(headers: Headers): number | null | "invalid" {
  const raw = headers.get("content-length");
  if (raw === null) return null;
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
