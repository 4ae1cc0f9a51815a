import { describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { ConfigError, parseConfig, reconcile } from "../src/config.ts";
import { createLogger, type LogLevel } from "../src/log.ts";
import { PROMETHEUS_CONTENT_TYPE } from "../src/metrics.ts";
import { ENDPOINTS } from "../src/endpoints.ts";
import { startServer, type ServerHandle } from "../src/server.ts";
import { manualStream, startBackend, textReader } from "./support/backend.ts";
import { spawnMemproxy } from "./support/memproxy.ts";
import { tempDir } from "./support/process.ts";
import { parsePrometheus, sampleSum, sampleValue, type Family } from "./support/prometheus.ts";

type Line = Record<string, unknown>;
interface UserStats {
  requests: number;
  errors: number;
  input_tokens: number;
  output_tokens: number;
  last_seen: string | null;
}
interface Stats {
  since: string;
  totals: Omit<UserStats, "last_seen">;
  users: Record<string, UserStats>;
}

/** memproxy in process, with its log lines captured as parsed JSON. */
function startObserved(yaml: string, level: LogLevel = "debug") {
  const lines: Line[] = [];
  const raw: string[] = [];
  const waiters: { test: (l: Line) => boolean; resolve: (l: Line) => void }[] = [];
  const logger = createLogger({
    level,
    format: "json",
    write: (text) => {
      raw.push(text);
      const line = JSON.parse(text) as Line;
      lines.push(line);
      for (let i = waiters.length - 1; i >= 0; i--) if (waiters[i]!.test(line)) waiters.splice(i, 1)[0]!.resolve(line);
    },
  });
  const config = parseConfig(yaml, "test.yaml", {});
  const handle: ServerHandle = startServer({ ...config, listen: { ...config.listen, host: "127.0.0.1", port: 0 } }, { logger });
  const waitFor = (test: (l: Line) => boolean) => {
    const found = lines.find(test);
    return found ? Promise.resolve(found) : new Promise<Line>((resolve) => waiters.push({ test, resolve }));
  };
  return {
    handle,
    url: handle.url,
    lines,
    raw,
    /** The access line of the request with this id (waits until it is written). */
    accessLine: (id: string | null) => waitFor((l) => l.msg === "request" && l.request_id === id),
    scrape: async (): Promise<Map<string, Family>> => {
      const res = await fetch(handle.url + "/metrics");
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toBe(PROMETHEUS_CONTENT_TYPE);
      return parsePrometheus(await res.text());
    },
    async [Symbol.asyncDispose]() {
      await handle.stop(0);
    },
  };
}

const config = (backend: string, extra = "") => `
litellm_backend_url: ${backend}
user_id_mappings:
  header_patterns:
    - {pattern: "OpenAIClientImpl/Java", user_id: pycharm-ai}
  default_user_id: default-dev
${extra}`;

const CHAT_ANSWER = {
  id: "c1",
  object: "chat.completion",
  model: "gpt-4o-mini-2024-07-18",
  choices: [{ index: 0, message: { role: "assistant", content: "hi" }, finish_reason: "stop" }],
  usage: { prompt_tokens: 11, completion_tokens: 3, total_tokens: 14 },
};
const chatBackend = () => startBackend(() => Response.json(CHAT_ANSWER));
const chat = (url: string, headers: Record<string, string> = {}, model = "gpt-4o-mini") =>
  fetch(url + "/v1/chat/completions", {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify({ model, messages: [{ role: "user", content: "hello" }] }),
  });

describe("x-request-id", () => {
  test("a request without one gets a new id: in the response, at the backend and in the access line", async () => {
    await using b = startBackend();
    await using p = startObserved(config(b.url));
    const arrived = b.nextRequest();
    const res = await chat(p.url);
    const id = res.headers.get("x-request-id");
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect((await arrived).headers.get("x-request-id")).toBe(id);
    await res.text();
    expect((await p.accessLine(id)).status).toBe(200);
    const second = await chat(p.url);
    await second.text();
    expect(second.headers.get("x-request-id")).not.toBe(id);
  });

  test("every kind of forwarded answer carries the id, in place of one the backend sent", async () => {
    const big = "x".repeat(100 * 1024);
    await using b = startBackend((req) => {
      const kind = new URL(req.url).searchParams.get("kind");
      const headers = { "x-request-id": "backend-own", "content-type": kind === "sse" ? "text/event-stream" : "application/json" };
      if (kind === "sse") return new Response("data: {}\n\n", { headers });
      return new Response(kind === "big" ? JSON.stringify({ big }) : "{}", { headers });
    });
    await using p = startObserved(config(b.url));
    for (const kind of ["small", "big", "sse"]) {
      const res = await fetch(`${p.url}/v1/chat/completions?kind=${kind}`, { method: "POST", body: "{}", headers: { "x-request-id": `mine-${kind}` } });
      expect({ kind, id: res.headers.get("x-request-id"), bytes: (await res.text()).length }).toEqual({
        kind,
        id: `mine-${kind}`,
        bytes: kind === "big" ? big.length + 10 : kind === "sse" ? 10 : 2,
      });
      expect((await p.accessLine(`mine-${kind}`)).status).toBe(200);
    }
  });

  test("a client's well-formed id is kept both ways; a malformed one is replaced, never echoed", async () => {
    await using b = startBackend();
    await using p = startObserved(config(b.url));
    for (const own of ["req_8f3a-9c:01", "6f1d2c1e-0b0e-4c39-9a43-6a8d4c1f2b7a"]) {
      const arrived = b.nextRequest();
      const res = await chat(p.url, { "x-request-id": own });
      expect(res.headers.get("x-request-id")).toBe(own);
      expect((await arrived).headers.get("x-request-id")).toBe(own);
      await res.text();
      await p.accessLine(own);
    }
    for (const bad of ["has space", "x".repeat(129), "<script>", ""]) {
      const arrived = b.nextRequest();
      const res = await chat(p.url, { "x-request-id": bad });
      const id = res.headers.get("x-request-id");
      expect(id).not.toBe(bad);
      expect(id).toMatch(/^[0-9a-f-]{36}$/);
      expect((await arrived).headers.get("x-request-id")).toBe(id);
      await res.text();
    }
    expect(p.raw.join("")).not.toContain("<script>");
  });

  test("memproxy's own answers, refusals and backend failures carry one too", async () => {
    const dead = startBackend();
    await dead.stop();
    await using p = startObserved(config(dead.url));
    const responses = [
      await fetch(p.url + ENDPOINTS.liveness),
      await fetch(p.url + ENDPOINTS.metrics),
      await fetch(p.url + ENDPOINTS.stats),
      await chat(p.url, { "x-memory-user-id": "not valid!" }),
      await chat(p.url, { "x-request-id": "mine-1" }),
    ];
    expect(responses.map((r) => r.status)).toEqual([200, 200, 200, 400, 502]);
    for (const r of responses) expect(r.headers.get("x-request-id")).toMatch(/^[\w:-]+$/);
    expect(responses[4]!.headers.get("x-request-id")).toBe("mine-1");
    expect(await p.accessLine("mine-1")).toMatchObject({ level: "warn", status: 502, backend_error: "connect" });
  });
});

describe("the access line", () => {
  test("one JSON line per request with every field, and no secrets", async () => {
    await using b = chatBackend();
    await using p = startObserved(config(b.url));
    const body = JSON.stringify({ messages: [{ role: "user", content: "hello" }], model: "gpt-4o-mini", stream: false });
    const res = await fetch(p.url + "/v1/chat/completions?api_key=sk-query-secret", {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "user-agent": "OpenAIClientImpl/Java 2.1.0",
        authorization: "Bearer sk-header-secret",
        "x-api-key": "sk-ant-secret",
        "x-request-id": "req-fields-1",
      },
      body,
    });
    const text = await res.text();
    const line = await p.accessLine("req-fields-1");
    expect(line).toEqual({
      time: expect.any(String),
      level: "info",
      msg: "request",
      request_id: "req-fields-1",
      method: "POST",
      path: "/v1/chat/completions",
      user_id: "pycharm-ai",
      decided_by: "pattern",
      pattern: "user-agent: OpenAIClientImpl/Java",
      user_agent: "OpenAIClientImpl/Java 2.1.0",
      model: "gpt-4o-mini",
      status: 200,
      bytes_in: body.length,
      bytes_out: text.length,
      ttfb_ms: expect.any(Number),
      duration_ms: expect.any(Number),
      client_disconnected: false,
      input_tokens: 11,
      output_tokens: 3,
    });
    expect(Date.now() - Date.parse(line.time as string)).toBeLessThan(60_000);
    expect(line.duration_ms as number).toBeGreaterThanOrEqual(line.ttfb_ms as number);
    expect(p.lines.filter((l) => l.request_id === "req-fields-1")).toHaveLength(1);
    const all = p.raw.join("");
    for (const secret of ["sk-query-secret", "sk-header-secret", "sk-ant-secret"]) expect(all).not.toContain(secret);
  });

  test("decided_by tells every layer apart, in the access line and in /metrics; a derived id says from what", async () => {
    await using b = chatBackend();
    await using p = startObserved(config(b.url));
    const cases: [Record<string, string>, string, string][] = [
      [{ "x-memory-user-id": "proj-a" }, "proj-a", "custom_header"],
      [{ "user-agent": "OpenAIClientImpl/Java 2" }, "pycharm-ai", "pattern"],
      [{ "user-agent": "claude-cli/2.1.197 (external, cli)" }, "claude-cli", "builtin"],
      [{ "user-agent": "MadeUpTool/1.2 (x)" }, "madeuptool", "derived"],
      [{ "user-agent": "curl/8.5" }, "default-dev", "default"],
    ];
    for (const [headers, user, how] of cases) {
      const res = await chat(p.url, headers);
      await res.text();
      const line = await p.accessLine(res.headers.get("x-request-id"));
      expect([line.user_id, line.decided_by]).toEqual([user, how]);
      if (how !== "pattern" && how !== "builtin") expect(line.pattern).toBeUndefined();
      if (how === "builtin") expect(line).toMatchObject({ pattern: "user-agent: claude-cli/", tool: "Claude Code" });
      if (how === "derived") expect(line.derived_from).toBe("MadeUpTool");
    }
    const metrics = await p.scrape();
    for (const how of ["custom_header", "pattern", "builtin", "derived", "default"]) {
      expect(sampleValue(metrics, "memproxy_routing_decisions_total", { decided_by: how })).toBe(1);
    }
  });

  test("the model comes from the response when the body is not read ahead (no length, or large)", async () => {
    await using b = chatBackend();
    await using p = startObserved(config(b.url));
    const big = JSON.stringify({ messages: [{ role: "user", content: "x".repeat(100_000) }], model: "asked-model" });
    const res = await fetch(p.url + "/v1/chat/completions", { method: "POST", headers: { "content-type": "application/json" }, body: big });
    await res.text();
    const line = await p.accessLine(res.headers.get("x-request-id"));
    expect(line).toMatchObject({ model: "gpt-4o-mini-2024-07-18", bytes_in: big.length });
    expect(b.received.at(-1)!.body.length).toBe(big.length);
  });

  test("a path and a model of any length are kept and logged cut (2,048 and 256 characters)", async () => {
    await using b = startBackend();
    await using p = startObserved(config(b.url));
    const path = "/v1/" + "p".repeat(10_000); // under the 16 KiB request head of an in-process Bun.serve
    const model = "m".repeat(60_000);
    const res = await fetch(p.url + path, { method: "POST", headers: { "content-type": "application/json", "x-request-id": "long-values" }, body: JSON.stringify({ model }) });
    await res.text();
    expect(b.received[0]!.path).toBe(path); // forwarded whole
    const line = await p.accessLine("long-values");
    expect(line.path).toBe(path.slice(0, 2048));
    expect(line.model).toBe(model.slice(0, 256));
    expect(p.raw.at(-1)!.length).toBeLessThan(4096);
  });

  test("a body sent in chunks, without a length, is logged with the bytes that came", async () => {
    await using b = startBackend();
    await using p = startObserved(config(b.url));
    const parts = ["a".repeat(1000), "b".repeat(2345)];
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        const part = parts.shift();
        if (part === undefined) controller.close();
        else controller.enqueue(new TextEncoder().encode(part));
      },
    });
    const res = await fetch(p.url + "/v1/files", { method: "POST", body, headers: { "content-type": "application/octet-stream", "x-request-id": "chunked-upload" } });
    await res.text();
    expect(b.received[0]!.headers.get("content-length")).toBeNull();
    expect(await p.accessLine("chunked-upload")).toMatchObject({ status: 200, bytes_in: 3345 });
  });

  test("a client that leaves mid-stream is logged and counted as disconnected", async () => {
    const stream = manualStream();
    await using b = startBackend(() => new Response(stream.body, { headers: { "content-type": "text/event-stream" } }));
    await using p = startObserved(config(b.url));
    const ac = new AbortController();
    const pending = fetch(p.url + "/v1/chat/completions", { method: "POST", body: "{}", signal: ac.signal, headers: { "x-request-id": "leaver" } });
    stream.send('data: {"i":0}\n\n');
    const reader = textReader(await pending);
    await reader.until('{"i":0}');
    ac.abort();
    await stream.cancelled;
    const line = await p.accessLine("leaver");
    expect(line).toMatchObject({ status: 200, client_disconnected: true, bytes_out: 15 });
    expect(sampleValue(await p.scrape(), "memproxy_client_disconnects_total")).toBe(1);
  });

  test("a client that leaves in the middle of its upload is a disconnect (499), not a memproxy error", async () => {
    await using b = startBackend();
    await using p = startObserved(config(b.url));
    const socket = await Bun.connect({ hostname: "127.0.0.1", port: p.handle.port, socket: { data() {} } });
    socket.write(
      "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n" +
        'x-request-id: half-upload\r\n\r\n{"model":"m",',
    );
    // The request is being handled (routed, reading its body) once it shows as in flight.
    while (sampleValue(await p.scrape(), "memproxy_requests_in_flight") !== 1);
    socket.end();
    expect(await p.accessLine("half-upload")).toMatchObject({ level: "info", status: 499, client_disconnected: true });
    expect(b.received).toHaveLength(0);
    expect(sampleValue(await p.scrape(), "memproxy_requests_in_flight")).toBe(0);
  });

  test(
    "a client that stalls in the middle of a streamed upload gets 408 after its idle timeout; the backend is not blamed",
    async () => {
      // The recording backend reads the whole body before it answers, as any would.
      await using b = startBackend();
      await using p = startObserved(config(b.url, "memproxy:\n  listen: {idle_timeout: 1s}\n  forward: {first_byte_timeout: 120s}\n"));
      const { promise: closed, resolve: onClose } = Promise.withResolvers<void>();
      let reply = "";
      const socket = await Bun.connect({
        hostname: "127.0.0.1",
        port: p.handle.port,
        socket: { data: (_s, d) => void (reply += new TextDecoder().decode(d)), close: () => onClose() },
      });
      // Not JSON, so not read ahead: it streams to the backend as it comes, and 890 bytes never come.
      socket.write("POST /v1/files HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\nContent-Length: 900\r\nx-request-id: stalled-upload\r\n\r\n0123456789");
      await closed;
      expect(reply).toStartWith("HTTP/1.1 408");
      expect(reply.toLowerCase()).toContain("connection: close");
      expect(JSON.parse(reply.slice(reply.indexOf("\r\n\r\n") + 4)).error).toMatchObject({
        code: "request_timeout",
        message: "the client sent no more of its body for 1000 ms: memproxy stopped waiting for it",
      });
      // What came, not what was announced.
      expect(await p.accessLine("stalled-upload")).toMatchObject({ status: 408, client_disconnected: false, error_code: "request_timeout", bytes_in: 10 });
      expect(p.lines.filter((l) => l.msg === "backend marked down")).toEqual([]);
      const m = await p.scrape();
      for (const kind of ["connect", "timeout", "reset", "5xx"]) expect([kind, sampleValue(m, "memproxy_backend_errors_total", { kind })]).toEqual([kind, 0]);
    },
    30_000,
  );

  test("at level warn only failures are written; own endpoints appear at debug", async () => {
    await using b = startBackend((req) => new Response("down", { status: new URL(req.url).pathname === "/fail" ? 503 : 200 }));
    await using quiet = startObserved(config(b.url), "warn");
    await (await fetch(quiet.url + "/ok")).text();
    const failed = await fetch(quiet.url + "/fail");
    await failed.text();
    expect(await quiet.accessLine(failed.headers.get("x-request-id"))).toMatchObject({ level: "warn", status: 503, backend_error: "5xx" });
    expect(quiet.lines.filter((l) => l.msg === "request")).toHaveLength(1);

    await using loud = startObserved(config(b.url), "debug");
    const own = await fetch(loud.url + ENDPOINTS.liveness);
    expect(await loud.accessLine(own.headers.get("x-request-id"))).toMatchObject({ level: "debug", path: ENDPOINTS.liveness, status: 200 });
  });
});

