// The benchmark's fake LLM backend: a fast Bun.serve answering small JSON, paced SSE streams and
// large uploads. Run as its own process: `bun scripts/bench/backend.ts`; prints {"port":N} first.
//
//   POST /v1/chat/completions          -> a small chat.completion JSON naming the x-sm-user-id it got
//   POST /v1/chat/completions + "stream": true, "bench": {events, interval_ms, offset_ms, stream}
//                                      -> SSE: `events` chunks paced `interval_ms` apart, each with
//                                         its send time "t" (performance.timeOrigin + now(), ms)
//   POST /v1/upload                    -> reads the whole body, answers {"bytes": N}
//   GET  /health/liveliness            -> {"status":"alive"}

/** What a streaming request asks of the backend. */
export interface StreamSpec {
  events: number;
  interval_ms: number;
  /** Delay before the first event, so that concurrent streams do not tick in phase. */
  offset_ms: number;
  stream: number;
}

const now = () => performance.timeOrigin + performance.now();
const enc = new TextEncoder();
const DONE = enc.encode("data: [DONE]\n\n");

function completion(user: string | null): string {
  return JSON.stringify({
    id: "chatcmpl-bench",
    object: "chat.completion",
    created: 1_700_000_000,
    model: "bench-model",
    user,
    choices: [{ index: 0, message: { role: "assistant", content: "Hello! How can I help you today?" }, finish_reason: "stop" }],
    usage: { prompt_tokens: 21, completion_tokens: 9, total_tokens: 30 },
  });
}

function sse(spec: StreamSpec): Response {
  const body = new ReadableStream({
    type: "direct",
    async pull(ctrl) {
      // Events are due on a fixed schedule, so one late timer does not shift the rest.
      const start = now() + spec.offset_ms;
      try {
        for (let i = 0; i < spec.events; i++) {
          const wait = start + i * spec.interval_ms - now();
          if (wait > 0) await Bun.sleep(wait);
          const chunk = `data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","s":${spec.stream},"i":${i},"t":${now()},"choices":[{"index":0,"delta":{"content":" token"}}]}\n\n`;
          ctrl.write(chunk);
          ctrl.flush();
        }
        ctrl.write(DONE);
        ctrl.flush();
      } catch {
        // The client left: nothing to send to.
      }
      ctrl.close();
    },
  });
  return new Response(body, { headers: { "content-type": "text/event-stream", "cache-control": "no-cache" } });
}

async function upload(req: Request): Promise<Response> {
  let bytes = 0;
  if (req.body) for await (const chunk of req.body) bytes += chunk.byteLength;
  return Response.json({ bytes });
}

const server = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  development: false,
  idleTimeout: 0,
  maxRequestBodySize: 1024 * 1024 * 1024,
  async fetch(req) {
    const url = req.url;
    const path = url.slice(url.indexOf("/", url.indexOf("//") + 2)).split("?")[0];
    if (path === "/v1/chat/completions" && req.method === "POST") {
      const text = await req.text();
      if (text.includes('"stream":true')) {
        const { bench } = JSON.parse(text) as { bench?: Partial<StreamSpec> };
        return sse({ events: 200, interval_ms: 10, offset_ms: 0, stream: 0, ...bench });
      }
      return new Response(completion(req.headers.get("x-sm-user-id")), { headers: { "content-type": "application/json" } });
    }
    if (path === "/v1/upload" && req.method === "POST") return upload(req);
    if (path === "/health/liveliness") return Response.json({ status: "alive" });
    return Response.json({ error: { message: `no route ${req.method} ${path}` } }, { status: 404 });
  },
});

console.log(JSON.stringify({ port: server.port }));
process.on("SIGTERM", () => {
  server.stop(true);
  process.exit(0);
});
