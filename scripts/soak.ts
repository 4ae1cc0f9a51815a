// Soak test (not part of `npm test`): pushes many requests through the compiled memproxy and
// reports whether its memory and open file descriptors return to their baseline afterwards.
// Usage: npm run soak -- [--requests 300000] [--concurrency 64] [--binary dist/memproxy]
import { readdirSync, readFileSync } from "node:fs";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  args: Bun.argv.slice(2),
  options: {
    requests: { type: "string", default: "300000" },
    concurrency: { type: "string", default: "64" },
    binary: { type: "string", default: "dist/memproxy" },
    "max-seconds": { type: "string", default: "600" },
  },
});
const TOTAL = Number(values.requests);
const CONCURRENCY = Number(values.concurrency);
const DEADLINE = Date.now() + Number(values["max-seconds"]) * 1000;
const root = new URL("..", import.meta.url).pathname;

if (!(await Bun.file(`${root}${values.binary}`).exists())) {
  console.error(`soak: ${values.binary} not found; run 'npm run build' first`);
  process.exit(2);
}

// The backend: JSON answers, SSE streams with usage, and now and then a stream cut mid-way.
const enc = new TextEncoder();
const backend = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  // Like LiteLLM's uvicorn (keep-alive 5 s), the backend closes idle connections: memproxy's pooled
  // connections to it then go away, and what stays open after the load is memproxy's own doing.
  idleTimeout: 5,
  async fetch(req) {
    const body = await req.text();
    if (body.includes('"stream":true')) {
      return new Response(
        new ReadableStream({
          start(c) {
            for (let i = 0; i < 5; i++) c.enqueue(enc.encode(`data: {"choices":[{"delta":{"content":"t${i}"}}]}\n\n`));
            c.enqueue(enc.encode('data: {"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":5}}\n\ndata: [DONE]\n\n'));
            c.close();
          },
        }),
        { headers: { "content-type": "text/event-stream" } },
      );
    }
    return Response.json({ id: "x", choices: [{ message: { content: "ok" } }], usage: { prompt_tokens: 3, completion_tokens: 1 } });
  },
});

const proc = Bun.spawn([`${root}${values.binary}`, "--port", "0", "--backend", `http://127.0.0.1:${backend.port}`], {
  stdout: "pipe",
  stderr: "inherit",
  env: { ...process.env, BUN_CONFIG_MAX_HTTP_REQUESTS: undefined },
});
// Read (and drop) its access log so that a full pipe never slows it; find its URL on the way.
const url = await (async () => {
  const dec = new TextDecoder();
  let seen = "";
  const reader = proc.stdout.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) throw new Error("memproxy exited before listening");
    seen += dec.decode(value);
    const m = /listening on (http:\/\/[^\s"]+)/.exec(seen);
    if (m) {
      void (async () => {
        while (!(await reader.read()).done);
      })();
      return m[1]!;
    }
  }
})();

const sample = () => {
  const status = readFileSync(`/proc/${proc.pid}/status`, "utf8");
  const kb = (key: string) => Number(new RegExp(`${key}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
  return { rssMiB: +(kb("VmRSS") / 1024).toFixed(1), fds: readdirSync(`/proc/${proc.pid}/fd`).length };
};

const kinds = ["json", "sse", "disconnect", "user"] as const;
let sent = 0;
let failed = 0;
async function worker(): Promise<void> {
  while (sent < TOTAL && Date.now() < DEADLINE) {
    const kind = kinds[sent++ % kinds.length]!;
    try {
      if (kind === "disconnect") {
        const ctl = new AbortController();
        const res = await fetch(`${url}/v1/chat/completions`, { method: "POST", body: '{"stream":true,"model":"m"}', signal: ctl.signal });
        await res.body!.getReader().read();
        ctl.abort();
        continue;
      }
      const res = await fetch(`${url}/v1/chat/completions`, {
        method: "POST",
        body: kind === "sse" ? '{"stream":true,"model":"m"}' : '{"model":"m"}',
        headers: kind === "user" ? { "x-memory-user-id": `user-${sent}` } : {},
      });
      await res.arrayBuffer();
      if (res.status !== 200) failed++;
    } catch {
      if (kind !== "disconnect") failed++;
    }
  }
}

const warm = async (n: number) => {
  for (let i = 0; i < n; i++) await (await fetch(`${url}/v1/chat/completions`, { method: "POST", body: '{"model":"m"}' })).arrayBuffer();
};
await warm(2000);
Bun.gc(true);
const baseline = sample();
const started = performance.now();
let peak = baseline;
const sampler = setInterval(() => {
  const s = sample();
  if (s.rssMiB > peak.rssMiB) peak = s;
}, 500);
await Promise.all(Array.from({ length: CONCURRENCY }, worker));
clearInterval(sampler);
const seconds = (performance.now() - started) / 1000;
const afterLoad = sample();
// Let idle connections close (memproxy closes a client connection idle for 10 s; its own pooled
// backend connections age out too) and memory settle; then compare with the baseline.
let settled = afterLoad;
const back = () => settled.fds <= baseline.fds + 2 && settled.rssMiB <= baseline.rssMiB * 1.5 + 10;
for (let i = 0; i < 60 && !back(); i++) {
  await Bun.sleep(1000);
  if (i % 10 === 9) await warm(10);
  settled = sample();
}

const fdsBack = settled.fds <= baseline.fds + 2; // the client's and backend's sockets of the moment
const memoryBack = settled.rssMiB <= baseline.rssMiB * 1.5 + 10;
console.log(
  JSON.stringify(
    { requests: sent, failed, seconds: +seconds.toFixed(1), rps: Math.round(sent / seconds), baseline, peak, afterLoad, settled, fdsBack, memoryBack },
    null,
    2,
  ),
);
console.log(fdsBack && memoryBack && failed === 0 ? "soak: PASS (memory and file descriptors back near baseline, no failed request)" : "soak: FAIL");
proc.kill("SIGTERM");
await proc.exited;
backend.stop(true);
process.exit(fdsBack && memoryBack && failed === 0 ? 0 : 1);