describe("GET /metrics", () => {
  test("strict Prometheus text whose counters move by exactly what was sent", async () => {
    await using b = startBackend((req, r) => {
      const path = new URL(req.url).pathname;
      if (path === "/v1/messages") return new Response('{"type":"error"}', { status: 529, headers: { "content-type": "application/json" } });
      if (path === "/v1/models") return Response.json({ data: [] });
      return Response.json(CHAT_ANSWER);
    });
    await using p = startObserved(config(b.url));
    const before = await p.scrape();
    expect(sampleValue(before, "memproxy_requests_in_flight")).toBe(0);
    expect(sampleValue(before, "memproxy_supervisor_restarts_total")).toBe(0);
    expect(before.get("memproxy_build_info")!.samples).toHaveLength(1);

    for (let i = 0; i < 3; i++) await (await chat(p.url, { "x-memory-user-id": "proj-a" })).text();
    await (await chat(p.url, { "x-memory-user-id": "bad id" })).text();
    await (await fetch(p.url + "/v1/messages", { method: "POST", body: "{}" })).text();
    await (await fetch(p.url + "/v1/models/gpt-4o")).text();
    await (await fetch(p.url + "/some/random/path/123")).text();

    const m = await p.scrape();
    const req = (user_id: string, route: string, status_class: string) => sampleValue(m, "memproxy_requests_total", { user_id, route, status_class });
    expect(req("proj-a", "/v1/chat/completions", "2xx")).toBe(3);
    // A malformed custom header is counted under the id the request would have had without it.
    expect(req("default-dev", "/v1/chat/completions", "4xx")).toBe(1);
    expect(req("default-dev", "/v1/messages", "5xx")).toBe(1);
    expect(req("default-dev", "/v1/models", "2xx")).toBe(1);
    expect(req("default-dev", "other", "2xx")).toBe(1);
    expect(sampleSum(m, "memproxy_requests_total")).toBe(7);
    expect(sampleValue(m, "memproxy_input_tokens_total", { user_id: "proj-a", model: "gpt-4o-mini" })).toBe(33);
    expect(sampleValue(m, "memproxy_output_tokens_total", { user_id: "proj-a", model: "gpt-4o-mini" })).toBe(9);
    expect(sampleValue(m, "memproxy_backend_errors_total", { kind: "5xx" })).toBe(1);
    expect(sampleValue(m, "memproxy_backend_errors_total", { kind: "connect" })).toBe(0);
    expect(sampleValue(m, "memproxy_request_duration_seconds_count", { route: "/v1/chat/completions" })).toBe(4);
    expect(sampleValue(m, "memproxy_request_duration_seconds_bucket", { route: "/v1/chat/completions", le: "+Inf" })).toBe(4);
    expect(sampleValue(m, "memproxy_time_to_first_byte_seconds_count", { route: "/v1/chat/completions" })).toBe(4);
    expect(sampleValue(m, "memproxy_requests_in_flight")).toBe(0);
    // Scrapes are memproxy's own endpoint: not counted as traffic.
    expect((await p.scrape()).get("memproxy_requests_total")!.samples).toEqual(m.get("memproxy_requests_total")!.samples);
  });

  test("backend errors by kind: connect, timeout, 5xx, and a reset mid-body", async () => {
    const dead = startBackend();
    await dead.stop();
    await using down = startObserved(config(dead.url));
    expect((await chat(down.url)).status).toBe(502);
    expect(sampleValue(await down.scrape(), "memproxy_backend_errors_total", { kind: "connect" })).toBe(1);

    await using silent = startBackend(() => new Promise<Response>(() => {}));
    await using slow = startObserved(config(silent.url, "memproxy:\n  forward:\n    first_byte_timeout: 100ms\n"));
    expect((await chat(slow.url)).status).toBe(504);
    expect(sampleValue(await slow.scrape(), "memproxy_backend_errors_total", { kind: "timeout" })).toBe(1);

    const stream = manualStream();
    await using b = startBackend((req) =>
      new URL(req.url).pathname === "/v1/responses" ? new Response(stream.body, { headers: { "content-type": "text/event-stream" } }) : new Response("x", { status: 500 }),
    );
    await using p = startObserved(config(b.url));
    expect((await fetch(p.url + "/v1/chat/completions", { method: "POST", body: "{}" })).status).toBe(500);
    const pending = fetch(p.url + "/v1/responses", { method: "POST", body: "{}", headers: { "x-request-id": "reset-1" } });
    stream.send("data: {}\n\n");
    const reader = textReader(await pending);
    await reader.until("data: {}");
    stream.fail();
    await reader.rest().catch(() => {});
    expect(await p.accessLine("reset-1")).toMatchObject({ level: "warn", backend_error: "reset", client_disconnected: false });
    const m = await p.scrape();
    expect(sampleValue(m, "memproxy_backend_errors_total", { kind: "5xx" })).toBe(1);
    expect(sampleValue(m, "memproxy_backend_errors_total", { kind: "reset" })).toBe(1);

    const quiet = manualStream();
    await using idle = startBackend(() => new Response(quiet.body, { headers: { "content-type": "text/event-stream" } }));
    await using q = startObserved(config(idle.url, "memproxy:\n  forward:\n    stream_idle_timeout: 100ms\n"));
    const waiting = fetch(q.url + "/v1/chat/completions", { method: "POST", body: "{}", headers: { "x-request-id": "idle-1" } });
    quiet.send(": connected\n\n");
    await textReader(await waiting).rest().catch(() => {});
    expect(await q.accessLine("idle-1")).toMatchObject({ level: "warn", backend_error: "timeout", error: expect.stringContaining("StreamIdleTimeout") });
    expect(sampleValue(await q.scrape(), "memproxy_backend_errors_total", { kind: "timeout" })).toBe(1);
  });

  test("in-flight requests and streams while a stream is open, back to 0 after", async () => {
    const stream = manualStream();
    await using b = startBackend(() => new Response(stream.body, { headers: { "content-type": "text/event-stream" } }));
    await using p = startObserved(config(b.url));
    const pending = fetch(p.url + "/v1/chat/completions", { method: "POST", body: "{}" });
    stream.send("data: {}\n\n");
    const reader = textReader(await pending);
    await reader.until("data: {}");
    let m = await p.scrape();
    expect(sampleValue(m, "memproxy_requests_in_flight")).toBe(1);
    expect(sampleValue(m, "memproxy_streams_in_flight")).toBe(1);
    stream.send("data: [DONE]\n\n");
    stream.close();
    await reader.rest();
    m = await p.scrape();
    expect(sampleValue(m, "memproxy_requests_in_flight")).toBe(0);
    expect(sampleValue(m, "memproxy_streams_in_flight")).toBe(0);
  });

  test("more distinct user ids than max_user_labels: the rest share 'other', configured ids keep theirs", async () => {
    await using b = chatBackend();
    await using p = startObserved(config(b.url, "memproxy:\n  metrics:\n    max_user_labels: 3\n"));
    for (let i = 0; i < 10; i++) await (await chat(p.url, { "x-memory-user-id": `random-${i}` })).text();
    await (await chat(p.url)).text();
    const m = await p.scrape();
    const users = new Set(m.get("memproxy_requests_total")!.samples.map((s) => s.labels.user_id));
    expect([...users].sort()).toEqual(["default-dev", "other", "random-0", "random-1", "random-2"]);
    expect(sampleValue(m, "memproxy_requests_total", { user_id: "other", route: "/v1/chat/completions", status_class: "2xx" })).toBe(7);
    expect(sampleValue(m, "memproxy_input_tokens_total", { user_id: "other", model: "gpt-4o-mini" })).toBe(77);
    const stats = (await (await fetch(p.url + ENDPOINTS.stats)).json()) as Stats;
    expect(Object.keys(stats.users).sort()).toEqual([...users].map(String).sort());
    expect(stats.users.other!.requests).toBe(7);
  });

  test("after a reload, newly configured ids keep their own label; the metrics settings stay as at start", async () => {
    await using b = chatBackend();
    await using p = startObserved(config(b.url, "memproxy:\n  metrics:\n    max_user_labels: 1\n"));
    await (await chat(p.url, { "x-memory-user-id": "first" })).text();
    const next = parseConfig(
      config(b.url, "memproxy:\n  metrics:\n    max_user_labels: 5\n").replace(
        "  default_user_id:",
        '    - {pattern: "NewTool/", user_id: new-tool}\n  default_user_id:',
      ),
      "test.yaml",
      {},
    );
    const reconciled = reconcile(p.handle.config, next);
    p.handle.reload(reconciled.config);
    const notes = reconciled.notes;
    expect(notes).toContain("memproxy.metrics: cannot change while running; restart memproxy to apply it");
    await (await chat(p.url, { "x-memory-user-id": "second" })).text();
    await (await chat(p.url, { "user-agent": "NewTool/1.0" })).text();
    const users = (await p.scrape()).get("memproxy_requests_total")!.samples.map((s) => s.labels.user_id);
    expect(users.sort()).toEqual(["first", "new-tool", "other"]);
  });

  test("the supervisor's restart counter shows through the handle", async () => {
    await using b = startBackend();
    await using p = startObserved(config(b.url));
    p.handle.metrics!.supervisorRestarts.inc();
    expect(sampleValue(await p.scrape(), "memproxy_supervisor_restarts_total")).toBe(1);
  });

  test("with metrics disabled, /metrics is forwarded to the backend (any method, as traffic) and stats say how to turn them on", async () => {
    await using b = startBackend();
    await using p = startObserved(config(b.url, "memproxy:\n  metrics: {enabled: false}\n"));
    const res = await fetch(p.url + "/metrics", { headers: { "x-request-id": "metrics-get" } });
    expect(((await res.json()) as { path: string }).path).toBe("/metrics");
    const post = await fetch(p.url + "/metrics", { method: "POST", body: "{}", headers: { "content-type": "application/json" } });
    expect(post.status).toBe(200);
    expect(b.received.map((r) => `${r.method} ${r.path}`)).toEqual(["GET /metrics", "POST /metrics"]);
    expect(await p.accessLine("metrics-get")).toMatchObject({ level: "info", status: 200, user_id: "default-dev" });
    const stats = await fetch(p.url + ENDPOINTS.stats);
    expect(stats.status).toBe(404);
    expect(((await stats.json()) as { error: { message: string } }).error.message).toContain("memproxy.metrics.enabled");
    expect(p.handle.metrics).toBeUndefined();
  });
});

