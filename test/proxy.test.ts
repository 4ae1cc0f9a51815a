import { afterAll, describe, expect, test } from "bun:test";
import { echo, manualStream, readJson, startBackend, textReader } from "./support/backend.ts";
import { startProxy } from "./support/memproxy.ts";
import { rawExchange } from "./support/raw-http.ts";

const CONFIG = (backend: string, extra = "") => `
litellm_backend_url: ${backend}
user_id_mappings:
  header_patterns:
    - {pattern: "claude-cli/", user_id: claude-cli}
    - {pattern: "OpenAIClientImpl/Java", user_id: pycharm-ai}
  default_user_id: default-dev
memproxy:
  forward:
    also_send_user_id_as: [x-litellm-end-user-id]
${extra}`;

const backend = startBackend();
const proxy = startProxy(CONFIG(backend.url));
afterAll(async () => {
  await proxy.stop(0);
  await backend.stop();
});

describe("forwarding", () => {
  test.each([
    ["POST", "/v1/messages?beta=true"],
    ["POST", "/v1/chat/completions"],
    ["POST", "/chat/completions"],
    ["POST", "/v1/responses"],
    ["POST", "/v1/embeddings"],
    ["GET", "/v1/models"],
    ["GET", "/v1/models/gpt-4o?x=1&y=%20z"],
    ["DELETE", "/v1/files/file-123"],
    ["PUT", "/anything/else?q=a%2Fb"],
    ["PATCH", "/v1/x"],
  ])("%s %s reaches the backend with path and query unchanged", async (method, path) => {
    const arrived = backend.nextRequest();
    const body = method === "GET" || method === "DELETE" ? undefined : JSON.stringify({ model: "m", n: 1 });
    const res = await fetch(proxy.url + path, { method, body, headers: { "user-agent": "claude-cli/2.1.197 (external, cli)" } });
    expect(res.status).toBe(200);
    const got = await arrived;
    expect(got.method).toBe(method);
    expect(got.path).toBe(path);
    expect(new TextDecoder().decode(got.body)).toBe(body ?? "");
    expect(got.headers.get("x-sm-user-id")).toBe("claude-cli");
    expect((await readJson(res)).path).toBe(path);
  });

  test("HEAD / (Claude Code's probe) is forwarded", async () => {
    const arrived = backend.nextRequest();
    const res = await fetch(proxy.url + "/", { method: "HEAD", headers: { "user-agent": "Bun/1.3" } });
    expect(res.status).toBe(200);
    expect((await arrived).method).toBe("HEAD");
  });

  test("answers without a body (HEAD, 204, 304, an empty 200) arrive as the backend sent them", async () => {
    backend.handler = (req) => {
      const kind = new URL(req.url).pathname;
      if (kind === "/head") return new Response(null, { headers: { "content-type": "application/json", "content-length": "1234" } });
      if (kind === "/204") return new Response(null, { status: 204, headers: { "x-kind": "no-content" } });
      if (kind === "/304") return new Response(null, { status: 304, headers: { etag: '"v1"' } });
      return new Response("", { headers: { "content-type": "application/json", "content-length": "0" } });
    };
    try {
      const ask = async (base: string, method: string, path: string) => {
        const res = await fetch(base + path, { method });
        return { status: res.status, length: res.headers.get("content-length"), etag: res.headers.get("etag"), kind: res.headers.get("x-kind"), body: await res.text() };
      };
      for (const [method, path] of [["HEAD", "/head"], ["GET", "/204"], ["GET", "/304"], ["GET", "/empty"]] as const) {
        const direct = await ask(backend.url, method, path);
        expect({ path, ...(await ask(proxy.url, method, path)) }).toEqual({ path, ...direct });
      }
      expect((await ask(proxy.url, "HEAD", "/head")).length).toBe("1234");
    } finally {
      backend.handler = echo;
    }
  });

  test("injects the decided user id in every configured header; Host is the backend's", async () => {
    const arrived = backend.nextRequest();
    await fetch(proxy.url + "/v1/chat/completions", {
      method: "POST",
      body: "{}",
      headers: { "user-agent": "OpenAIClientImpl/Java 2.1", authorization: "Bearer sk-abc", "x-custom": "kept" },
    });
    const got = await arrived;
    expect(got.headers.get("x-sm-user-id")).toBe("pycharm-ai");
    expect(got.headers.get("x-litellm-end-user-id")).toBe("pycharm-ai");
    expect(got.headers.get("host")).toBe(`127.0.0.1:${backend.port}`);
    expect(got.headers.get("authorization")).toBe("Bearer sk-abc");
    expect(got.headers.get("x-custom")).toBe("kept");
  });

  test("the injected header's name is configurable; a client's copy of it is still removed", async () => {
    await using b = startBackend();
    await using p = startProxy(CONFIG(b.url).replace("  forward:\n", "  forward:\n    user_id_header: x-my-memory\n"));
    await fetch(p.url + "/v1/chat/completions", { method: "POST", body: "{}", headers: { "user-agent": "claude-cli/2", "x-my-memory": "stolen" } });
    const got = b.received[0]!;
    expect(got.headers.get("x-my-memory")).toBe("claude-cli");
    expect(got.headers.get("x-litellm-end-user-id")).toBe("claude-cli");
    expect(got.headers.has("x-sm-user-id")).toBe(false);
  });

  test("a client's own x-sm-user-id, in any letter case, never reaches the backend", async () => {
    const arrived = backend.nextRequest();
    // fetch() would normalise header names: write the request by hand.
    const raw =
      "POST /v1/chat/completions HTTP/1.1\r\n" +
      `Host: 127.0.0.1:${proxy.port}\r\n` +
      "X-SM-User-Id: stolen-1\r\n" +
      "x-sm-user-id: stolen-2\r\n" +
      "X-Sm-User-ID: stolen-3\r\n" +
      "X-LiteLLM-End-User-Id: stolen-4\r\n" +
      "User-Agent: OpenAIClientImpl/Java\r\n" +
      "Content-Length: 2\r\nConnection: close\r\n\r\n{}";
    const reply = await rawExchange(proxy.port, raw);
    expect(reply).toStartWith("HTTP/1.1 200");
    const got = await arrived;
    expect(got.headers.get("x-sm-user-id")).toBe("pycharm-ai");
    expect(got.headers.get("x-litellm-end-user-id")).toBe("pycharm-ai");
    expect([...got.headers].filter(([k]) => k === "x-sm-user-id")).toHaveLength(1);
  });

  test("the custom header chooses the memory; an invalid value is refused and not forwarded", async () => {
    const arrived = backend.nextRequest();
    await fetch(proxy.url + "/v1/chat/completions", { method: "POST", body: "{}", headers: { "x-memory-user-id": "proj-a" } });
    expect((await arrived).headers.get("x-sm-user-id")).toBe("proj-a");

    const before = backend.received.length;
    const res = await fetch(proxy.url + "/v1/chat/completions", { method: "POST", body: "{}", headers: { "x-memory-user-id": "x".repeat(200) } });
    expect(res.status).toBe(400);
    expect(res.headers.get("content-type")).toBe("application/json");
    const err = await readJson(res);
    expect(err.error).toMatchObject({ type: "invalid_request_error", code: "invalid_user_id", param: null });
    expect(err.error.message).toContain("x-memory-user-id");
    expect(backend.received.length).toBe(before);
  });

  test("hop-by-hop headers are dropped in both directions", async () => {
    await using hop = startBackend(
      () =>
        new Response("ok", {
          headers: { "x-hop-out": "1", connection: "x-hop-out", "keep-alive": "timeout=5", "x-end-to-end": "yes" },
        }),
    );
    await using p = startProxy(CONFIG(hop.url));
    const raw =
      "GET /v1/models HTTP/1.1\r\n" +
      `Host: 127.0.0.1:${p.port}\r\n` +
      "Connection: close, X-Hop-In\r\n" +
      "X-Hop-In: secret\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\nProxy-Authorization: Basic abc\r\nUpgrade: h2c\r\n" +
      "X-Kept: 1\r\n\r\n";
    const reply = await rawExchange(p.port, raw);
    const got = hop.received[0]!;
    for (const name of ["x-hop-in", "keep-alive", "te", "proxy-authorization", "upgrade"]) expect(got.headers.has(name)).toBe(false);
    expect(got.headers.get("x-kept")).toBe("1");
    const head = reply.slice(0, reply.indexOf("\r\n\r\n")).toLowerCase();
    expect(head).toContain("x-end-to-end: yes");
    expect(head).not.toContain("x-hop-out");
    expect(head).not.toContain("keep-alive: timeout");
  });

  test("a 30 MB body streams through intact", async () => {
    const big = new Uint8Array(30 * 1024 * 1024);
    for (let i = 0; i < big.length; i += 4096) big[i] = (i / 4096) & 0xff;
    crypto.getRandomValues(big.subarray(0, 65536));
    const arrived = backend.nextRequest();
    const res = await fetch(proxy.url + "/v1/images", { method: "POST", body: big, headers: { "content-type": "application/octet-stream" } });
    expect(res.status).toBe(200);
    const got = await arrived;
    expect(got.body.length).toBe(big.length);
    expect(Bun.hash(got.body)).toBe(Bun.hash(big));
  });

  test("the backend's own errors pass through unchanged, and redirects are not followed", async () => {
    await using b = startBackend((req) => {
      const path = new URL(req.url).pathname;
      if (path === "/redirect") return new Response(null, { status: 307, headers: { location: "/elsewhere" } });
      if (path === "/boom") return new Response('{"error":{"message":"provider exploded","code":"x"}}', { status: 500, headers: { "content-type": "application/json" } });
      return new Response('{"error":{"message":"no such model"}}', { status: 404, statusText: "Not Found", headers: { "content-type": "application/json", "x-litellm": "1" } });
    });
    await using p = startProxy(CONFIG(b.url));
    const res = await fetch(p.url + "/v1/chat/completions", { method: "POST", body: "{}" });
    expect(res.status).toBe(404);
    expect(res.headers.get("x-litellm")).toBe("1");
    expect(await res.text()).toBe('{"error":{"message":"no such model"}}');
    const boom = await fetch(p.url + "/boom", { method: "POST", body: "{}" });
    expect(boom.status).toBe(500);
    expect(await boom.text()).toBe('{"error":{"message":"provider exploded","code":"x"}}');
    const redirect = await fetch(p.url + "/redirect", { redirect: "manual" });
    expect(redirect.status).toBe(307);
    expect(redirect.headers.get("location")).toBe("/elsewhere");
  });
});

