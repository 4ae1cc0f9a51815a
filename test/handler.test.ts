// The handler as a plain function: no memproxy socket, a real recording backend behind it.
import { describe, expect, test } from "bun:test";
import { parseConfig } from "../src/config.ts";
import { handle, isOwnPath, type RequestContext, type State } from "../src/handler.ts";
import { headerMap } from "../src/http.ts";
import { createLogger } from "../src/log.ts";
import { Observation } from "../src/observe.ts";
import { buildState } from "../src/server.ts";
import { StatusBoard } from "../src/status.ts";
import type { SupervisorStatus } from "../src/supervisor.ts";
import { createUi } from "../src/ui.ts";
import { echo, manualStream, readJson, startBackend } from "./support/backend.ts";

const KEY = "a-strong-access-key-0123456789";

/** A handler's state and a way to serve one request with it, with the access lines collected. */
function served(yaml: string, litellm?: () => SupervisorStatus) {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger({ level: "debug", format: "json", write: (l) => void lines.push(JSON.parse(l)) });
  const config = parseConfig(yaml, "handler.yaml", {});
  const board = new StatusBoard();
  const observation = new Observation(logger, config, undefined, board);
  let state: State;
  const ui = createUi(board, (h) => state.router(h));
  state = buildState(config, { observation, litellm, lastReload: () => null, ui }, logger, {});
  const lifts: string[] = [];
  let n = 0;
  const serve = async (path: string, init: RequestInit = {}) => {
    const req = new Request(`http://memproxy.test${path}`, init);
    const id = `req-${++n}`;
    const pathOnly = path.split("?")[0]!;
    const headers = headerMap(req.headers);
    const tap = observation.begin(req, id, pathOnly, headers, isOwnPath(pathOnly, req.method, state));
    const ctx: RequestContext = {
      id,
      url: req.url,
      path: pathOnly,
      headers,
      tap,
      inFlight: 1,
      liftIdleTimeout: () => {
        lifts.push(`lift ${id}`);
        return () => void lifts.push(`restore ${id}`);
      },
    };
    const res = await handle(req, state, ctx);
    tap.answered(res);
    return res;
  };
  const line = (id: string) => lines.find((l) => l.msg === "request" && l.request_id === id);
  return { serve, lines, line, lifts, board, [Symbol.asyncDispose]: async () => state.pool.close() };
}

describe("memproxy's own endpoints, from the path table", () => {
  test("GET and HEAD answered, with the request id; other methods get 405 naming the allowed ones, never forwarded", async () => {
    await using b = startBackend();
    await using h = served(`litellm_backend_url: ${b.url}\n`);
    const live = await h.serve("/health/liveliness");
    expect(live.status).toBe(200);
    expect(await readJson(live)).toEqual({ status: "alive" });
    expect(live.headers.get("x-request-id")).toBe("req-1");
    expect((await h.serve("/health/liveliness", { method: "HEAD" })).status).toBe(200);
    const post = await h.serve("/health/liveliness", { method: "POST", body: "{}" });
    expect(post.status).toBe(405);
    expect(post.headers.get("allow")).toBe("GET, HEAD");
    expect((await readJson(post)).error).toMatchObject({ code: "method_not_allowed", type: "invalid_request_error" });
    expect((await h.serve("/memory-routing/info", { method: "DELETE" })).status).toBe(405);
    expect(b.received).toHaveLength(0);
  });

  test("with access keys: liveness, readiness and the page's files are open, everything else needs a key", async () => {
    await using b = startBackend();
    await using h = served(`litellm_backend_url: ${b.url}\nmemproxy:\n  access:\n    keys: ["${KEY}"]\n`);
    expect((await h.serve("/health/liveliness")).status).toBe(200);
    expect((await h.serve("/health/readiness")).status).toBe(200);
    expect((await h.serve("/ui")).status).toBe(200);
    expect((await h.serve("/ui/app.js")).status).toBe(200);
    for (const path of ["/health", "/metrics", "/memory-routing/info", "/ui/api/state", "/v1/models"]) {
      const res = await h.serve(path);
      expect(res.status).toBe(401);
      expect(res.headers.get("www-authenticate")).toBe('Bearer realm="memproxy"');
    }
    expect((await h.serve("/ui/api/state", { headers: { authorization: `Bearer ${KEY}` } })).status).toBe(200);
    expect((await h.serve("/v1/models", { headers: { "x-api-key": KEY } })).status).toBe(200);
    expect(b.received.map((r) => r.path)).toEqual(["/v1/models"]);
  });

  test("GET / is the page; any other method on / is proxied (a client's HEAD / probe reaches the backend)", async () => {
    await using b = startBackend();
    await using h = served(`litellm_backend_url: ${b.url}\n`);
    const page = await h.serve("/");
    expect(page.headers.get("content-type")).toContain("text/html");
    expect(page.headers.get("content-security-policy")).toContain("script-src 'self'");
    expect((await h.serve("/", { method: "HEAD", headers: { "user-agent": "Bun/1.4.6" } })).status).toBe(200);
    expect(b.received.map((r) => `${r.method} ${r.path}`)).toEqual(["HEAD /"]);
  });

  test("the page's event stream lifts the connection's idle timeout", async () => {
    await using b = startBackend();
    await using h = served(`litellm_backend_url: ${b.url}\n`);
    const res = await h.serve("/ui/api/events");
    expect(res.headers.get("content-type")).toContain("text/event-stream");
    expect(h.lifts).toEqual(["lift req-1"]);
    await res.body!.cancel();
  });
});