describe("token usage through the proxy, from SSE split mid-event with CRLF", () => {
  const crlf = (events: string[]) => events.map((e) => e.replaceAll("\n", "\r\n") + "\r\n\r\n").join("");
  const STREAMS: [string, string, string, number, number][] = [
    [
      "/v1/chat/completions",
      "gpt-4o-mini",
      crlf([
        'data: {"id":"c","object":"chat.completion.chunk","model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":"Hel"}}],"usage":null}',
        'data: {"id":"c","object":"chat.completion.chunk","model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":"lo"},"finish_reason":"stop"}],"usage":null}',
        'data: {"id":"c","object":"chat.completion.chunk","model":"gpt-4o-mini","choices":[],"usage":{"prompt_tokens":17,"completion_tokens":2,"total_tokens":19}}',
        "data: [DONE]",
      ]),
      17,
      2,
    ],
    [
      "/v1/messages",
      "claude-sonnet-4-5",
      crlf([
        'event: message_start\ndata:{"type":"message_start","message":{"id":"m","model":"claude-sonnet-4-5","usage":{"input_tokens":250,"output_tokens":1}}}',
        'event: content_block_delta\ndata:{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}',
        'event: message_delta\ndata:{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":31}}',
        'event: message_stop\ndata:{"type":"message_stop"}',
      ]),
      250,
      31,
    ],
    [
      "/v1/responses",
      "gpt-5",
      crlf([
        'event: response.created\ndata: {"type":"response.created","response":{"id":"r","model":"gpt-5","usage":null}}',
        'event: response.output_text.delta\ndata: {"type":"response.output_text.delta","delta":"Hi"}',
        'event: response.completed\ndata: {"type":"response.completed","response":{"id":"r","model":"gpt-5","usage":{"input_tokens":60,"output_tokens":8,"total_tokens":68}}}',
      ]),
      60,
      8,
    ],
  ];

  test.each(STREAMS)("%s", async (path, model, text, input, output) => {
    const stream = manualStream();
    await using b = startBackend(() => new Response(stream.body, { headers: { "content-type": "text/event-stream" } }));
    await using p = startObserved(config(b.url));
    const pending = fetch(p.url + path, {
      method: "POST",
      headers: { "content-type": "application/json", "x-memory-user-id": "streamer", "x-request-id": `usage-${model}` },
      body: JSON.stringify({ model, stream: true }),
    });
    // Pieces of 23 bytes cut events, lines and the usage JSON, and one cut falls between a CR and
    // its LF; each piece must reach the client before the next is sent (a held-back chunk would hang here).
    const cuts = new Set([text.indexOf("\r\n") + 1, text.indexOf('"usage":{') + 4]);
    for (let i = 23; i < text.length; i += 23) cuts.add(i);
    const sorted = [0, ...[...cuts].sort((a, b) => a - b), text.length];
    const pieces = sorted.slice(1).map((end, i) => text.slice(sorted[i], end)).filter((piece) => piece.length);
    expect(pieces.some((piece) => piece.endsWith("\r"))).toBe(true);
    stream.send(pieces[0]!);
    const reader = textReader(await pending);
    let received = await reader.until(pieces[0]!);
    for (const piece of pieces.slice(1)) {
      stream.send(piece);
      received += await reader.until(piece);
    }
    stream.close();
    received += await reader.rest();
    expect(received).toBe(text);
    expect(await p.accessLine(`usage-${model}`)).toMatchObject({ model, input_tokens: input, output_tokens: output, bytes_out: text.length });
    const m = await p.scrape();
    expect(sampleValue(m, "memproxy_input_tokens_total", { user_id: "streamer", model })).toBe(input);
    expect(sampleValue(m, "memproxy_output_tokens_total", { user_id: "streamer", model })).toBe(output);
  });
});

