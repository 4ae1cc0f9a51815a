import { afterAll, describe, expect, test } from "bun:test";
import { parseConfig } from "../src/config.ts";
import { compileRouter } from "../src/router.ts";
import { StatusBoard, type FinishedRequest } from "../src/status.ts";
import { createUi, PAGE_STREAMS_MAX, parseHeaderLines, UI_PATHS } from "../src/ui.ts";
import { readJson } from "./support/backend.ts";
import { headerMap, type HeaderMap } from "../src/http.ts";

const CONFIG = parseConfig(
  `
user_id_mappings:
  custom_header: x-memory-user-id
  header_patterns:
    - header: user-agent
      pattern: "claude-cli/"
      user_id: claude-cli
  default_user_id: default-dev
`,
  "ui-test.yaml",
);
const router = compileRouter(CONFIG.routing, CONFIG.access);
const board = new StatusBoard({}, { batchMs: 5, version: "9.9.9" });
const explained: HeaderMap[] = [];
const ui = createUi(board, (headers) => {
  explained.push(headers);
  return router(headers);
});

// A real server, mounted as the lead's handler mounts it: the page's paths first, anything else "forwarded".
const server = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  idleTimeout: 0,
  fetch(req) {
    const path = new URL(req.url).pathname;
    return ui.handle(req, path, headerMap(req.headers)) ?? new Response("forwarded", { status: 299 });
  },
});
const base = `http://127.0.0.1:${server.port}`;
afterAll(() => server.stop(true));

const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

function expectSafetyHeaders(res: Response) {
  expect(res.headers.get("content-security-policy")).toBe(CSP);
  expect(res.headers.get("x-content-type-options")).toBe("nosniff");
  expect(res.headers.get("referrer-policy")).toBe("no-referrer");
  expect(res.headers.get("cache-control")).toBe("no-store");
}

const finished = (over: Partial<FinishedRequest>): FinishedRequest => ({
  id: "req-1",
  at: Date.now(),
  method: "POST",
  path: "/v1/messages",
  status: 200,
  duration_ms: 10,
  ttfb_ms: 5,
  user_id: "claude-cli",
  decided_by: "pattern",
  rule: "user-agent: claude-cli/",
  tool: null,
  user_agent: "claude-cli/2.1.197 (external, cli)",
  model: "m",
  input_tokens: 1,
  output_tokens: 2,
  bytes_in: 3,
  bytes_out: 4,
  error_code: null,
  error: null,
  client_disconnected: false,
  memory: null,
  ...over,
});

