// The status page's HTTP side: the page's files, its JSON snapshot, its event stream and the rule tester.
import { errorResponse, ProxyError, type ErrorCode } from "./errors.ts";
import { contentLength, headerMap, readUpTo, type HeaderMap } from "./http.ts";
import type { StatusBoard } from "./status.ts";
import appCss from "./ui/app.css" with { type: "text" };
import appJs from "./ui/app.js" with { type: "text" };
import iconSvg from "./ui/icon.svg" with { type: "text" };
import indexBundle from "./ui/index.html" with { type: "text" };

// Imported as text, it is a string; bun-types types every *.html import as an HTMLBundle.
const indexHtml = indexBundle as unknown as string;

/** The page's own paths. */
export const UI_PATHS = {
  root: "/",
  page: "/ui",
  pageSlash: "/ui/",
  script: "/ui/app.js",
  style: "/ui/app.css",
  icon: "/ui/icon.svg",
  state: "/ui/api/state",
  events: "/ui/api/events",
  explain: "/ui/api/explain",
} as const;

/** Every UI response carries these: the page runs only its own script and style, and loads nothing else. */
export const UI_SECURITY_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  "content-security-policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "cache-control": "no-store",
  "cross-origin-opener-policy": "same-origin",
  "cross-origin-resource-policy": "same-origin",
});

/** The rule tester's body may hold this many bytes of headers. */
const EXPLAIN_MAX_BYTES = 16 * 1024;
/**
 * The most status pages open at once. Each holds a connection for as long as it is open, outside the limit on
 * requests (memproxy.limits.max_concurrent_requests), which they must not use up.
 */
export const PAGE_STREAMS_MAX = 32;

/** The page's handlers, and which of its paths need an access key. */
export interface Ui {
  /**
   * Answers a UI request; undefined when the path is not the page's (or is "/" with a method other
   * than GET: that request is proxied as before, e.g. a client's HEAD / probe).
   * @param path the request's path without its query.
   * @param headers the request's headers (http.ts headerMap).
   * @param liftIdleTimeout lifts the connection's idle timeout: a page's event stream is open for as long as the page.
   */
  handle(req: Request, path: string, headers: HeaderMap, liftIdleTimeout?: () => () => void): Response | Promise<Response> | undefined;
  /** Page event streams whose connections are open: counted until the connection closes, not only while subscribed. */
  readonly openPages: number;
  /** The shell, script, style and icon: served without a key (they hold no data). */
  readonly publicPaths: ReadonlySet<string>;
  /** The data: served only with an access key when keys are configured. */
  readonly apiPaths: ReadonlySet<string>;
}

interface Asset {
  body: string;
  type: string;
}

const ASSETS: Record<string, Asset> = {
  [UI_PATHS.root]: { body: indexHtml, type: "text/html; charset=utf-8" },
  [UI_PATHS.page]: { body: indexHtml, type: "text/html; charset=utf-8" },
  [UI_PATHS.pageSlash]: { body: indexHtml, type: "text/html; charset=utf-8" },
  [UI_PATHS.script]: { body: appJs, type: "text/javascript; charset=utf-8" },
  [UI_PATHS.style]: { body: appCss, type: "text/css; charset=utf-8" },
  [UI_PATHS.icon]: { body: iconSvg, type: "image/svg+xml" },
};

/**
 * Builds the page's handlers.
 * @param board the live status board.
 * @param explain the routing decision (or refusal) for headers: the same code as the server and `memproxy explain`.
 * @returns handle() and the paths it answers, split into public and key-protected.
 */
