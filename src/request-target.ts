// The request's target, sliced from the URL Bun.serve gives: absolute ("http://host/path?query") and
// already normalised (dot segments resolved, non-ASCII percent-encoded), so no URL object is needed.

/** Where the path starts: the first "/" after the scheme's "//", or -1 when there is none. */
function pathStart(url: string): number {
  return url.indexOf("/", url.indexOf("//") + 2);
}

/**
 * The path and query of an absolute URL, without its fragment: what is forwarded to the backend. An
 * empty query ("/path?") is dropped, as URL's `search` drops it.
 */
export function pathAndQuery(url: string): string {
  const from = pathStart(url);
  if (from < 0) return "/";
  const hash = url.indexOf("#", from);
  let end = hash < 0 ? url.length : hash;
  if (url.indexOf("?", from) === end - 1) end--;
  return url.slice(from, end);
}

/** The path alone, without query or fragment: what routes, logs and metrics use (a query can carry keys). */
export function pathOf(url: string): string {
  const from = pathStart(url);
  if (from < 0) return "/";
  let end = url.length;
  for (let i = from; i < url.length; i++) {
    const c = url.charCodeAt(i);
    if (c === 63 || c === 35) {
      end = i; // "?" or "#"
      break;
    }
  }
  return url.slice(from, end);
}
