// Forwarding one request to the backend and streaming its answer back, untouched.
import { redactUrl } from "./address.ts";
import { ProxyError } from "./errors.ts";
import { backendRequestHeaders, clientResponseHeaders } from "./headers.ts";
import { contentLength, headerMap, requestHasBody, responseHasBody, type HeaderMap } from "./http.ts";
import { REQUEST_ID_HEADER } from "./request-id.ts";

/** How to forward one request. */
export interface ForwardOptions {
  /** The client's request headers (read once, http.ts headerMap). */
  clientHeaders: HeaderMap;
  /** The request body, when it was read ahead (small, or to be sent again); otherwise it streams from the request. */
  body?: Uint8Array;
  /** The length the client announced for a body that streams (sent on as Content-Length). */
  contentLength?: number | null;
  /** Backend base URL without a trailing slash, e.g. http://127.0.0.1:8765. */
  backend: string;
  /** Names of the headers that carry the user id. */
  userIdHeaders: readonly string[];
  userId: string;
  /** Sent as x-sm-conversation-id unless the client sent its own. */
  conversationId?: string;
  /** Longest wait for the backend's response head, in ms. */
  firstByteTimeoutMs: number;
  /** Longest silence inside the response body, in ms; 0 means none. */
  streamIdleTimeoutMs: number;
  /** Limit for a streamed body of unannounced length (chunked); beyond it the call ends with 413. */
  maxBodyBytes?: number;
  /** Longest silence of a client in the middle of a streamed body, in ms (its idle timeout); 0 means none. */
  uploadIdleTimeoutMs?: number;
  /** Sent to the backend as x-request-id, and set on the response for the client (replacing the backend's own). */
  requestId?: string;
  /** Watches the request and response bodies as they pass (metrics, usage, access log). */
  observer?: ForwardObserver;
  /**
   * Called when the call turns out long: its backend has not answered within CLIENT_WATCH_MS, or its
   * answer streams (it may be called again, e.g. on a retry). A quick answer taken whole never calls it.
   */
  onLongCall?: () => void;
  /**
   * Called once when this backend call is over: its answer's body ended (read to the end, cancelled or cut),
   * or the call failed before an answer. Whoever holds something for the call (a pool slot, a lifted
   * timeout) gives it back here.
   */
  onSettled?: () => void;
}

/** How a response body ended: read to its end, cancelled by the client, or cut by an error. */
export type BodyOutcome = "complete" | "cancelled" | "failed";

/**
 * Watches one forwarded exchange. It sees what passes and must neither throw nor hold anything
 * back; `end` may be called more than once (the first call counts).
 */
export interface ForwardObserver {
  /** The request body about to be sent: a buffer when it was read ahead, else the client's stream (not to be read). */
  requestBody(body: ReadableStream<Uint8Array> | Uint8Array): void;
  /** A streamed request body is over (sent whole, or cut): the bytes that came from the client. */
  requestBodyEnded(bytes: number): void;
  /** The backend's response head arrived: its status and headers. */
  responseHead(status: number, headers: HeaderMap): void;
  /** A response body chunk, already handed on to the client. */
  chunk(bytes: Uint8Array): void;
  /** The response body ended (at once for a response without a body). */
  end(outcome: BodyOutcome, error?: unknown): void;
}

/** How long a backend call runs before memproxy watches for its client leaving (ms). */
export const CLIENT_WATCH_MS = 100;

/** Raised into the upstream fetch when the client goes away, so the backend call is cancelled. */
export class ClientGone extends Error {
  override name = "ClientGone";
}
class FirstByteTimeout extends Error {
  override name = "FirstByteTimeout";
}
/** Ends a chunked request body that grew past the configured limit. */
class BodyTooLarge extends Error {
  override name = "BodyTooLarge";
  constructor(readonly limit: number) {
    super(`request body larger than ${limit} bytes`);
  }
}

/** Ends a call whose client stopped sending its body: it is the client's silence, not the backend's. */
class UploadStalled extends Error {
  override name = "UploadStalled";
}

/**
 * Passes a streamed request body through. A body over `max` bytes (when given: a chunked body) aborts the
 * backend call. So does a client silent for `idleMs` (0: no limit) while the backend waits for more of the
 * body: the call's lifted idle timeout no longer guards the connection, and a client that sends part of a
 * body and stops must not hold the call until the first-byte timeout, which would blame the backend. Only a
 * read waiting on the client counts: a backend that stops reading is the first-byte timeout's to judge. The
 * observer learns how many bytes came, however the body ends.
 */
