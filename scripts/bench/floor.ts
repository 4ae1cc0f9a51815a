// The benchmark's "bun floor": the fastest feature-less proxy we know on memproxy's own stack
// (Bun.serve receiving, fetch forwarding), to show how much of the distance to nginx is the stack's
// and how much memproxy's. It does what memproxy must do at the least (drop Host, set the user id
// header to a constant), with the same two speed-ups as memproxy: small answers of known length are
// taken whole, and memproxy's own CallGate keeps backend calls on kept-alive connections. No
// routing, limits, log, metrics, token counting, timeouts or retries.
//
//   bun scripts/bench/floor.ts PORT BACKEND_URL     (PORT 0: any free port; prints {"port":N} once listening)
import { CallGate } from "../../src/call-gate.ts";
import { clientResponseHeaders } from "../../src/headers.ts";
import { pathAndQuery } from "../../src/request-target.ts";
import { headerMap } from "../../src/http.ts";

const [port, backend] = [Number(Bun.argv[2]), Bun.argv[3]!];
const SMALL = 64 * 1024;
/** memproxy's own gate, at its defaults (memproxy.forward.keepalive_limit and keepalive_wait). */
const gate = new CallGate(64, 20);

const server = Bun.serve({
  hostname: "127.0.0.1",
  port,
  idleTimeout: 0,
  maxRequestBodySize: Number.MAX_SAFE_INTEGER,
  async fetch(req) {
    const { release } = await gate.enter();
    try {
      const headers = new Headers(req.headers);
      headers.delete("host");
      headers.set("x-sm-user-id", "default-dev");
      const length = Number(req.headers.get("content-length") ?? NaN);
      const body = req.method === "GET" || req.method === "HEAD" ? undefined : length <= SMALL ? await req.arrayBuffer() : req.body;
      const res = await fetch(backend + pathAndQuery(req.url), {
        method: req.method,
        headers,
        body,
        duplex: "half",
        redirect: "manual",
      });
      const size = Number(res.headers.get("content-length") ?? NaN);
      const whole = size <= SMALL ? await res.arrayBuffer() : res.body;
      return new Response(whole, { status: res.status, headers: clientResponseHeaders(res.headers, headerMap(res.headers)) });
    } finally {
      release();
    }
  },
});
console.log(JSON.stringify({ port: server.port }));
// Exits through process.exit, so that a profile asked for with --cpu-prof is written (bench --profile).
process.on("SIGTERM", () => process.exit(0));
