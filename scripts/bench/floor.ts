// The benchmark's "bun floor": the fastest feature-less proxy we know on memproxy's own stack
// (Bun.serve receiving, fetch forwarding), to show how much of the distance to nginx is the stack's
// and how much memproxy's. It does what memproxy must do at the least (drop Host, set the user id
// header to a constant), with the same two speed-ups as memproxy: small answers of known length are
// taken whole, and at most 64 backend calls await their answer at once (Bun's fetch keeps 64
// kept-alive connections). No routing, limits, log, metrics, token counting, timeouts or retries.
//
//   bun scripts/bench/floor.ts PORT BACKEND_URL     (PORT 0: any free port; prints {"port":N} once listening)
const [port, backend] = [Number(Bun.argv[2]), Bun.argv[3]!];
const SLOTS = 64;
const SMALL = 64 * 1024;
let busy = 0;
const waiting: (() => void)[] = [];

const server = Bun.serve({
  hostname: "127.0.0.1",
  port,
  idleTimeout: 0,
  maxRequestBodySize: Number.MAX_SAFE_INTEGER,
  async fetch(req) {
    if (busy >= SLOTS) await new Promise<void>((resolve) => waiting.push(resolve));
    busy++;
    try {
      const url = req.url;
      const headers = new Headers(req.headers);
      headers.delete("host");
      headers.set("x-sm-user-id", "default-dev");
      const length = Number(req.headers.get("content-length") ?? NaN);
      const body = req.method === "GET" || req.method === "HEAD" ? undefined : length <= SMALL ? await req.arrayBuffer() : req.body;
      const res = await fetch(backend + url.slice(url.indexOf("/", url.indexOf("//") + 2)), {
        method: req.method,
        headers,
        body,
        duplex: "half",
        redirect: "manual",
      });
      const size = Number(res.headers.get("content-length") ?? NaN);
      const whole = size <= SMALL ? await res.arrayBuffer() : res.body;
      for (const name of ["connection", "keep-alive", "transfer-encoding"]) res.headers.delete(name);
      return new Response(whole, { status: res.status, headers: res.headers });
    } finally {
      busy--;
      waiting.shift()?.();
    }
  },
});
console.log(JSON.stringify({ port: server.port }));
export {}; // a module: its names are its own