function uploadBody(body: ReadableStream<Uint8Array>, max: number | undefined, idleMs: number, upstream: AbortController, observer: ForwardObserver | undefined) {
  let seen = 0;
  let over = false;
  const ended = () => {
    if (over) return;
    over = true;
    observer?.requestBodyEnded(seen);
  };
  const reader = body.getReader();
  const stalled = () => {
    const err = new UploadStalled(`the client sent no more of its body for ${idleMs} ms`);
    ended();
    upstream.abort(err);
    reader.cancel(err).catch(() => {});
  };
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const timer = idleMs > 0 ? setTimeout(stalled, idleMs) : undefined;
      let next: Awaited<ReturnType<typeof reader.read>>;
      try {
        next = await reader.read();
      } catch (err) {
        ended(); // the client left in the middle of its body
        throw err;
      } finally {
        clearTimeout(timer);
      }
      const { done, value } = next;
      if (done) {
        ended();
        return controller.close();
      }
      seen += value.byteLength;
      if (max !== undefined && seen > max) {
        const err = new BodyTooLarge(max);
        ended();
        upstream.abort(err);
        controller.error(err);
        return void reader.cancel(err).catch(() => {});
      }
      controller.enqueue(value);
    },
    cancel: (reason) => {
      ended();
      return reader.cancel(reason);
    },
  });
}

/** Ends a response body that stayed silent longer than the stream idle timeout. */
export class StreamIdleTimeout extends Error {
  override name = "StreamIdleTimeout";
}

/**
 * Forwards `req` to the backend. The request body streams through unparsed; the response body
 * streams back as it arrives. A client that leaves aborts the backend call at once.
 * @param pathAndQuery the request's path and query, appended to the backend's URL.
 * @returns the backend's response for the client; throws ProxyError when the backend failed
 *   before its response head (502, or 504 on timeout).
 */
export async function forward(req: Request, pathAndQuery: string, opts: ForwardOptions): Promise<Response> {
  const target = opts.backend + pathAndQuery;
  const headers = backendRequestHeaders(opts.clientHeaders, {
    userIdHeaders: opts.userIdHeaders,
    userId: opts.userId,
    conversationId: opts.conversationId,
    contentLength: opts.body === undefined ? opts.contentLength : undefined,
  });
  if (opts.requestId) headers[REQUEST_ID_HEADER] = opts.requestId;
  const observer = opts.observer;
  const upstream = new AbortController();
  const body = !requestHasBody(req.method)
    ? undefined
    : (opts.body ?? (req.body ? uploadBody(req.body, opts.maxBodyBytes, opts.uploadIdleTimeoutMs ?? 0, upstream, observer) : undefined));
  let settled = false;
  const settle = () => {
    if (settled) return;
    settled = true;
    opts.onSettled?.();
  };
  if (body && observer) observer.requestBody(body);
  const onClientAbort = () => upstream.abort(new ClientGone("client disconnected"));
  // Watching the client has a price (Bun makes a request's AbortSignal on its first use), not worth it
  // for a quick answer. A backend that takes longer than CLIENT_WATCH_MS gets the client watched (one
  // that left before is seen at once), so that an abandoned LLM call is cancelled.
  let watching = false;
  let firstByteTimer = setTimeout(() => {
    opts.onLongCall?.();
    watching = true;
    if (req.signal.aborted) return onClientAbort();
    req.signal.addEventListener("abort", onClientAbort, { once: true });
    firstByteTimer = setTimeout(() => upstream.abort(new FirstByteTimeout()), opts.firstByteTimeoutMs - CLIENT_WATCH_MS);
  }, Math.min(CLIENT_WATCH_MS, opts.firstByteTimeoutMs));

  let res: Response;
  let seen: HeaderMap;
  let small: Uint8Array | undefined;
  try {
    res = await fetch(target, {
      method: req.method,
      headers,
      body,
      duplex: "half", // the fetch spec requires it for a streamed request body
      signal: upstream.signal,
      redirect: "manual",
      // Bun's own fetch idle timeout (about 5 minutes) would cut a silent LLM call: the timers here rule.
      timeout: false,
    });
    // A small answer of announced length (a non-streamed completion, a model list) is taken whole: it
    // holds back nothing a client could use, and it is still covered by the first-byte timeout. (The
    // answer's `body` is not looked at to see whether it has one: that makes it a stream; the method and
    // status tell.)
    seen = headerMap(res.headers);
    if (responseHasBody(req.method, res.status) && isSmallFixedBody(seen)) small = await res.bytes();
  } catch (err) {
    if (watching) req.signal.removeEventListener("abort", onClientAbort);
    settle();
    throw backendFailure(opts.backend, upstream.signal.reason ?? err, err);
  } finally {
    clearTimeout(firstByteTimer);
  }

  observer?.responseHead(res.status, seen);
  // The client's headers are the backend response's own, cleaned in place, given to the new Response.
  const clientHeaders = clientResponseHeaders(res.headers, seen);
  if (opts.requestId) clientHeaders.set(REQUEST_ID_HEADER, opts.requestId);
  if (small !== undefined) {
    settle();
    if (observer) {
      observer.chunk(small);
      observer.end("complete");
    }
    return new Response(small, { status: res.status, statusText: res.statusText, headers: clientHeaders });
  }
  if (!res.body) {
    settle();
    observer?.end("complete");
    return new Response(null, { status: res.status, statusText: res.statusText, headers: clientHeaders });
  }
  opts.onLongCall?.();
  const resBody = passThrough(res.body, opts.streamIdleTimeoutMs, upstream, observer, settle);
  return new Response(resBody, {
    status: res.status,
    statusText: res.statusText,
    headers: clientHeaders,
  });
}