describe("streaming", () => {
  test("SSE events reach the client as the backend emits them", async () => {
    const stream = manualStream();
    await using b = startBackend(() => new Response(stream.body, { headers: { "content-type": "text/event-stream" } }));
    await using p = startProxy(CONFIG(b.url));
    const pending = fetch(p.url + "/v1/chat/completions", { method: "POST", body: '{"stream":true}' });
    // Bun.serve sends a response head together with the first body chunk.
    stream.send(`data: {"i":0}\n\n`);
    const res = await pending;
    expect(res.headers.get("content-type")).toBe("text/event-stream");
    const reader = textReader(res);
    expect(await reader.until(`{"i":0}`)).toBe(`data: {"i":0}\n\n`);
    // Each event is sent only after the previous one arrived at the client: buffering would deadlock.
    for (let i = 1; i < 5; i++) {
      stream.send(`data: {"i":${i}}\n\n`);
      expect(await reader.until(`{"i":${i}}`)).toBe(`data: {"i":${i}}\n\n`);
    }
    stream.send("data: [DONE]\n\n");
    stream.close();
    expect(await reader.rest()).toBe("data: [DONE]\n\n");
  });

  test("a gzip-encoded backend response reaches the client decodable", async () => {
    const payload = JSON.stringify({ choices: [{ message: { content: "x".repeat(5000) } }] });
    await using b = startBackend(
      (req) =>
        new Response(Bun.gzipSync(Buffer.from(payload)), {
          headers: { "content-encoding": "gzip", "content-type": "application/json", "x-asked": req.headers.get("accept-encoding") ?? "" },
        }),
    );
    await using p = startProxy(CONFIG(b.url));
    // decompress: false shows exactly what memproxy sent.
    const res = await fetch(p.url + "/v1/chat/completions", { method: "POST", body: "{}", decompress: false, headers: { "accept-encoding": "gzip" } });
    const bytes = new Uint8Array(await res.arrayBuffer());
    const encoding = res.headers.get("content-encoding");
    const text = encoding === "gzip" ? new TextDecoder().decode(Bun.gunzipSync(bytes)) : new TextDecoder().decode(bytes);
    expect(text).toBe(payload);
    const length = res.headers.get("content-length");
    if (length !== null) expect(Number(length)).toBe(bytes.length);
    expect(res.headers.get("x-asked")).toBe("identity");
  });

  test("a client that disconnects mid-stream aborts the backend request", async () => {
    const stream = manualStream();
    await using b = startBackend(() => new Response(stream.body, { headers: { "content-type": "text/event-stream" } }));
    await using p = startProxy(CONFIG(b.url));
    const client = new AbortController();
    const pending = fetch(p.url + "/v1/messages", { method: "POST", body: "{}", signal: client.signal });
    stream.send("data: first\n\n");
    const res = await pending;
    await textReader(res).until("first");
    client.abort();
    await stream.cancelled; // resolves only when memproxy cancels the backend body
  });

  test("a client that leaves before the backend answered aborts the backend call", async () => {
    let backendSawAbort!: () => void;
    const aborted = new Promise<void>((r) => (backendSawAbort = r));
    await using b = startBackend((req) => {
      req.signal.addEventListener("abort", () => backendSawAbort());
      return new Promise<Response>(() => {}); // thinks forever
    });
    await using p = startProxy(CONFIG(b.url));
    const client = new AbortController();
    const arrived = b.nextRequest();
    const pending = fetch(p.url + "/v1/chat/completions", { method: "POST", body: "{}", signal: client.signal }).catch((e) => e);
    await arrived;
    client.abort();
    await aborted;
    expect(await pending).toBeInstanceOf(Error);
  });
});

