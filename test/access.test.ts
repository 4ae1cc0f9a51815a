import { describe, expect, test } from "bun:test";
import { browserGuard, compileAccess, isLoopback, hostName, isLoopbackName } from "../src/access.ts";
import { readJson, startBackend } from "./support/backend.ts";
import { startProxy } from "./support/memproxy.ts";
import { headerMap } from "../src/http.ts";

const KEY = "mp-key-0123456789abcdef";

describe("compileAccess", () => {
  test("off without keys", () => {
    expect(compileAccess([])).toBeNull();
  });
  test("accepts a configured key as Bearer or x-api-key, nothing else", () => {
    const check = compileAccess(["other-key-000000000000", KEY])!;
    expect(check(headerMap(new Headers({ authorization: `Bearer ${KEY}` })))).toBe(true);
    expect(check(headerMap(new Headers({ authorization: `bearer   ${KEY}` })))).toBe(true);
    expect(check(headerMap(new Headers({ "x-api-key": KEY })))).toBe(true);
    expect(check(headerMap(new Headers({ authorization: `Bearer ${KEY}x` })))).toBe(false);
    expect(check(headerMap(new Headers({ authorization: KEY })))).toBe(false);
    expect(check(headerMap(new Headers({ "x-api-key": KEY.slice(0, -1) })))).toBe(false);
    expect(check(headerMap(new Headers({})))).toBe(false);
  });
  test("isLoopback", () => {
    expect(["127.0.0.1", "127.1.2.3", "::1", "localhost"].every(isLoopback)).toBe(true);
    expect(["0.0.0.0", "::", "192.168.1.2"].some(isLoopback)).toBe(false);
    // The same rule as a Host header's name (isLoopbackName), plus the bare ::1 a listen address may be.
    for (const name of ["[::1]", "app.localhost", "127.0.0.1.example.com", "127.0.0.1234"]) expect(isLoopback(name)).toBe(isLoopbackName(name));
  });
});

describe("access keys on the server", () => {
  test("without a valid key: 401 in the OpenAI shape, nothing forwarded; own endpoints too, except liveness and readiness", async () => {
    await using b = startBackend();
    await using p = startProxy(`litellm_backend_url: ${b.url}\nmemproxy:\n  access:\n    keys: [os.environ/MP_TEST_KEY]\n`, { MP_TEST_KEY: KEY });
    for (const [path, init] of [
      ["/v1/chat/completions", { method: "POST", body: "{}" }],
      ["/health", {}],
      ["/memory-routing/info", {}],
      ["/metrics", {}],
    ] as const) {
      const res = await fetch(p.url + path, { ...init, headers: { authorization: "Bearer wrong-key-000000000" } });
      expect(res.status).toBe(401);
      expect(res.headers.get("www-authenticate")).toContain("Bearer");
      const body = await readJson(res);
      expect(body.error).toMatchObject({ code: "unauthorized", type: "invalid_request_error" });
      expect(JSON.stringify(body)).not.toContain("wrong-key");
    }
    expect(b.received).toHaveLength(0);
    expect((await fetch(p.url + "/health/liveliness")).status).toBe(200);
    // Probes hold no key: readiness answers, and tells nothing but whether memproxy can serve.
    const ready = await fetch(p.url + "/health/readiness");
    expect(ready.status).toBe(200);
    expect(await readJson(ready)).toEqual({ status: "ready", litellm_backend: "up" });
    const ok = await fetch(p.url + "/v1/chat/completions", { method: "POST", body: "{}", headers: { "x-api-key": KEY } });
    expect(ok.status).toBe(200);
    expect(b.received).toHaveLength(1);
    expect(b.received[0]!.headers.get("x-api-key")).toBe(KEY);
  });
});