describe("GET /memory-routing/stats", () => {
  test("per user id: requests, errors, tokens and when last seen", async () => {
    await using b = startBackend((req) => (req.headers.get("x-fail") ? new Response("no", { status: 500 }) : Response.json(CHAT_ANSWER)));
    await using p = startObserved(config(b.url));
    const started = Date.now();
    await (await chat(p.url, { "x-memory-user-id": "proj-b" })).text();
    await (await chat(p.url, { "x-memory-user-id": "proj-b", "x-fail": "1" })).text();
    await (await chat(p.url, { "user-agent": "OpenAIClientImpl/Java 2" })).text();
    const res = await fetch(p.url + ENDPOINTS.stats);
    expect(res.headers.get("content-type")).toBe("application/json");
    const stats = (await res.json()) as Stats;
    expect(stats).toMatchObject({
      since: expect.any(String),
      uptime_seconds: expect.any(Number),
      requests_in_flight: 0,
      user_label_limit: 100,
      totals: { requests: 3, errors: 1, input_tokens: 22, output_tokens: 6 },
    });
    expect(stats.users["proj-b"]).toMatchObject({ requests: 2, errors: 1, input_tokens: 11, output_tokens: 3 });
    expect(stats.users["pycharm-ai"]).toMatchObject({ requests: 1, errors: 0 });
    expect(Date.parse(stats.users["proj-b"]!.last_seen!)).toBeGreaterThanOrEqual(started - 1000);
  });
});