describe("backend failures mid-stream", () => {
  test("a backend that resets mid-stream ends the client's stream promptly", async () => {
    const stream = manualStream();
    await using b = startBackend(() => new Response(stream.body, { headers: { "content-type": "text/event-stream" } }));
    await using p = startProxy(CONFIG(b.url));
    const pending = fetch(p.url + "/v1/chat/completions", { method: "POST", body: "{}" });
    stream.send("data: one\n\n");
    const reader = textReader(await pending);
    await reader.until("one");
    stream.fail();
    expect(await reader.rest().catch((e) => e)).toBeInstanceOf(Error);
  });

  test("a backend that sends its head and then nothing: the stream idle timeout ends it", async () => {
    const stream = manualStream();
    await using b = startBackend(() => new Response(stream.body, { headers: { "content-type": "text/event-stream" } }));
    await using p = startProxy(CONFIG(b.url, "    stream_idle_timeout: 300ms"));
    const pending = fetch(p.url + "/v1/chat/completions", { method: "POST", body: "{}" });
    stream.send(": connected\n\n");
    const reader = textReader(await pending);
    await reader.until("connected");
    expect(await reader.rest().catch((e) => e)).toBeInstanceOf(Error);
    await stream.cancelled; // the backend call was abandoned too
  });
});

