import { describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { echo, manualStream, readJson, startBackend, textReader } from "./support/backend.ts";
import { compiledBinary, spawnMemproxy, startProxy } from "./support/memproxy.ts";
import { Metrics } from "../src/metrics.ts";
import { tempDir } from "./support/process.ts";
import { rawExchange } from "./support/raw-http.ts";
import { VERSION } from "../src/version.ts";

const config = (backend: string) => `litellm_backend_url: ${backend}\n`;

describe("GET /health", () => {
  test("healthy when the backend's cheap liveness check answers; LiteLLM's /health is never called", async () => {
    await using b = startBackend(
      (req) => (new URL(req.url).pathname === "/health/liveliness" ? new Response('"I\'m alive!"') : new Response("expensive", { status: 500 })),
      { handlerAnswersProbes: true },
    );
    await using p = startProxy(config(b.url));
    const res = await fetch(p.url + "/health");
    expect(res.status).toBe(200);
    const body = await readJson(res);
    expect(body).toMatchObject({ status: "healthy", memory_proxy: "up", litellm_backend: "up", backend_url: b.url, version: VERSION });
    expect(Date.parse(body.timestamp)).not.toBeNaN();
    expect(b.probes.map((r) => r.path)).toEqual(["/health/liveliness"]);
    expect(b.received).toEqual([]);
  });

  test("degraded when the backend is down", async () => {
    const dead = startBackend();
    await dead.stop();
    await using p = startProxy(config(dead.url));
    const body = await await readJson(await fetch(p.url + "/health"));
    expect(body).toMatchObject({ status: "degraded", litellm_backend: "down" });
  });

  test("degraded when the backend's liveness check fails", async () => {
    await using b = startBackend(() => new Response("no", { status: 503 }), { handlerAnswersProbes: true });
    await using p = startProxy(config(b.url));
    const health = await readJson(await fetch(p.url + "/health"));
    expect(health.status).toBe("degraded");
    expect(health.backends[0]).toMatchObject({ status: "down", last_error: "/health/liveliness answered 503" });
  });
});

describe("liveness and readiness", () => {
  test("liveness answers without asking the backend; readiness follows the backend", async () => {
    await using b = startBackend(() => new Response("no", { status: 503 }), { handlerAnswersProbes: true });
    await using p = startProxy(config(b.url));
    expect((await fetch(p.url + "/health/liveliness")).status).toBe(200);
    expect((await fetch(p.url + "/health/liveness")).status).toBe(200);
    expect(b.received).toHaveLength(0);
    expect(b.probes).toHaveLength(0);
    expect((await fetch(p.url + "/health/readiness")).status).toBe(503);
  });
});

describe("GET /memory-routing/info", () => {
  test("shows the routing decision and the headers, with secrets redacted", async () => {
    await using b = startBackend();
    await using p = startProxy(
      config(b.url) + `user_id_mappings:\n  header_patterns:\n    - {pattern: "OpenAIClientImpl/Java", user_id: pycharm-ai}\n`,
    );
    const res = await fetch(p.url + "/memory-routing/info", {
      headers: {
        "user-agent": "OpenAIClientImpl/Java 2.0",
        authorization: "Bearer sk-live-123",
        "x-api-key": "sk-ant-456",
        "api-key": "azure-789",
        cookie: "session=abc",
        "x-supermemory-api-key": "sm-000",
        "x-my-token": "tok",
        "x-client-secret": "sec",
        "x-visible": "shown",
      },
    });
    const body = await readJson(res);
    expect(body).toMatchObject({
      user_id: "pycharm-ai",
      matched_pattern: { header: "user-agent", pattern: "OpenAIClientImpl/Java", user_id: "pycharm-ai" },
      custom_header_present: false,
      is_default: false,
    });
    expect(body.headers["x-visible"]).toBe("shown");
    expect(body.headers["user-agent"]).toBe("OpenAIClientImpl/Java 2.0");
    for (const name of ["authorization", "x-api-key", "api-key", "cookie", "x-supermemory-api-key", "x-my-token", "x-client-secret"]) {
      expect(body.headers[name]).toBe("[redacted]");
    }
    expect(JSON.stringify(body)).not.toMatch(/sk-live|sk-ant|azure-789|session=abc|sm-000|"tok"|"sec"/);
    expect(b.received).toHaveLength(0);
  });

  test("an invalid custom header is a 400 here too", async () => {
    await using b = startBackend();
    await using p = startProxy(config(b.url));
    const res = await fetch(p.url + "/memory-routing/info", { headers: { "x-memory-user-id": "a b" } });
    expect(res.status).toBe(400);
    expect((await readJson(res)).error.code).toBe("invalid_user_id");
  });
});

describe("listening", () => {
  test("a port in use is a clear error naming the address and what to do", async () => {
    await using b = startBackend();
    const { parseConfig } = await import("../src/config.ts");
    const { startServer, ListenError } = await import("../src/server.ts");
    const c = parseConfig(config(b.url), "busy.yaml");
    let err: unknown;
    try {
      startServer({ ...c, listen: { ...c.listen, port: b.port } });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ListenError);
    expect(String((err as Error).message)).toContain(`127.0.0.1:${b.port}: the port is already in use`);
    expect(String((err as Error).message)).toContain("--port");
  });

  test("stop() is idempotent and ends the listener", async () => {
    await using b = startBackend();
    const p = startProxy(config(b.url));
    await Promise.all([p.stop(0), p.stop(0)]);
    await p.stop(0);
    expect(await fetch(p.url + "/health/liveliness").catch((e) => e)).toBeInstanceOf(Error);
  });
});

describe("limits and bad input", () => {
  const limited = (backend: string, limits: string) => `litellm_backend_url: ${backend}\nmemproxy:\n  limits:\n${limits}`;

  test("a body over max_body_size announced by Content-Length: 413 at once, nothing forwarded", async () => {
    await using b = startBackend();
    await using p = startProxy(limited(b.url, "    max_body_size: 100MB\n"));
    // 1 GB announced; only the head and a little of the body are ever sent.
    const reply = await rawExchange(p.port, `POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: ${1e9}\r\n\r\n` + "x".repeat(65536));
    expect(reply).toStartWith("HTTP/1.1 413");
    const body = JSON.parse(reply.slice(reply.indexOf("\r\n\r\n") + 4).replace(/^[0-9a-f]+\r\n|\r\n0\r\n\r\n$/g, ""));
    expect(body.error.code).toBe("request_too_large");
    expect(body.error.message).toContain("memproxy.limits.max_body_size");
    expect(b.received).toHaveLength(0);
  });

  test("a chunked body that grows past max_body_size: 413, and the upload is stopped, not read to its end", async () => {
    await using b = startBackend(echo, { readBody: true });
    await using p = startProxy(limited(b.url, "    max_body_size: 1MiB\n"));
    let produced = 0;
    const chunk = new Uint8Array(64 * 1024);
    const upload = new ReadableStream<Uint8Array>({
      pull(c) {
        if (produced >= 1024 ** 3) return c.close();
        produced += chunk.length;
        c.enqueue(chunk);
      },
    });
    const res = await fetch(p.url + "/v1/files", { method: "POST", body: upload, duplex: "half" } as RequestInit);
    expect(res.status).toBe(413);
    expect((await readJson(res)).error.code).toBe("request_too_large");
    // Stopped soon after the 1 MiB limit (what sockets and buffers hold on the way), not read to its end.
    expect(produced).toBeLessThan(8 * 1024 * 1024);
  });

  test("headers over max_header_size: 431 in the OpenAI shape", async () => {
    await using b = startBackend();
    await using p = startProxy(limited(b.url, "    max_header_size: 8KiB\n"));
    const res = await fetch(p.url + "/v1/chat/completions", { method: "POST", body: "{}", headers: { "x-big": "y".repeat(10_000) } });
    expect(res.status).toBe(431);
    expect((await readJson(res)).error.message).toContain("memproxy.limits.max_header_size");
    expect(b.received).toHaveLength(0);
  });

  test("a 10 KB custom-header value or one with control characters is refused, not forwarded", async () => {
    await using b = startBackend();
    await using p = startProxy(`litellm_backend_url: ${b.url}\n`);
    const long = await fetch(p.url + "/v1/chat/completions", { method: "POST", body: "{}", headers: { "x-memory-user-id": "a".repeat(10_240) } });
    expect(long.status).toBe(400);
    expect((await readJson(long)).error.message).toContain("10240 characters");
    const ctl = await rawExchange(p.port, "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nx-memory-user-id: a\x01b\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}");
    expect(ctl).toStartWith("HTTP/1.1 400");
    const tab = await rawExchange(p.port, "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nx-memory-user-id: a\tb\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}");
    expect(tab).toStartWith("HTTP/1.1 400");
    expect(b.received).toHaveLength(0);
  });

  test("beyond max_concurrent_requests: 503 with Retry-After; the requests in flight complete", async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    await using b = startBackend(async () => {
      await gate;
      return new Response("done");
    });
    await using p = startProxy(limited(b.url, "    max_concurrent_requests: 2\n"));
    const held = [0, 1].map(() => fetch(p.url + "/v1/chat/completions", { method: "POST", body: "{}" }));
    await b.waitFor(2);
    const over = await fetch(p.url + "/v1/chat/completions", { method: "POST", body: "{}" });
    expect(over.status).toBe(503);
    expect(over.headers.get("retry-after")).toBe("1");
    expect((await readJson(over)).error.code).toBe("overloaded");
    release();
    expect(await Promise.all(held.map(async (r) => (await r).text()))).toEqual(["done", "done"]);
    expect(b.received).toHaveLength(2);
  });

  test("open status pages do not use up max_concurrent_requests", async () => {
    await using b = startBackend();
    await using p = startProxy(limited(b.url, "    max_concurrent_requests: 2\n"));
    const pages = [0, 1, 2].map(() => new AbortController());
    try {
      for (const page of pages) {
        const res = await fetch(p.url + "/ui/api/events", { signal: page.signal });
        await res.body!.getReader().read(); // its snapshot: the page is open
      }
      const res = await fetch(p.url + "/v1/chat/completions", { method: "POST", body: "{}" });
      expect(res.status).toBe(200);
      await res.text();
    } finally {
      for (const page of pages) page.abort();
    }
  });

  test("a client that sends its request byte by byte is served intact", async () => {
    await using b = startBackend();
    await using p = startProxy(`litellm_backend_url: ${b.url}\n`);
    const raw =
      "POST /v1/messages?beta=true HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slow-client/1\r\nx-memory-user-id: slow\r\n" +
      'Content-Type: application/json\r\nContent-Length: 11\r\nConnection: close\r\n\r\n{"a":"bc"}\n';
    const reply = await rawExchange(p.port, raw, { byteByByte: true });
    expect(reply).toStartWith("HTTP/1.1 200");
    const got = b.received[0]!;
    expect(got.path).toBe("/v1/messages?beta=true");
    expect(got.headers.get("x-sm-user-id")).toBe("slow");
    expect(new TextDecoder().decode(got.body)).toBe('{"a":"bc"}\n');
  });
});