/** Largest response body taken whole rather than streamed. */
const SMALL_BODY = 64 * 1024;

function isSmallFixedBody(headers: HeaderMap): boolean {
  const length = contentLength(headers);
  if (typeof length !== "number" || length > SMALL_BODY) return false;
  return !headers["content-type"]?.startsWith("text/event-stream");
}

/** What a refused connection means, said the same way in a 502, /health and the log. */
export const CONNECTION_REFUSED = "connection refused: nothing listens there";

/** Whether a fetch() error code is a refused connection (Bun has used both names). */
export function isConnectionRefused(code: string | undefined): boolean {
  return code === "ConnectionRefused" || code === "ECONNREFUSED";
}

/** fetch() error codes that mean no connection was made, so nothing was sent and a retry is safe. */
const CONNECT_FAILURES = new Set(["ConnectionRefused", "ECONNREFUSED", "FailedToOpenSocket", "EHOSTUNREACH", "ENETUNREACH", "ENOTFOUND", "DNSError"]);

/** How a backend call failed before its response head. */
export type BackendFailureKind = "connect" | "timeout" | "client_gone" | "too_large" | "upload_stalled" | "other";

const FAILURE_CODES = {
  connect: "backend_unreachable",
  timeout: "backend_timeout",
  client_gone: "backend_unreachable",
  too_large: "request_too_large",
  upload_stalled: "request_timeout",
  other: "backend_unreachable",
} as const;

/** A backend call that failed before its response head. */
export class BackendFailure extends ProxyError {
  constructor(
    readonly kind: BackendFailureKind,
    readonly backend: string,
    status: number,
    message: string,
    cause: unknown,
    extraHeaders: Record<string, string> = {},
  ) {
    super(status, FAILURE_CODES[kind], message, extraHeaders, { cause });
  }
}

function backendFailure(url: string, reason: unknown, err: unknown): BackendFailure {
  // Messages reach clients and logs: a password in the backend's URL never does.
  const backend = redactUrl(url);
  if (reason instanceof FirstByteTimeout) {
    return new BackendFailure("timeout", backend, 504, `The backend ${backend} did not answer in time`, err);
  }
  if (reason instanceof BodyTooLarge) {
    return new BackendFailure("too_large", backend, 413, `The request body is larger than memproxy's limit of ${reason.limit} bytes (memproxy.limits.max_body_size)`, err);
  }
  if (reason instanceof UploadStalled) {
    return new BackendFailure("upload_stalled", backend, 408, `${reason.message}: memproxy stopped waiting for it`, err, { connection: "close" });
  }
  if (reason instanceof ClientGone) {
    // Nobody reads this answer; it only ends the request's bookkeeping.
    return new BackendFailure("client_gone", backend, 499, "client disconnected before the backend answered", err);
  }
  const code = (err as { code?: string }).code ?? "";
  const kind = CONNECT_FAILURES.has(code) ? "connect" : "other";
  const why = isConnectionRefused(code) ? CONNECTION_REFUSED : code || redactUrl((err as Error).message);
  return new BackendFailure(kind, backend, 502, `memproxy could not reach the backend ${backend}: ${why}`, err);
}

/**
 * The one pass-through of a response body: each chunk is handed on as it arrives, then shown to the
 * observer. Ends the body with StreamIdleTimeout (and aborts the backend call) when no chunk arrives
 * for `idleMs` (0: no limit); one timer per stream, re-armed per chunk. `settled` runs once the body is
 * over, however it ends.
 */
function passThrough(
  body: ReadableStream<Uint8Array>,
  idleMs: number,
  upstream: AbortController,
  observer: ForwardObserver | undefined,
  settled: () => void,
): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  let timer: ReturnType<typeof setTimeout> | undefined;
  return new ReadableStream<Uint8Array>(
    {
      start(controller) {
        if (idleMs <= 0) return;
        timer = setTimeout(() => {
          const err = new StreamIdleTimeout(`no data from the backend for ${idleMs} ms`);
          controller.error(err);
          upstream.abort(err);
          reader.cancel(err).catch(() => {});
          settled();
          observer?.end("failed", err);
        }, idleMs);
      },
      async pull(controller) {
        try {
          const { done, value } = await reader.read();
          if (done) {
            clearTimeout(timer);
            controller.close();
            settled();
            observer?.end("complete");
          } else {
            timer?.refresh();
            controller.enqueue(value);
            observer?.chunk(value);
          }
        } catch (err) {
          clearTimeout(timer);
          controller.error(err);
          settled();
          observer?.end("failed", err);
        }
      },
      cancel(reason) {
        clearTimeout(timer);
        upstream.abort(new ClientGone("client disconnected"));
        settled();
        observer?.end("cancelled", reason);
        return reader.cancel(reason);
      },
    },
    { highWaterMark: 0 },
  );
}