describe("backend failures before the first byte", () => {
  test("unreachable: 502 in the OpenAI error shape, naming the backend", async () => {
    const dead = startBackend();
    const url = dead.url;
    await dead.stop();
    await using p = startProxy(CONFIG(url));
    const res = await fetch(p.url + "/v1/chat/completions", { method: "POST", body: "{}" });
    expect(res.status).toBe(502);
    const body = await readJson(res);
    expect(body.error).toMatchObject({ type: "server_error", code: "backend_unreachable", param: null });
    expect(body.error.message).toBe(`memproxy could not reach the backend ${url}: connection refused: nothing listens there`);
  });

  test("a body streamed through: the first-byte timeout runs once it is all sent, then 504", async () => {
    // The recording backend reads the whole body, then never answers.
    await using b = startBackend(() => new Promise<Response>(() => {}));
    await using p = startProxy(CONFIG(b.url, "    first_byte_timeout: 300ms"));
    const res = await fetch(p.url + "/v1/files", { method: "POST", body: new Blob(["x".repeat(100)]), headers: { "content-type": "application/octet-stream" } });
    expect(res.status).toBe(504);
    expect(b.received[0]!.body.byteLength).toBe(100);
  });

  test("no answer within first_byte_timeout: 504", async () => {
    await using b = startBackend(() => new Promise<Response>(() => {}));
    await using p = startProxy(CONFIG(b.url, "    first_byte_timeout: 300ms"));
    const res = await fetch(p.url + "/v1/chat/completions", { method: "POST", body: "{}" });
    expect(res.status).toBe(504);
    const body = await readJson(res);
    expect(body.error.code).toBe("backend_timeout");
    expect(body.error.message).toContain(b.url);
  });
});

describe("small answers of announced length (taken whole)", () => {
  /** A raw TCP backend that answers every request with `reply`, then stalls or closes. */
  function rawBackend(reply: string, then: "stall" | "close") {
    const l = Bun.listen({
      hostname: "127.0.0.1",
      port: 0,
      socket: {
        data(s) {
          s.write(reply);
          if (then === "close") s.end();
        },
      },
    });
    return { url: `http://127.0.0.1:${l.port}`, [Symbol.dispose]: () => l.stop(true) };
  }
  const head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n";

  test("arrive intact with their length", async () => {
    await using b = startBackend(() => Response.json({ ok: true, text: "x".repeat(1000) }));
    await using p = startProxy(CONFIG(b.url));
    const res = await fetch(p.url + "/v1/chat/completions", { method: "POST", body: "{}" });
    const text = await res.text();
    expect(JSON.parse(text)).toEqual({ ok: true, text: "x".repeat(1000) });
    expect(res.headers.get("content-length")).toBe(String(text.length));
  });

  test("a backend that stalls inside one gets the first-byte timeout (504), not a hang", async () => {
    using b = rawBackend(head + '{"partial":', "stall");
    await using p = startProxy(CONFIG(b.url, "    first_byte_timeout: 300ms"));
    const res = await fetch(p.url + "/v1/chat/completions", { method: "POST", body: "{}" });
    expect(res.status).toBe(504);
  });

  test("a backend that closes inside one: 502, nothing half-sent", async () => {
    using b = rawBackend(head + '{"partial":', "close");
    await using p = startProxy(CONFIG(b.url));
    const res = await fetch(p.url + "/v1/chat/completions", { method: "POST", body: "{}" });
    expect(res.status).toBe(502);
    expect((await readJson(res)).error.code).toBe("backend_unreachable");
  });
});