describe("methods", () => {
  test("CONNECT and TRACE are refused (405), not forwarded: no tunnel, no echo of the request's headers", async () => {
    await using b = startBackend();
    await using p = startProxy(config(b.url));
    for (const head of ["CONNECT example.com:443 HTTP/1.1\r\nHost: 127.0.0.1", "TRACE /v1/models HTTP/1.1\r\nHost: 127.0.0.1"]) {
      const reply = await rawExchange(p.port, `${head}\r\nConnection: close\r\n\r\n`);
      expect(reply).toStartWith("HTTP/1.1 405");
      expect(reply.toLowerCase()).toContain("\r\nallow: get, head, post, put, patch, delete, options\r\n");
      expect(JSON.parse(reply.slice(reply.indexOf("\r\n\r\n") + 4)).error.code).toBe("method_not_allowed");
    }
    expect(b.received).toEqual([]);
  });
});

describe("connections", () => {
  test("an idle keep-alive connection is closed after the idle timeout, also after a proxied stream lifted it", async () => {
    // A streamed answer lifts the connection's idle timeout; it must come back once the stream is over.
    await using b = startBackend(
      () => new Response(new Blob(['data: {"bodyLength":2}\n\n']).stream(), { headers: { "content-type": "text/event-stream" } }),
    );
    await using p = startProxy(`litellm_backend_url: ${b.url}\nmemproxy:\n  listen: {idle_timeout: 2}\n`);
    const { promise: closed, resolve: onClose } = Promise.withResolvers<void>();
    const { promise: answered, resolve: onAnswer } = Promise.withResolvers<string>();
    let text = "";
    const socket = await Bun.connect({
      hostname: "127.0.0.1",
      port: p.port,
      socket: {
        data(_s, d) {
          text += new TextDecoder().decode(d);
          if (text.includes("bodyLength")) onAnswer(text);
        },
        close: () => onClose(),
      },
    });
    socket.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\n\r\n{}`);
    expect(await answered).toStartWith("HTTP/1.1 200");
    // The connection stays open (keep-alive) with nothing to do: memproxy must close it.
    await closed;
  });
});

describe("stop", () => {
  test("requests still in flight at the drain timeout are cut and counted", async () => {
    const stream = manualStream();
    await using b = startBackend(() => new Response(stream.body, { headers: { "content-type": "text/event-stream" } }));
    const p = startProxy(`litellm_backend_url: ${b.url}\n`);
    const pending = fetch(p.url + "/v1/chat/completions", { method: "POST", body: "{}" });
    stream.send("data: 1\n\n");
    const res = await pending;
    expect(await p.stop(200)).toEqual({ cut: 1 });
    expect(p.metrics!.shutdownCut.value).toBe(1);
    // Cut: the body ends in an error or short, with only what was sent before the cut.
    const body = await res.text().then((text) => ({ text }), (error: unknown) => ({ error }));
    if ("text" in body) expect(body.text).toBe("data: 1\n\n");
    else expect(body.error).toBeInstanceOf(Error);
  });
});

describe("kept-alive backend connections (memproxy.forward.keepalive_limit)", () => {
  const gated = (backend: string, limit: number, wait = "1s") =>
    `litellm_backend_url: ${backend}\nmemproxy:\n  forward: {keepalive_limit: ${limit}, keepalive_wait: ${wait}}\n`;
  const metric = async (url: string, name: string) => {
    const text = await (await fetch(url + "/metrics")).text();
    return Number(new RegExp(`^${name.replace(/[{}"]/g, "\\$&")} (\\S+)$`, "m").exec(text)?.[1] ?? NaN);
  };
  /** A metrics registry whose "calls waiting" gauge resolves `reached(n)` once it has counted up to n. */
  const watchedMetrics = () => {
    const metrics = new Metrics();
    const gauge = metrics.keepaliveWaiting;
    const watchers: { n: number; resolve: () => void }[] = [];
    const inc = gauge.inc.bind(gauge);
    gauge.inc = (by) => {
      inc(by);
      for (const w of watchers) if (gauge.value >= w.n) w.resolve();
    };
    const reached = (n: number) => new Promise<void>((resolve) => watchers.push({ n, resolve }));
    return { metrics, reached };
  };

  test("beyond the limit a call waits for a running one to end, then takes its place; the wait is counted", async () => {
    const holds: (() => void)[] = [];
    await using b = startBackend(async (_req, r) => {
      await new Promise<void>((resolve) => holds.push(resolve));
      return echo(_req, r);
    });
    const { metrics, reached } = watchedMetrics();
    const queued = reached(1);
    await using p = startProxy(gated(b.url, 2), process.env, { metrics });
    const calls = [0, 1, 2].map((i) => fetch(p.url + "/v1/chat/completions", { method: "POST", headers: { "x-memory-user-id": `u${i}` }, body: "{}" }));
    await b.waitFor(2);
    await queued;
    expect(await metric(p.url, "memproxy_backend_keepalive_waiting")).toBe(1);
    expect(b.received).toHaveLength(2);
    holds[0]!();
    await b.waitFor(3);
    for (const h of holds.slice(1)) h();
    const answers = await Promise.all(calls);
    expect(answers.map((r) => r.status)).toEqual([200, 200, 200]);
    expect(new Set(b.received.map((r) => r.headers.get("x-sm-user-id")))).toEqual(new Set(["u0", "u1", "u2"]));
    expect(await metric(p.url, 'memproxy_backend_keepalive_waits_total{outcome="connection"}')).toBe(1);
    expect(await metric(p.url, 'memproxy_backend_keepalive_waits_total{outcome="timeout"}')).toBe(0);
    expect(await metric(p.url, "memproxy_backend_keepalive_waiting")).toBe(0);
  });

  test("a call goes on its own connection once keepalive_wait is over: nothing waits for a long LLM call", async () => {
    const held = Promise.withResolvers<void>();
    await using b = startBackend(async (req, r) => {
      if (r.headers.get("x-sm-user-id") === "slow") await held.promise;
      return echo(req, r);
    });
    await using p = startProxy(gated(b.url, 1, "50ms"));
    const slow = fetch(p.url + "/v1/chat/completions", { method: "POST", headers: { "x-memory-user-id": "slow" }, body: "{}" });
    await b.waitFor(1);
    const quick = await fetch(p.url + "/v1/chat/completions", { method: "POST", headers: { "x-memory-user-id": "quick" }, body: "{}" });
    expect(quick.status).toBe(200);
    expect(await metric(p.url, 'memproxy_backend_keepalive_waits_total{outcome="timeout"}')).toBe(1);
    held.resolve();
    expect((await slow).status).toBe(200);
  });

  test("a stream frees its slot at its head: calls never wait behind an open stream", async () => {
    const stream = manualStream();
    await using b = startBackend((req, r) =>
      r.headers.get("x-sm-user-id") === "streamer" ? new Response(stream.body, { headers: { "content-type": "text/event-stream" } }) : echo(req, r),
    );
    await using p = startProxy(gated(b.url, 1));
    const pending = fetch(p.url + "/v1/chat/completions", { method: "POST", headers: { "x-memory-user-id": "streamer" }, body: "{}" });
    await b.waitFor(1);
    stream.send("data: 1\n\n"); // Bun sends a response head with its first chunk
    const reader = textReader(await pending);
    await reader.until("data: 1");
    const other = await fetch(p.url + "/v1/chat/completions", { method: "POST", headers: { "x-memory-user-id": "other" }, body: "{}" });
    expect(other.status).toBe(200);
    expect(await metric(p.url, 'memproxy_backend_keepalive_waits_total{outcome="connection"}')).toBe(0);
    expect(await metric(p.url, 'memproxy_backend_keepalive_waits_total{outcome="timeout"}')).toBe(0);
    stream.send("data: 2\n\n");
    stream.close();
    expect(await reader.rest()).toBe("data: 2\n\n");
  });

  test("the binary: 300 calls at once share at most 64 backend connections, where without the limit they open hundreds", async () => {
    const bin = await compiledBinary();
    using dir = tempDir("keepalive");
    // The backend notes each connection by its client port, and holds the calls until 64 of them
    // (or all the wave still owes) have arrived, so that they overlap whatever the machine's speed.
    const connections = new Set<number>();
    let owed = 0;
    let held: (() => void)[] = [];
    using backend = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      idleTimeout: 0,
      async fetch(req, server) {
        // memproxy's liveness probe at start is not one of the calls.
        if (new URL(req.url).pathname === "/health/liveliness") return Response.json("I'm alive!");
        connections.add(server.requestIP(req)!.port);
        await req.arrayBuffer();
        const answer = new Promise<void>((resolve) => held.push(resolve));
        if (held.length >= Math.min(64, owed)) {
          owed -= held.length;
          for (const release of held.splice(0)) release();
        }
        await answer;
        return Response.json({ ok: true });
      },
    });
    const run = async (limit: number) => {
      connections.clear();
      const cfg = dir.file(`limit-${limit}.yaml`);
      writeFileSync(cfg, gated(`http://127.0.0.1:${backend.port}`, limit, "1s") + "  listen: {port: 0}\n");
      await using mp = spawnMemproxy([bin, "--config", cfg]);
      const url = await mp.listening();
      for (let wave = 0; wave < 3; wave++) {
        owed = 300;
        const answers = await Promise.all(
          Array.from({ length: 300 }, () => fetch(url + "/v1/chat/completions", { method: "POST", headers: { "content-type": "application/json" }, body: "{}" })),
        );
        expect(answers.every((r) => r.status === 200)).toBe(true);
        await Promise.all(answers.map((r) => r.arrayBuffer()));
      }
      return connections.size;
    };
    expect(await run(64)).toBeLessThanOrEqual(64);
    expect(await run(0)).toBeGreaterThan(64);
  });
});
