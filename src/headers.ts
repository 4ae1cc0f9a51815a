// Header rules for forwarding: hop-by-hop removal, the injected user id, and redaction for display.
import type { HeaderMap } from "./http.ts";

/**
 * Hop-by-hop headers (RFC 9110 section 7.6.1, plus the legacy Keep-Alive and Proxy-Connection):
 * they describe one connection and must not be forwarded by a proxy in either direction.
 */
const HOP_BY_HOP = [
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authenticate",
  "proxy-authorization",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
];

const HOP_BY_HOP_SET: ReadonlySet<string> = new Set(HOP_BY_HOP);

/** The names listed in a message's Connection header: hop-by-hop for this message too. */
function listedInConnection(connection: string | undefined): string[] {
  return connection ? connection.split(",").map((n) => n.trim().toLowerCase()).filter(Boolean) : [];
}

/** Supermemory's conversation header: one chat session keeps one conversation. */
export const CONVERSATION_HEADER = "x-sm-conversation-id";

/** What the backend receives besides the client's own end-to-end headers. */
export interface InjectedHeaders {
  /** Header names that carry the user id (the first is the memory header, e.g. x-sm-user-id). */
  userIdHeaders: readonly string[];
  userId: string;
  /** Sent as x-sm-conversation-id, unless the client sent its own. */
  conversationId?: string;
  /** The Content-Length of a body that streams through; otherwise fetch sets the length of the body it sends. */
  contentLength?: number | null;
}

/** Request headers a proxy never passes on as the client sent them. */
const NOT_FORWARDED: ReadonlySet<string> = new Set([...HOP_BY_HOP, "host", "expect", "content-length", "accept-encoding"]);

/**
 * Whether a client's header is a copy of an injected one: the same name, or the name with `_` for `-`
 * (`x_sm_user_id`), which servers that read headers as CGI variables (HTTP_X_SM_USER_ID) take for it.
 */
function isInjected(name: string, injected: readonly string[]): boolean {
  return injected.includes(name) || (name.includes("_") && injected.includes(name.replaceAll("_", "-")));
}

/**
 * Builds the backend request's headers from the client's: hop-by-hop (and those listed in Connection), Host and
 * Expect dropped, every client-sent copy of an injected header removed (a client must never pick its own memory),
 * and the decided user id set.
 */
export function backendRequestHeaders(client: HeaderMap, inject: InjectedHeaders): Record<string, string> {
  const listed = listedInConnection(client.connection);
  const out: Record<string, string> = {};
  for (const name in client) {
    if (!NOT_FORWARDED.has(name) && !isInjected(name, inject.userIdHeaders) && (!listed.length || !listed.includes(name))) out[name] = client[name]!;
  }
  // A client's Content-Length may be a repeated list ("10, 10", which RFC 9110 allows): sent on as one value.
  if (inject.contentLength != null) out["content-length"] = String(inject.contentLength);
  // Ask for an identity body: on loopback compression only costs time, and compressing servers
  // have buffered SSE streams. A backend that compresses anyway is decoded by fetch.
  out["accept-encoding"] = "identity";
  for (const name of inject.userIdHeaders) out[name] = inject.userId;
  if (inject.conversationId !== undefined && out[CONVERSATION_HEADER] === undefined) out[CONVERSATION_HEADER] = inject.conversationId;
  return out;
}

/**
 * Makes the backend response's headers fit for the client, in place (they are the backend
 * response's own, used once): hop-by-hop dropped, and as fetch() decoded a compressed body but kept
 * Content-Encoding and Content-Length, which would now describe bytes the client never gets, those too.
 * @param seen the same headers as a HeaderMap, read once by the caller.
 */
export function clientResponseHeaders(backend: Headers, seen: HeaderMap): Headers {
  // Only the names present are deleted: each delete is a call into native code.
  for (const name in seen) if (HOP_BY_HOP_SET.has(name)) backend.delete(name);
  for (const name of listedInConnection(seen.connection)) backend.delete(name);
  if (seen["content-encoding"] !== undefined) {
    backend.delete("content-encoding");
    backend.delete("content-length");
  }
  return backend;
}

const SECRET_NAMES = new Set(["authorization", "proxy-authorization", "x-api-key", "api-key", "cookie", "set-cookie"]);
// Whole words where a bare substring would match harmless names (x-bypass-cache, access-control-request-*).
const SECRET_LIKE = /key|token|secret|passw|passphrase|pwd|auth|credential|session|cookie|signature|bearer|jwt|hmac|master|private|(?:^|[-_])(?:pass|sig)(?:[-_]|$)|(?:^|[-_])access(?:$|[-_](?!control))/i;

/** True when a header's value must never be shown or logged. */
export function isSecretHeader(name: string): boolean {
  return SECRET_NAMES.has(name) || SECRET_LIKE.test(name);
}

/** The headers as a plain object, with secret values replaced by "[redacted]". */
export function redactedHeaders(headers: HeaderMap): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name in headers) out[name] = isSecretHeader(name) ? "[redacted]" : headers[name]!;
  return out;
}
