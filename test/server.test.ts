import { describe, expect, test } from "bun:test";
import { readJson, startBackend } from "./support/backend.ts";
import { startProxy } from "./support/memproxy.ts";
import { VERSION } from "../src/version.ts";

const config = (backend: string) => `litellm_backend_url: ${backend}\n`;

describe("GET /health", () => {
  test("healthy when the backend's cheap liveness check answers; LiteLLM's /health is never called", async () => {
    await using b = startBackend((req) =>
      new URL(req.url).pathname === "/health/liveliness" ? new Response('"I\'m alive!"') : new Response("expensive", { status: 500 }),
    );
    await using p = startProxy(config(b.url));
    const res = await fetch(p.url + "/health");
    expect(res.status).toBe(200);
    const body = await readJson(res);
    expect(body).toMatchObject({ status: "healthy", memory_proxy: "up", litellm_backend: "up", backend_url: b.url, version: VERSION });
    expect(Date.parse(body.timestamp)).not.toBeNaN();
    expect(b.received.map((r) => r.path)).toEqual(["/health/liveliness"]);
  });

  test("degraded when the backend is down", async () => {
    const dead = startBackend();
    await dead.stop();
    await using p = startProxy(config(dead.url));
    const body = await await readJson(await fetch(p.url + "/health"));
    expect(body).toMatchObject({ status: "degraded", litellm_backend: "down" });
  });

  test("degraded when the backend's liveness check fails", async () => {
    await using b = startBackend(() => new Response("no", { status: 503 }));
    await using p = startProxy(config(b.url));
    expect((await await readJson(await fetch(p.url + "/health"))).status).toBe("degraded");
  });
});

describe("liveness and readiness", () => {
  test("liveness answers without asking the backend; readiness follows the backend", async () => {
    await using b = startBackend(() => new Response("no", { status: 503 }));
    await using p = startProxy(config(b.url));
    expect((await fetch(p.url + "/health/liveliness")).status).toBe(200);
    expect((await fetch(p.url + "/health/liveness")).status).toBe(200);
    expect(b.received).toHaveLength(0);
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