describe("the page's files", () => {
  test.each([
    ["/", "text/html; charset=utf-8"],
    ["/ui", "text/html; charset=utf-8"],
    ["/ui/", "text/html; charset=utf-8"],
    ["/ui/app.js", "text/javascript; charset=utf-8"],
    ["/ui/app.css", "text/css; charset=utf-8"],
    ["/ui/icon.svg", "image/svg+xml"],
  ])("GET %s: %s, with the safety headers", async (path, type) => {
    const res = await fetch(base + path);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe(type);
    expectSafetyHeaders(res);
    expect((await res.text()).length).toBeGreaterThan(100);
    expect(ui.publicPaths.has(path)).toBe(true);
  });

  test("the shell holds no data and nothing inline: its only script and style come from files", async () => {
    const html = await (await fetch(base + "/ui")).text();
    expect(html.match(/<script\b[^>]*>/g)).toEqual(['<script src="/ui/app.js" defer>']);
    expect(html).not.toMatch(/<style\b|\sstyle=|\son[a-z]+=|javascript:/i);
    expect(html).toContain('href="/ui/app.css"');
    expect(html).not.toContain("9.9.9"); // the version comes with the data
  });

  test("the script sets text, never HTML, and evaluates nothing", async () => {
    const js = await (await fetch(base + "/ui/app.js")).text();
    expect(js).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function|setTimeout\(\s*["'`]/);
    expect(js).toContain("textContent");
  });

  test("HEAD answers the headers alone", async () => {
    const res = await fetch(base + "/ui/app.css", { method: "HEAD" });
    expect(res.status).toBe(200);
    expectSafetyHeaders(res);
    expect(await res.text()).toBe("");
  });

  test("/ other than GET is not the page's: a client's HEAD / probe or POST / is proxied as before", async () => {
    expect((await fetch(base + "/", { method: "HEAD" })).status).toBe(299);
    expect(await (await fetch(base + "/", { method: "POST", body: "{}" })).text()).toBe("forwarded");
    expect((await fetch(base + "/v1/models")).status).toBe(299);
  });

  test("other methods on the page's paths get 405 with Allow, in memproxy's error shape", async () => {
    const res = await fetch(base + "/ui/app.js", { method: "POST" });
    expect(res.status).toBe(405);
    expect(res.headers.get("allow")).toBe("GET, HEAD");
    expectSafetyHeaders(res);
    expect((await readJson(res)).error.code).toBe("method_not_allowed");
    expect((await fetch(base + UI_PATHS.explain)).headers.get("allow")).toBe("POST");
    expect((await fetch(base + UI_PATHS.events, { method: "POST" })).headers.get("allow")).toBe("GET");
  });

  test("the data paths are the ones that need a key", () => {
    expect([...ui.apiPaths].sort()).toEqual(["/ui/api/events", "/ui/api/explain", "/ui/api/state"]);
    for (const p of ui.apiPaths) expect(ui.publicPaths.has(p)).toBe(false);
  });
});

describe("GET /ui/api/state", () => {
  test("the board's snapshot as JSON", async () => {
    board.record(finished({ id: "state-1", user_id: "proj-a", user_agent: "<b>bold</b>/1.0" }));
    const res = await fetch(base + UI_PATHS.state);
    expect(res.headers.get("content-type")).toBe("application/json");
    expectSafetyHeaders(res);
    const body = await readJson(res);
    expect(body.version).toBe("9.9.9");
    expect(body.recent[0]).toMatchObject({ id: "state-1", user_id: "proj-a", user_agent: "<b>bold</b>/1.0" });
    expect(body.tools.find((t: any) => t.user_id === "proj-a").product).toBe("<b>bold</b>/1.0");
  });
});

describe("GET /ui/api/events", () => {
  test("Server-Sent Events: a snapshot, then requests as they finish; a client that leaves unsubscribes", async () => {
    const abort = new AbortController();
    const res = await fetch(base + UI_PATHS.events, { signal: abort.signal });
    expect(res.headers.get("content-type")).toBe("text/event-stream; charset=utf-8");
    expect(res.headers.get("x-accel-buffering")).toBe("no");
    expectSafetyHeaders(res);
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let text = "";
    const until = async (needle: string) => {
      while (!text.includes(needle)) text += decoder.decode((await reader.read()).value, { stream: true });
    };
    await until("\n\n");
    expect(text).toMatch(/^event: snapshot\ndata: \{.*\}\n\n$/);
    expect(board.subscribers).toBe(1);
    board.record(finished({ id: "live-1" }));
    await until("event: requests\n");
    await until("\n\n");
    const block = text.slice(text.indexOf("event: requests\n"));
    const data = JSON.parse(/^data: (.*)$/m.exec(block)![1]!);
    expect(data.map((r: FinishedRequest) => r.id)).toEqual(["live-1"]);
    abort.abort();
    await board.idle(); // the server cancelled the body when the connection closed
    expect(board.subscribers).toBe(0);
    expect(board.timersRunning).toBe(false);
  });

  test(`at most ${PAGE_STREAMS_MAX} pages at once: the next gets 503 with Retry-After, until they close`, async () => {
    const aborts: AbortController[] = [];
    const open = async () => {
      const abort = new AbortController();
      const res = await fetch(base + UI_PATHS.events, { signal: abort.signal });
      if (res.status === 200) {
        aborts.push(abort);
        await res.body!.getReader().read(); // its snapshot: it is subscribed
      }
      return res;
    };
    try {
      for (let i = 0; i < PAGE_STREAMS_MAX; i++) expect((await open()).status).toBe(200);
      const refused = await open();
      expect(refused.status).toBe(503);
      expect(refused.headers.get("retry-after")).toBe("5");
      expect((await readJson(refused)).error.code).toBe("overloaded");
      for (const a of aborts.splice(0)) a.abort();
      await board.idle();
      expect((await open()).status).toBe(200);
    } finally {
      for (const a of aborts) a.abort();
      await board.idle();
    }
  });
});

describe("POST /ui/api/explain", () => {
  const post = (body: string, type = "application/json") => fetch(base + UI_PATHS.explain, { method: "POST", headers: { "content-type": type }, body });

  test("answers with the router's decision for the pasted headers", async () => {
    const res = await post(JSON.stringify({ headers: "User-Agent: claude-cli/2.1.197 (external, cli)\n" }));
    expect(res.status).toBe(200);
    expectSafetyHeaders(res);
    const body = await readJson(res);
    expect(body.ok).toBe(true);
    expect(body.decision.user_id).toBe("claude-cli");
    expect(explained.at(-1)!["user-agent"]).toBe("claude-cli/2.1.197 (external, cli)");
  });

  test("a refusal is an answer too (the tester shows it)", async () => {
    const body = await readJson(await post(JSON.stringify({ headers: "x-memory-user-id: not valid!" })));
    expect(body.ok).toBe(false);
    expect(body.rejection.status).toBe(400);
    expect(body.rejection.message).toContain("x-memory-user-id");
  });

  test("a request line and CRLF are fine; the custom header wins", async () => {
    const res = await post(JSON.stringify({ headers: "POST /v1/messages HTTP/1.1\r\nUser-Agent: claude-cli/2\r\nx-memory-user-id: my-project\r\n\r\n" }));
    const body = await readJson(res);
    expect(body.decision.user_id).toBe("my-project");
  });

  test("a chunked body (no length announced) is refused once it passes 16 KiB, not read to its end first", async () => {
    const { promise: replied, resolve } = Promise.withResolvers<string>();
    let reply = "";
    await using socket = await Bun.connect({
      hostname: "127.0.0.1",
      port: server.port!,
      socket: {
        data(_s, d) {
          reply += new TextDecoder().decode(d);
          if (reply.includes("\r\n\r\n")) resolve(reply);
        },
      },
    });
    // 20 KiB in one chunk, and the body never ends: memproxy must answer without waiting for more.
    const chunk = "x".repeat(20 * 1024);
    socket.write(
      `POST ${UI_PATHS.explain} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n${chunk.length.toString(16)}\r\n${chunk}\r\n`,
    );
    expect(await replied).toStartWith("HTTP/1.1 413");
  });

  test("bad input gets a clear error in memproxy's error shape", async () => {
    const line = await post(JSON.stringify({ headers: "User-Agent: ok\nno colon here" }));
    expect(line.status).toBe(400);
    expect((await readJson(line)).error).toEqual({
      message: `line 2: expected 'Name: value', got "no colon here"`,
      type: "invalid_request_error",
      param: null,
      code: "invalid_headers",
    });
    const notJson = await post("headers=x", "application/x-www-form-urlencoded");
    expect(notJson.status).toBe(415);
    expectSafetyHeaders(notJson);
    expect((await post("{not json")).status).toBe(400);
    expect((await post(JSON.stringify({ headers: 42 }))).status).toBe(400);
    const big = await post(JSON.stringify({ headers: "x-a: " + "a".repeat(20_000) }));
    expect(big.status).toBe(413);
    expect((await readJson(big)).error.message).toContain("16 KiB");
  });
});

describe("parseHeaderLines", () => {
  test("names the line and what was wrong", () => {
    expect(parseHeaderLines("Bad Name: x")).toEqual({ ok: false, error: `line 1: not a valid header name or value: "Bad Name: x"` });
    expect(parseHeaderLines(": x")).toEqual({ ok: false, error: `line 1: expected 'Name: value', got ": x"` });
    const long = parseHeaderLines("y".repeat(200));
    expect(!long.ok && long.error.length).toBeLessThan(120);
  });

  test("repeated headers are combined, blank lines skipped, values trimmed", () => {
    const r = parseHeaderLines("\nX-A: 1\n\nx-a:  2 \n");
    expect(r.ok && r.headers).toEqual({ "x-a": "1, 2" });
  });
});