describe("who may choose which memory", () => {
  test("custom header disabled: the pattern rules decide", async () => {
    await using b = startBackend();
    await using p = startProxy(`litellm_backend_url: ${b.url}\nmemproxy:\n  access:\n    custom_header: false\n`);
    await fetch(p.url + "/v1/chat/completions", { method: "POST", body: "{}", headers: { "x-memory-user-id": "someone" } });
    expect(b.received[0]!.headers.get("x-sm-user-id")).toBe("default-dev");
  });

  test("allow-list: each entry matches a whole id; a value outside it is refused with 403 and not forwarded", async () => {
    await using b = startBackend();
    await using p = startProxy(`litellm_backend_url: ${b.url}\nmemproxy:\n  access:\n    allowed_user_ids: ["proj-.*", "alice"]\n`);
    for (const id of ["proj-a", "alice"]) {
      const ok = await fetch(p.url + "/v1/x", { method: "POST", body: "{}", headers: { "x-memory-user-id": id } });
      expect(ok.status).toBe(200);
    }
    // "alice" admits alice only: not a longer id that starts with it (re.match would have let these in).
    for (const id of ["alice2", "alice-evil", "alice:bob", "xproj-a"]) {
      const refused = await fetch(p.url + "/v1/x", { method: "POST", body: "{}", headers: { "x-memory-user-id": id } });
      expect(refused.status).toBe(403);
      expect((await readJson(refused)).error).toMatchObject({ code: "forbidden_user_id", type: "invalid_request_error" });
    }
    // Not even a well-formed id: refused before the allow-list (400).
    const traversal = await fetch(p.url + "/v1/x", { method: "POST", body: "{}", headers: { "x-memory-user-id": "alice/../bob" } });
    expect(traversal.status).toBe(400);
    expect(b.received.map((r) => r.headers.get("x-sm-user-id"))).toEqual(["proj-a", "alice"]);
  });

  test("allow-list with on_disallowed: ignore falls back to the pattern rules", async () => {
    await using b = startBackend();
    await using p = startProxy(
      `litellm_backend_url: ${b.url}\nuser_id_mappings:\n  header_patterns: [{pattern: "vscode/", user_id: vscode}]\n` +
        `memproxy:\n  access:\n    allowed_user_ids: ["proj-.*"]\n    on_disallowed: ignore\n`,
    );
    const res = await fetch(p.url + "/v1/x", { method: "POST", body: "{}", headers: { "x-memory-user-id": "other", "user-agent": "vscode/1" } });
    expect(res.status).toBe(200);
    expect(b.received[0]!.headers.get("x-sm-user-id")).toBe("vscode");
  });

  test("malformed values are refused even with on_disallowed: ignore", async () => {
    await using b = startBackend();
    await using p = startProxy(`litellm_backend_url: ${b.url}\nmemproxy:\n  access:\n    allowed_user_ids: ["proj-.*"]\n    on_disallowed: ignore\n`);
    const res = await fetch(p.url + "/v1/x", { method: "POST", body: "{}", headers: { "x-memory-user-id": "proj a" } });
    expect(res.status).toBe(400);
  });
});
describe("browserGuard (a loopback memproxy without keys)", () => {
  const guard = browserGuard(["host.docker.internal"]);
  const why = (headers: Record<string, string>) => guard(headerMap(new Headers(headers)));

  test("loopback Hosts pass, with any port, in any case, with the root's dot; so do none and an empty one", () => {
    for (const host of ["127.0.0.1:8764", "127.0.0.1", "127.9.8.7:1", "localhost:8764", "LOCALHOST", "localhost.", "app.localhost:3000", "[::1]:8764", "[::1]", "host.docker.internal:8764", ""]) {
      expect([host, why({ host })]).toEqual([host, null]);
    }
    expect(why({})).toBeNull();
  });

  test("any other Host is a web page's (DNS rebinding): names, other addresses, lists, malformed values", () => {
    for (const host of ["evil.example", "evil.example:8764", "127.0.0.1.nip.io:8764", "localhost.evil.example", "localhostx", "10.0.0.1:8764", "0.0.0.0:8764", "[::2]:8764", "[::ffff:127.0.0.1]", "127.0.0.1:8764, evil.example", "127.0.0.1:", "a b", "user@127.0.0.1"]) {
      expect([host, why({ host })]).toEqual([host, "host"]);
    }
  });

  test("an Origin must be a loopback http(s) origin; null, files and other schemes are web pages'", () => {
    const host = "127.0.0.1:8764";
    for (const origin of ["http://127.0.0.1:8764", "http://localhost:3000", "https://app.localhost", "http://[::1]:5173"]) expect([origin, why({ host, origin })]).toEqual([origin, null]);
    for (const origin of ["https://evil.example", "", "null", "file://", "http://127.0.0.1.nip.io:8764", "vscode-webview://abc", "chrome-extension://abc"]) {
      expect([origin, why({ host, origin })]).toEqual([origin, "origin"]);
    }
  });

  test("a browser's request another site made is refused without an Origin too (a no-cors GET), unless it is a navigation", () => {
    const host = "127.0.0.1:8764";
    expect(why({ host, "sec-fetch-site": "cross-site", "sec-fetch-mode": "no-cors" })).toBe("site");
    expect(why({ host, "sec-fetch-site": "cross-site", "sec-fetch-mode": "cors" })).toBe("site");
    expect(why({ host, "sec-fetch-site": "cross-site" })).toBe("site");
    // A link followed to the status page; the address typed.
    expect(why({ host, "sec-fetch-site": "cross-site", "sec-fetch-mode": "navigate" })).toBeNull();
    expect(why({ host, "sec-fetch-site": "none", "sec-fetch-mode": "navigate" })).toBeNull();
    // A page of this machine: the browser calls localhost:3000 -> 127.0.0.1 cross-site (it compares host
    // names), and sends its Origin, which decides.
    expect(why({ host, "sec-fetch-site": "cross-site", "sec-fetch-mode": "cors", origin: "http://localhost:3000" })).toBeNull();
    expect(why({ host, "sec-fetch-site": "same-site", "sec-fetch-mode": "cors", origin: "http://127.0.0.1:3000" })).toBeNull();
    expect(why({ host, "sec-fetch-site": "cross-site", "sec-fetch-mode": "cors", origin: "https://evil.example" })).toBe("origin");
  });

  test("a value found good before does not let another through: each request's own values decide", () => {
    const g = browserGuard([]);
    const ask = (headers: Record<string, string>) => g(headerMap(new Headers(headers)));
    for (let round = 0; round < 2; round++) {
      expect(ask({ host: "localhost:1", origin: "http://localhost:1" })).toBeNull();
      expect(ask({ host: "evil.example" })).toBe("host");
      expect(ask({ host: "localhost:1", origin: "" })).toBe("origin");
      expect(ask({ host: "localhost:1", origin: "http://evil.example" })).toBe("origin");
      expect(ask({ host: "localhost:1", origin: "http://localhost:1" })).toBeNull();
    }
  });

  test("hostName and isLoopbackName", () => {
    expect(hostName("LocalHost.:8764")).toBe("localhost");
    expect(hostName("[::1]:8764")).toBe("[::1]");
    expect(hostName("a/b")).toBeNull();
    expect(isLoopbackName("127.255.0.1")).toBe(true);
    expect(isLoopbackName("128.0.0.1")).toBe(false);
  });
});
