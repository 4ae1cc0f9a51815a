// Forwarding one request to the backend and streaming its answer back, untouched.
import { ProxyError } from "./errors.ts";
import { backendRequestHeaders, clientResponseHeaders } from "./headers.ts";

/** How to forward one request. */
export interface ForwardOptions {
  /** Backend base URL without a trailing slash, e.g. http://127.0.0.1:8765. */
  backend: string;
  /** Names of the headers that carry the user id. */
  userIdHeaders: readonly string[];
  userId: string;
  /** Longest wait for the backend's response head, in ms. */
  firstByteTimeoutMs: number;
  /** Longest silence inside the response body, in ms; 0 means none. */
  streamIdleTimeoutMs: number;
}

const NO_BODY = new Set(["GET", "HEAD"]);

/** Raised into the upstream fetch when the client goes away, so the backend call is cancelled. */
export class ClientGone extends Error {
  override name = "ClientGone";
}
class FirstByteTimeout extends Error {
  override name = "FirstByteTimeout";
}
/** Ends a response body that stayed silent longer than the stream idle timeout. */
export class StreamIdleTimeout extends Error {
  override name = "StreamIdleTimeout";
}

/**
 * Forwards `req` to the backend. The request body streams through unparsed; the response body
 * streams back as it arrives. A client that leaves aborts the backend call at once.
 * @returns the backend's response for the client; throws ProxyError when the backend failed
 *   before its response head (502, or 504 on timeout).
 */
export async function forward(req: Request, url: URL, opts: ForwardOptions): Promise<Response> {
  const target = opts.backend + url.pathname + url.search;
  const headers = backendRequestHeaders(req.headers, { userIdHeaders: opts.userIdHeaders, userId: opts.userId });
  const upstream = new AbortController();
  const onClientAbort = () => upstream.abort(new ClientGone("client disconnected"));
  if (req.signal.aborted) onClientAbort();
  else req.signal.addEventListener("abort", onClientAbort, { once: true });
  const firstByteTimer = setTimeout(
    () => upstream.abort(new FirstByteTimeout()),
    opts.firstByteTimeoutMs,
  );

  let res: Response;
  try {
    res = await fetch(target, {
      method: req.method,
      headers,
      body: NO_BODY.has(req.method) ? undefined : req.body,
      duplex: "half", // the fetch spec requires it for a streamed request body
      signal: upstream.signal,
      redirect: "manual",
      // Bun's own fetch idle timeout (about 5 minutes) would cut a silent LLM call: the timers here rule.
      timeout: false,
    });
  } catch (err) {
    req.signal.removeEventListener("abort", onClientAbort);
    throw backendFailure(opts.backend, upstream.signal.reason ?? err, err);
  } finally {
    clearTimeout(firstByteTimer);
  }

  const body = res.body && opts.streamIdleTimeoutMs > 0 ? idleLimited(res.body, opts.streamIdleTimeoutMs, upstream) : res.body;
  return new Response(body, {
    status: res.status,
    statusText: res.statusText,
    headers: clientResponseHeaders(res.headers),
  });
}

function backendFailure(backend: string, reason: unknown, err: unknown): ProxyError {
  if (reason instanceof FirstByteTimeout) {
    return new ProxyError(504, "backend_timeout", `The backend ${backend} did not answer in time`, {}, { cause: err });
  }
  if (reason instanceof ClientGone) {
    // Nobody reads this answer; it only ends the request's bookkeeping.
    return new ProxyError(499, "backend_unreachable", "client disconnected before the backend answered", {}, { cause: err });
  }
  const code = (err as { code?: string }).code;
  const why = code === "ConnectionRefused" ? "connection refused" : code ? code : (err as Error).message;
  return new ProxyError(502, "backend_unreachable", `memproxy could not reach the backend ${backend}: ${why}`, {}, { cause: err });
}

/**
 * Passes a body through, ending it with StreamIdleTimeout (and aborting the backend call) when no
 * chunk arrives for `idleMs`. One timer per stream, re-armed per chunk.
 */
function idleLimited(body: ReadableStream<Uint8Array>, idleMs: number, upstream: AbortController): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  let timer: ReturnType<typeof setTimeout> | undefined;
  return new ReadableStream<Uint8Array>(
    {
      start(controller) {
        timer = setTimeout(() => {
          const err = new StreamIdleTimeout(`no data from the backend for ${idleMs} ms`);
          controller.error(err);
          upstream.abort(err);
          reader.cancel(err).catch(() => {});
        }, idleMs);
      },
      async pull(controller) {
        try {
          const { done, value } = await reader.read();
          if (done) {
            clearTimeout(timer);
            controller.close();
          } else {
            timer?.refresh();
            controller.enqueue(value);
          }
        } catch (err) {
          clearTimeout(timer);
          controller.error(err);
        }
      },
      cancel(reason) {
        clearTimeout(timer);
        upstream.abort(new ClientGone("client disconnected"));
        return reader.cancel(reason);
      },
    },
    { highWaterMark: 0 },
  );
}
