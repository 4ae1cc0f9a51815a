// Access keys for memproxy itself: who may use it at all (off unless keys are configured).
import { createHash, timingSafeEqual } from "node:crypto";

/** Checks a request's key; `null` means no keys are configured and everyone may pass. */
export type AccessCheck = ((headers: Headers) => boolean) | null;

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
    const auth = headers.get("authorization");
    if (auth !== null && /^bearer\s+/i.test(auth) && matches(auth.replace(/^bearer\s+/i, "").trim())) return true;
    const apiKey = headers.get("x-api-key");
    return apiKey !== null && matches(apiKey.trim());
  };
}

/** True for addresses only this machine can reach. */
export function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || host === "[::1]" || /^127\.\d+\.\d+\.\d+$/.test(host);
}
