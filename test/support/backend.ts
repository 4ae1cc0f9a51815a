// A real backend for tests: Bun.serve on port 0 that records what it received and answers as told.
import type { Server } from "bun";

/** What the backend received for one request. */
export interface Received {
  method: string;
  /** Path and query string, exactly as they arrived. */
  path: string;
  headers: Headers;
  body: Uint8Array;
}

export type Handler = (req: Request, received: Received) => Response | Promise<Response>;

/** A running recording backend; `handler` may be replaced by each test. */
export interface RecordingBackend extends AsyncDisposable {
  readonly url: string;
  readonly port: number;
  /** Every request but liveness probes (GET /health/liveliness), in arrival order. */
  readonly received: Received[];
  /** The liveness probes (memproxy asks at start, for /health and before reusing a backend). */
  readonly probes: Received[];
  /** Resolves once `count` probes have arrived in all. */
  waitForProbes(count: number): Promise<Received[]>;
  handler: Handler;
  /** Resolves with the next request that arrives after this call. */
  nextRequest(): Promise<Received>;
  /** Resolves once `count` requests have arrived in all (at once if they already have). */
  waitFor(count: number): Promise<Received[]>;
  stop(): Promise<void>;
}

/** The default answer: a JSON echo of what arrived. */
export const echo: Handler = (_req, r) =>
  Response.json({ method: r.method, path: r.path, headers: Object.fromEntries(r.headers), bodyLength: r.body.length });

/**
 * Starts a recording backend on 127.0.0.1, port 0. The body is read whole before the handler runs unless
 * `readBody` is false (then `received.body` is empty). Liveness probes (GET /health/liveliness) are recorded
 * apart, in `probes`, and answered 200 unless `handlerAnswersProbes`.
 */
export function startBackend(handler: Handler = echo, options: { readBody?: boolean; handlerAnswersProbes?: boolean } = {}): RecordingBackend {
  const received: Received[] = [];
  const probes: Received[] = [];
  const probeCounters: { count: number; resolve: (r: Received[]) => void }[] = [];
  const waiters: ((r: Received) => void)[] = [];
  const counters: { count: number; resolve: (r: Received[]) => void }[] = [];
  const readBody = options.readBody ?? true;
  const server: Server<undefined> = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    idleTimeout: 0,
    maxRequestBodySize: 2 * 1024 * 1024 * 1024,
    async fetch(req) {
      const url = new URL(req.url);
      const r: Received = {
        method: req.method,
        path: url.pathname + url.search,
        headers: req.headers,
        body: readBody ? new Uint8Array(await req.arrayBuffer()) : new Uint8Array(),
      };
      if (r.method === "GET" && url.pathname === "/health/liveliness") {
        probes.push(r);
        for (let i = probeCounters.length - 1; i >= 0; i--) {
          if (probes.length >= probeCounters[i]!.count) probeCounters.splice(i, 1)[0]!.resolve(probes);
        }
        // Answered as LiteLLM does, unless the test's handler is to answer them.
        return options.handlerAnswersProbes ? backend.handler(req, r) : Response.json("I'm alive!");
      }
      received.push(r);
      waiters.shift()?.(r);
      for (let i = counters.length - 1; i >= 0; i--) {
        if (received.length >= counters[i]!.count) counters.splice(i, 1)[0]!.resolve(received);
      }
      return backend.handler(req, r);
    },
  });
  let stopped: Promise<void> | undefined;
  const backend: RecordingBackend = {
    url: `http://127.0.0.1:${server.port}`,
    port: server.port!,
    received,
    probes,
    waitForProbes: (count) =>
      probes.length >= count ? Promise.resolve(probes) : new Promise((resolve) => probeCounters.push({ count, resolve })),
    handler,
    nextRequest: () => new Promise((resolve) => waiters.push(resolve)),
    waitFor: (count) =>
      received.length >= count ? Promise.resolve(received) : new Promise((resolve) => counters.push({ count, resolve })),
    stop: () => (stopped ??= server.stop(true)),
    [Symbol.asyncDispose]: () => backend.stop(),
  };
  return backend;
}

/** A response body the test writes by hand, and that tells when its reader went away. */
export interface ManualStream {
  readonly body: ReadableStream<Uint8Array>;
  send(text: string | Uint8Array): void;
  close(): void;
  /** Ends the body with an error (the connection is reset mid-stream). */
  fail(): void;
  /** Resolves when the consumer (memproxy) cancels the body. */
  readonly cancelled: Promise<void>;
}

export function manualStream(): ManualStream {
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  let onCancel!: () => void;
  const cancelled = new Promise<void>((resolve) => (onCancel = resolve));
  const enc = new TextEncoder();
  const body = new ReadableStream<Uint8Array>({
    start: (c) => void (controller = c),
    cancel: () => onCancel(),
  });
  return {
    body,
    send: (t) => controller.enqueue(typeof t === "string" ? enc.encode(t) : t),
    close: () => controller.close(),
    fail: () => controller.error(new Error("backend reset")),
    cancelled,
  };
}

/** Reads a streamed response body chunk by chunk as text. */
export function textReader(res: Response) {
  const reader = res.body!.getReader();
  const dec = new TextDecoder();
  let buffered = "";
  return {
    /** Reads until the text read so far contains `needle`; returns everything read up to now. */
    async until(needle: string): Promise<string> {
      while (!buffered.includes(needle)) {
        const { done, value } = await reader.read();
        if (done) throw new Error(`stream ended before ${JSON.stringify(needle)}; got ${JSON.stringify(buffered)}`);
        buffered += dec.decode(value, { stream: true });
      }
      const out = buffered;
      buffered = "";
      return out;
    },
    async rest(): Promise<string> {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return buffered;
        buffered += dec.decode(value, { stream: true });
      }
    },
    cancel: () => reader.cancel(),
  };
}

/** A response's JSON body, typed loosely for assertions. */
export const readJson = (res: Response): Promise<any> => res.json();