export function createUi(board: StatusBoard, explain: (headers: HeaderMap) => unknown): Ui {
  const publicPaths = new Set<string>(Object.keys(ASSETS));
  const apiPaths = new Set<string>([UI_PATHS.state, UI_PATHS.events, UI_PATHS.explain]);
  let openPages = 0;
  /**
   * A page's event stream. A page counts until its connection closes (the request's signal) or its stream is
   * cancelled (the page left): one the board dropped for not reading keeps its socket, and its slot, until then.
   */
  const pageStream = (req: Request, liftIdleTimeout: (() => () => void) | undefined): Response => {
    openPages++;
    let counted = true;
    const release = () => {
      if (counted) openPages--;
      counted = false;
    };
    req.signal.addEventListener("abort", release, { once: true });
    // A page the board drops for not reading gets its idle timeout back: its writes are stuck, so Bun closes
    // the connection once the timeout runs out (it cannot be closed directly), which frees its slot.
    const restore = liftIdleTimeout?.();
    return new Response(board.subscribe(release, restore), {
      headers: {
        ...UI_SECURITY_HEADERS,
        "content-type": "text/event-stream; charset=utf-8",
        // A reverse proxy in front (nginx) must pass events on as they come.
        "x-accel-buffering": "no",
      },
    });
  };
  return {
    get openPages() {
      return openPages;
    },
    publicPaths,
    apiPaths,
    handle(req, path, headers, liftIdleTimeout) {
      const asset = ASSETS[path];
      if (asset !== undefined) {
        if (path === UI_PATHS.root && req.method !== "GET") return undefined;
        if (req.method !== "GET" && req.method !== "HEAD") return notAllowed("GET, HEAD");
        return new Response(req.method === "HEAD" ? null : asset.body, { headers: { ...UI_SECURITY_HEADERS, "content-type": asset.type } });
      }
      switch (path) {
        case UI_PATHS.state:
          if (req.method !== "GET" && req.method !== "HEAD") return notAllowed("GET, HEAD");
          return json(board.snapshot());
        case UI_PATHS.events:
          if (req.method !== "GET") return notAllowed("GET");
          if (openPages >= PAGE_STREAMS_MAX) {
            return uiError(503, "overloaded", `The status page is open in ${PAGE_STREAMS_MAX} places at once, its most; close one, or retry shortly`, { "retry-after": "5" });
          }
          return pageStream(req, liftIdleTimeout);
        case UI_PATHS.explain:
          if (req.method !== "POST") return notAllowed("POST");
          return explainResponse(req, headers, explain);
      }
      return undefined;
    },
  };
}

/**
 * POST /ui/api/explain: `{"headers": "Name: value\n..."}` gives the routing decision as JSON. The
 * body must be JSON (application/json): another site's page cannot send that without asking first.
 */
async function explainResponse(req: Request, headers: HeaderMap, explain: (headers: HeaderMap) => unknown): Promise<Response> {
  const type = headers["content-type"] ?? "";
  if (!/^application\/json\b/i.test(type)) {
    return uiError(415, "unsupported_media_type", 'The rule tester takes JSON: send Content-Type: application/json and {"headers": "Name: value\\n..."}');
  }
  const length = contentLength(headers);
  if (typeof length === "number" && length > EXPLAIN_MAX_BYTES) return tooLarge();
  const bytes = await readUpTo(req.body, EXPLAIN_MAX_BYTES);
  if (!bytes) return tooLarge();
  let text: unknown;
  try {
    text = (JSON.parse(new TextDecoder().decode(bytes)) as { headers?: unknown } | null)?.headers;
  } catch {
    text = undefined;
  }
  if (typeof text !== "string") {
    return uiError(400, "invalid_request", 'The rule tester takes {"headers": "Name: value\\n..."}: a JSON object whose "headers" is a string');
  }
  const parsed = parseHeaderLines(text);
  if (!parsed.ok) return uiError(400, "invalid_headers", parsed.error);
  return json(explain(parsed.headers));
}

/**
 * Reads pasted header lines ("Name: value", one a line; blank lines and a leading request line
 * such as "POST /v1/messages HTTP/1.1" are skipped).
 * @returns the headers, or which line is wrong and why.
 */
export function parseHeaderLines(text: string): { ok: true; headers: HeaderMap } | { ok: false; error: string } {
  const headers = new Headers();
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === "" || (i === 0 && /^[A-Z]+ \S+ HTTP\/\d/.test(line))) continue;
    const colon = line.indexOf(":");
    if (colon <= 0) return { ok: false, error: `line ${i + 1}: expected 'Name: value', got ${describe(line)}` };
    try {
      headers.append(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
    } catch {
      return { ok: false, error: `line ${i + 1}: not a valid header name or value: ${describe(line)}` };
    }
  }
  return { ok: true, headers: headerMap(headers) };
}

function describe(line: string): string {
  return line.length > 80 ? `${JSON.stringify(line.slice(0, 80))}…` : JSON.stringify(line);
}

function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), { status, headers: { ...UI_SECURITY_HEADERS, "content-type": "application/json" } });
}

/** An error in memproxy's error shape, with the page's security headers. */
function uiError(status: number, code: ErrorCode, message: string, extra: Record<string, string> = {}): Response {
  return errorResponse(new ProxyError(status, code, message, { ...UI_SECURITY_HEADERS, ...extra }));
}

function notAllowed(allow: string): Response {
  return uiError(405, "method_not_allowed", `This path of the status page takes ${allow} only`, { allow });
}

function tooLarge(): Response {
  return uiError(413, "request_too_large", `The rule tester takes at most ${EXPLAIN_MAX_BYTES / 1024} KiB of headers`);
}
