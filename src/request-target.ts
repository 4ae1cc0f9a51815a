// The request's target, sliced from the URL Bun.serve gives. With a usable Host, that URL is absolute
// ("http://host/path?query") and already normalised (dot segments resolved, "\" read as "/", non-ASCII
// percent-encoded), so no URL object is needed. Without one (HTTP/1.0 without Host, an empty Host, a Host that is
// not a valid host name), Bun 1.4.5 gives the request target as it arrived instead: relative ("/v1/a/../b") and not
// normalised. That shape is normalised here as Bun would have (it is rare: a URL object is then worth its cost), so
// that the path routed and forwarded does not depend on the Host. (A Host Bun cannot parse that holds no "/", such
// as "[::1", stays in an absolute URL whose path is as it arrived: it is sliced right, and fetch() resolves any dot
// segments on the way to the backend.)

/** Where the path starts in an absolute URL: the first "/" after the scheme's "//", or -1 when there is none. */
function pathStart(url: string): number {
  return url.indexOf("/", url.indexOf("//") + 2);
}

/** Whether Bun gave the target as it arrived (it starts with "/"), rather than an absolute URL. */
function isRelative(url: string): boolean {
  return url.charCodeAt(0) === 47; // "/"
}

/**
 * A relative target parsed as the path of an absolute URL, as Bun parses one that has a Host. The host is fixed
 * ("h"), so that a target starting "//" stays a path and never names a host.
 */
function parsedRelative(url: string): URL {
  return new URL(`http://h${url}`);
}

/**
 * The path and query of the request's URL (absolute, or relative when the request had no usable Host),
 * without its fragment: what is forwarded to the backend. An empty query ("/path?") is dropped, as URL's
 * `search` drops it.
 */
export function pathAndQuery(url: string): string {
  if (isRelative(url)) {
    const u = parsedRelative(url);
    return u.pathname + u.search;
  }
  const from = pathStart(url);
  if (from < 0) return "/";
  const hash = url.indexOf("#", from);
  let end = hash < 0 ? url.length : hash;
  if (url.indexOf("?", from) === end - 1) end--;
  return url.slice(from, end);
}

/** The path alone, without query or fragment: what routes, logs and metrics use (a query can carry keys). */
export function pathOf(url: string): string {
  if (isRelative(url)) return parsedRelative(url).pathname;
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
