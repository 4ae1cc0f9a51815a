import { describe, expect, test } from "bun:test";
import { compileAccess, isLoopback } from "../src/access.ts";
import { readJson, startBackend } from "./support/backend.ts";
import { startProxy } from "./support/memproxy.ts";

const KEY = "mp-key-0123456789abcdef";

describe("compileAccess", () => {
  test("off without keys", () => {
    expect(compileAccess([])).toBeNull();
  });
  test("accepts a configured key as Bearer or x-api-key, nothing else", () => {
    const check = compileAccess(["other-key-000000000000", KEY])!;
    expect(check(new Headers({ authorization: `Bearer ${KEY}` }))).toBe(true);
    expect(check(new Headers({ authorization: `bearer   ${KEY}` }))).toBe(true);
    expect(check(new Headers({ "x-api-key": KEY }))).toBe(true);
    expect(check(new Headers({ authorization: `Bearer ${KEY}x` }))).toBe(false);
    expect(check(new Headers({ authorization: KEY }))).toBe(false);
    expect(check(new Headers({ "x-api-key": KEY.slice(0, -1) }))).toBe(false);
    expect(check(new Headers({}))).toBe(false);
  });
  test("isLoopback", () => {
    expect(["127.0.0.1", "127.1.2.3", "::1", "localhost"].every(isLoopback)).toBe(true);
    expect(["0.0.0.0", "::", "192.168.1.2"].some(isLoopback)).toBe(false);
  });
});

describe("access keys on the server", () => {
  test("without a valid key: 401 in the OpenAI shape, nothing forwarded; own endpoints too, except liveness", async () => {
    await using b = startBackend();
    await using p = startProxy(`litellm_backend_url: ${b.url}\nmemproxy:\n  access:\n    keys: [os.environ/MP_TEST_KEY]\n`, { MP_TEST_KEY: KEY });
    for (const [path, init] of [
      ["/v1/chat/completions", { method: "POST", body: "{}" }],
      ["/health", {}],
      ["/memory-routing/info", {}],
      ["/health/readiness", {}],
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
