// The request id: the client's own x-request-id when it is well-formed, else a new one; sent to the backend,
// returned to the client and written on every log line about the request.

import type { HeaderMap } from "./http.ts";

/** The header that carries the id both ways. */
export const REQUEST_ID_HEADER = "x-request-id";

/**
 * What a client-sent id may look like: short, and only characters that are safe in a log line and a
 * header (UUIDs, ULIDs, "req_…", base64). Anything else is replaced, never echoed.
 */
const WELL_FORMED = /^[A-Za-z0-9._:+=@/-]{1,128}$/;

/**
 * The id for a request.
 * @param headers the client's request headers.
 * @returns the client's x-request-id when well-formed, else a new time-ordered UUID (v7).
 */
export function requestIdFor(headers: HeaderMap): string {
  const own = headers[REQUEST_ID_HEADER];
  return own !== undefined && WELL_FORMED.test(own) ? own : Bun.randomUUIDv7();
}