describe("proxied requests", () => {
  test("routed, forwarded with the id injected and the client's own x-sm-user-id removed, and recorded", async () => {
    await using b = startBackend();
    await using h = served(`litellm_backend_url: ${b.url}\n`);
    const body = JSON.stringify({ model: "claude-sonnet-4-5", messages: [] });
    const res = await h.serve("/v1/chat/completions?x=1", {
      method: "POST",
      headers: {
        "user-agent": "claude-cli/2.1.197 (external, cli)",
        "content-type": "application/json",
        "content-length": String(body.length),
        "x-sm-user-id": "someone-else",
      },
      body,
    });
    expect(res.status).toBe(200);
    await res.arrayBuffer();
    expect(b.received[0]!.path).toBe("/v1/chat/completions?x=1");
    expect(b.received[0]!.headers.get("x-sm-user-id")).toBe("claude-cli");
    expect(b.received[0]!.headers.get("x-request-id")).toBe("req-1");
    expect(h.line("req-1")).toMatchObject({ user_id: "claude-cli", decided_by: "builtin", tool: "Claude Code", model: "claude-sonnet-4-5", status: 200 });
    expect(h.board.snapshot().recent.map((r) => r.user_id)).toEqual(["claude-cli"]);
  });

  test("a refusal is logged with its code, the bytes sent, and the id the request would have had", async () => {
    await using b = startBackend();
    let child: SupervisorStatus = { state: "starting", pid: 1, restarts: 0, last_exit_code: null, error: null };
    await using h = served(`litellm_backend_url: ${b.url}\n`, () => child);
    const starting = await h.serve("/v1/messages", { method: "POST", headers: { "user-agent": "claude-cli/2.1.197 (external, cli)" }, body: "{}" });
    expect(starting.status).toBe(503);
    expect(starting.headers.get("retry-after")).toBe("5");
    const body = await starting.text();
    expect(h.line("req-1")).toMatchObject({ status: 503, user_id: "claude-cli", error_code: "backend_starting", bytes_out: Buffer.byteLength(body) });
    child = { ...child, state: "ready" };
    const bad = await h.serve("/v1/messages", { method: "POST", headers: { "x-memory-user-id": "has space", "user-agent": "QwenCode/0.24.4 (linux; x64)" }, body: "{}" });
    expect(bad.status).toBe(400);
    const badBody = await bad.text();
    // The id it would have had without its malformed header.
    expect(h.line("req-2")).toMatchObject({ status: 400, user_id: "qwen-code", decided_by: "builtin", error_code: "invalid_user_id", bytes_out: Buffer.byteLength(badBody) });
    expect(String(h.line("req-2")!.error)).toContain("A-Z a-z 0-9 _ : -");
    expect(b.received).toHaveLength(0);
  });

  test("Content-Length copies that disagree are a 400; identical copies are forwarded as one value", async () => {
    await using b = startBackend();
    await using h = served(`litellm_backend_url: ${b.url}\n`);
    const headers = new Headers({ "content-type": "text/plain" });
    headers.append("content-length", "2");
    headers.append("content-length", "3");
    const req = new Request("http://memproxy.test/v1/x", { method: "POST", headers, body: "ab" });
    expect(req.headers.get("content-length")).toBe("2, 3");
    const refused = await h.serve("/v1/x", { method: "POST", headers, body: "ab" });
    expect(refused.status).toBe(400);
    expect((await readJson(refused)).error.code).toBe("invalid_request");
    expect(b.received).toHaveLength(0);
    const same = new Headers({ "content-type": "text/plain" });
    same.append("content-length", "2");
    same.append("content-length", "2");
    const ok = await h.serve("/v1/x", { method: "POST", headers: same, body: "ab" });
    expect(ok.status).toBe(200);
    expect(b.received[0]!.headers.get("content-length")).toBe("2");
    expect(new TextDecoder().decode(b.received[0]!.body)).toBe("ab");
  });

  test("a long backend call lifts the idle timeout and restores it when its answer has ended; a quick one leaves it", async () => {
    const stream = manualStream();
    await using b = startBackend((req, r) => (r.path === "/slow" ? new Response(stream.body, { headers: { "content-type": "text/event-stream" } }) : echo(req, r)));
    await using h = served(`litellm_backend_url: ${b.url}\n`);
    await (await h.serve("/quick")).arrayBuffer();
    expect(h.lifts).toEqual([]);
    const pending = h.serve("/slow");
    stream.send("data: 1\n\n");
    const res = await pending;
    expect(h.lifts).toEqual(["lift req-2"]);
    stream.close();
    expect(await res.text()).toBe("data: 1\n\n");
    expect(h.lifts).toEqual(["lift req-2", "restore req-2"]);
  });
});
