// Access keys for memproxy itself: who may use it at all (off unless keys are configured).
import { createHash, timingSafeEqual } from "node:crypto";
import type { HeaderMap } from "./http.ts";

/** Checks a request's key; `null` means no keys are configured and everyone may pass. */
export type AccessCheck = ((headers: HeaderMap) => boolean) | null;

const digest = (s: string) => createHash("sha256").update(s).digest();

/**
 * Compiles the configured keys. A request passes with one of them in `Authorization: Bearer <key>`
 * or `x-api-key: <key>`. Keys are compared as SHA-256 digests with timingSafeEqual, so neither a
 * key's content nor its length shows in the time an answer takes.
 */
export function compileAccess(keys: readonly string[]): AccessCheck {
  if (!keys.length) return null;
  const digests = keys.map(digest);
  const matches = (presented: string) => {
    const d = digest(presented);
    let ok = false;
    for (const k of digests) ok = timingSafeEqual(d, k) || ok; // no early exit
    return ok;
  };
  return (headers) => {
    const auth = headers.authorization;
    if (auth !== undefined && /^bearer\s+/i.test(auth) && matches(auth.replace(/^bearer\s+/i, "").trim())) return true;
    const apiKey = headers["x-api-key"];
    return apiKey !== undefined && matches(apiKey.trim());
  };
}

/** True for addresses only this machine can reach (a listen address: also a bare ::1). */
export function isLoopback(host: string): boolean {
  return host === "::1" || isLoopbackName(host);
}

/**
 * What a request that a web page may have made is refused for: a foreign Host (DNS rebinding) or Origin, or a
 * browser's word that another site sent it.
 */
export type BrowserRefusal = "host" | "origin" | "site";

/**
 * Guards a memproxy that listens on loopback without access keys against web pages. A page whose name is made to
 * resolve to 127.0.0.1 (DNS rebinding) makes the browser send that name as Host, and any page can send a simple
 * POST to http://127.0.0.1:PORT, with its Origin. A page's no-cors GET (an image, a script) carries no Origin,
 * but browsers mark it Sec-Fetch-Site: cross-site; without an Origin, only a navigation (a link followed, say
 * to the status page) passes with that. Tools send a loopback Host and neither header; a request without a Host (HTTP/1.0) or with
 * an empty one comes from no browser.
 * @param extraNames host names accepted besides loopback ones (memproxy.access.allowed_hosts), in lower case.
 * @returns the check: why a request is refused, or null when it may pass.
 */
export function browserGuard(extraNames: readonly string[]): (headers: HeaderMap) => BrowserRefusal | null {
  const extra = new Set(extraNames);
  const ours = (name: string | null) => name !== null && (isLoopbackName(name) || extra.has(name));
  return (headers) => {
    const host = headers.host;
    if (host !== undefined && host !== "" && !ours(hostName(host))) return "host";
    const origin = headers.origin;
    if (origin !== undefined) return ours(originName(origin)) ? null : "origin";
    // Without an Origin. (With one, the Origin decides: a page on localhost:3000 calling 127.0.0.1 is
    // "cross-site" to the browser, which compares host names, yet it is a page of this machine.)
    if (headers["sec-fetch-site"] === "cross-site" && headers["sec-fetch-mode"] !== "navigate") return "site";
    return null;
  };
}

/** The host name in a Host header's value: lower case, without port or the root's trailing dot; null if malformed. */
export function hostName(host: string): string | null {
  const m = /^(\[[0-9a-f:.]+\]|[^\s:[\]/@,]+)(?::\d{1,5})?$/.exec(host.trim().toLowerCase());
  if (!m) return null;
  return m[1]!.endsWith(".") ? m[1]!.slice(0, -1) : m[1]!;
}

/** The host name of an http(s) Origin; null for `null` and other schemes (file:, extensions, webviews). */
function originName(origin: string): string | null {
  const m = /^https?:\/\/(.+)$/i.exec(origin.trim());
  return m ? hostName(m[1]!) : null;
}

/** localhost, a name under .localhost (RFC 6761: they resolve to loopback only), 127.0.0.0/8 or [::1]. */
export function isLoopbackName(name: string): boolean {
  return name === "localhost" || name.endsWith(".localhost") || name === "[::1]" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(name);
}