describe("the logging and metrics settings", () => {
  test("defaults, and errors naming the setting", () => {
    const c = parseConfig("", "t.yaml", {});
    expect(c.logging).toEqual({ level: "info", format: "auto" });
    expect(c.metrics).toEqual({ enabled: true, max_user_labels: 100 });
    const problems = (yaml: string) => {
      try {
        parseConfig(yaml, "t.yaml", {});
      } catch (err) {
        return (err as ConfigError).problems.join("\n");
      }
      return "";
    };
    expect(problems("memproxy:\n  logging: {level: loud}\n")).toContain('t.yaml: memproxy.logging.level: expected debug, info, warn or error, got "loud"');
    expect(problems("memproxy:\n  logging: {format: xml}\n")).toContain("t.yaml: memproxy.logging.format: expected auto, json or text");
    expect(problems("memproxy:\n  metrics: {max_user_labels: 0}\n")).toContain("t.yaml: memproxy.metrics.max_user_labels: must be at least 1");
    expect(problems("memproxy:\n  metrics: {enabeld: true}\n")).toContain('memproxy.metrics.enabeld: unknown setting "enabeld"');
  });

  /** memproxy from source, as the CLI runs it, with the given `memproxy.logging` settings. */
  const cliWithLogging = (backend: string, logging: string) => {
    const dir = tempDir("obs");
    writeFileSync(dir.file("memproxy.yaml"), `litellm_backend_url: ${backend}\nmemproxy:\n  listen: {port: 0}\n  logging: ${logging}\n`);
    const mp = spawnMemproxy([process.execPath, "src/main.ts", "--config", dir.file("memproxy.yaml")]);
    const stop = mp[Symbol.asyncDispose];
    // Stopped as spawnMemproxy stops it; then its folder goes.
    return Object.assign(mp, {
      async [Symbol.asyncDispose]() {
        await stop();
        dir[Symbol.dispose]();
      },
    });
  };

  test("the CLI logs as configured: text lines at debug level", async () => {
    await using b = startBackend();
    await using proc = cliWithLogging(b.url, "{level: debug, format: text}");
    const url = await proc.listening();
    const res = await fetch(url + "/v1/models", { headers: { "x-request-id": "cli-text-1" } });
    await res.text();
    const line = await proc.waitForLine("#cli-text-1");
    expect(line).toMatch(/^\d\d:\d\d:\d\d\.\d{3} INFO  default-dev\s+GET  \/v1\/models\s+200\s+\d+ms  \(default\)  #cli-text-1$/);
    await (await fetch(url + "/health/liveliness", { headers: { "x-request-id": "cli-own-1" } })).text();
    expect(await proc.waitForLine("#cli-own-1")).toContain(" DEBUG ");
    expect(proc.lines.some((l) => l.startsWith("{"))).toBe(false);
  });

  test("the CLI logs as configured: JSON lines, debug lines left out at level info", async () => {
    await using b = startBackend();
    await using proc = cliWithLogging(b.url, "{level: info, format: json}");
    const url = await proc.listening();
    await (await fetch(url + "/health/liveliness", { headers: { "x-request-id": "cli-own-2" } })).text();
    await (await fetch(url + "/v1/models", { headers: { "x-request-id": "cli-json-1" } })).text();
    const line = JSON.parse(await proc.waitForLine('"request_id":"cli-json-1"'));
    expect(line).toMatchObject({ level: "info", msg: "request", method: "GET", path: "/v1/models", status: 200 });
    expect(proc.lines.some((l) => l.includes("cli-own-2"))).toBe(false);
  });
});
