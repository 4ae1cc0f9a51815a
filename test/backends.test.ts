import { describe, expect, test } from "bun:test";
import { BackendPool } from "../src/backends.ts";
import { manualStream, readJson, startBackend, textReader } from "./support/backend.ts";
import { startProxy } from "./support/memproxy.ts";

const config = (urls: string[], extra = "") => `
litellm_backend_url:
${urls.map((u) => `  - ${u}`).join("\n")}
memproxy:
  backends:
    cooldown: 200ms
${extra}`;

/** A URL where nothing listens. */
async function deadUrl(): Promise<string> {
  const b = startBackend();
  await b.stop();
  return b.url;
}

describe("several backends", () => {
  test("requests go to the backend with the fewest in flight", async () => {
    let releaseSlow!: () => void;
    const slowGate = new Promise<void>((r) => (releaseSlow = r));
    await using a = startBackend(async () => {
      await slowGate;
      return new Response("a");
    });
    await using b = startBackend(() => new Response("b"));
    await using p = startProxy(config([a.url, b.url]));
    const first = fetch(p.url + "/v1/chat/completions", { method: "POST", body: "{}" });
    await a.waitFor(1);
    // a has one request in flight, b none: each next request (one at a time) goes to b.
    const answers: string[] = [];
    for (let i = 0; i < 3; i++) answers.push(await (await fetch(p.url + "/v1/models")).text());
    expect(answers).toEqual(["b", "b", "b"]);
    releaseSlow();
    expect(await (await first).text()).toBe("a");
  });

  test("an open stream counts as in flight until it ends", async () => {
    const stream = manualStream();
    await using a = startBackend(() => new Response(stream.body, { headers: { "content-type": "text/event-stream" } }));
    await using b = startBackend(() => new Response("b"));
    await using p = startProxy(config([a.url, b.url]));
    const pending = fetch(p.url + "/v1/chat/completions", { method: "POST", body: '{"stream":true}' });
    stream.send("data: 1\n\n");
    const res = await pending; // the head has arrived; the stream goes on
    expect(await (await fetch(p.url + "/v1/models")).text()).toBe("b");
    expect(await (await fetch(p.url + "/v1/models")).text()).toBe("b");
    stream.close();
    await res.text();
    expect(a.received).toHaveLength(1);
  });

  test("a refused connection is retried on another backend, with the same body; the dead one is marked down", async () => {
    const dead = await deadUrl();
    await using live = startBackend();
    await using p = startProxy(config([dead, live.url]));
    for (let i = 0; i < 3; i++) {
      const res = await fetch(p.url + "/v1/chat/completions", { method: "POST", body: JSON.stringify({ i }), headers: { "x-memory-user-id": "u1" } });
      expect(res.status).toBe(200);
    }
    expect(live.received.map((r) => new TextDecoder().decode(r.body))).toEqual(['{"i":0}', '{"i":1}', '{"i":2}']);
    expect(live.received.every((r) => r.headers.get("x-sm-user-id") === "u1")).toBe(true);
    const health = await readJson(await fetch(p.url + "/health"));
    expect(health.status).toBe("degraded");
    // Every attempt, the refused ones too, gave its in-flight count back.
    expect(health.backends).toEqual([
      expect.objectContaining({ url: dead, status: "down", in_flight: 0 }),
      expect.objectContaining({ url: live.url, status: "up", in_flight: 0 }),
    ]);
  });

  test("a call retried on another backend is settled once, when the answer that came back has ended", async () => {
    const stream = manualStream();
    stream.send("data: 1\n\n"); // a stream's head goes out with its first bytes
    await using live = startBackend(() => new Response(stream.body, { headers: { "content-type": "text/event-stream" } }));
    const pool = new BackendPool([await deadUrl(), live.url], { cooldownMs: 60_000, probeTimeoutMs: 1000, keepaliveLimit: 0, keepaliveWaitMs: 0 });
    const events: string[] = [];
    const call = {
      clientHeaders: {},
      body: new Uint8Array(2),
      retryable: true,
      userIdHeaders: ["x-sm-user-id"],
      userId: "u",
      firstByteTimeoutMs: 10_000,
      streamIdleTimeoutMs: 0,
      onLongCall: () => void events.push("long"),
      onSettled: () => void events.push("settled"),
    };
    try {
      const res = await pool.forward(new Request("http://memproxy/v1/x", { method: "POST", body: "{}" }), "/v1/x", call);
      // The refused attempt is over, but the call is not: whoever lifted a timeout for it keeps it lifted.
      expect(events).toEqual(["long"]);
      const reader = textReader(res);
      await reader.until("data: 1");
      expect(events).toEqual(["long"]);
      stream.close();
      await reader.rest();
      expect(events).toEqual(["long", "settled"]);
      expect(pool.status().map((b) => [b.status, b.in_flight])).toEqual([["down", 0], ["up", 0]]);

      // A call that no backend answers is settled once too.
      events.length = 0;
      const both = new BackendPool([await deadUrl(), await deadUrl()], { cooldownMs: 60_000, probeTimeoutMs: 1000, keepaliveLimit: 0, keepaliveWaitMs: 0 });
      try {
        const err = await both.forward(new Request("http://memproxy/v1/x", { method: "POST", body: "{}" }), "/v1/x", call).catch((e: { code: string }) => e.code);
        expect(err).toBe("backend_unreachable");
        expect(events).toEqual(["settled"]);
      } finally {
        both.close();
      }
    } finally {
      pool.close();
    }
  });

  test("a body too large to keep is not retried: the client gets the 502", async () => {
    const dead = await deadUrl();
    await using live = startBackend();
    await using p = startProxy(config([dead, live.url], "    retry_body_size: 10"));
    // Both are believed up with nothing in flight: the first in the list (the dead one) is tried first.
    const res = await fetch(p.url + "/v1/chat/completions", { method: "POST", body: "x".repeat(100) });
    expect(res.status).toBe(502);
    expect((await readJson(res)).error.code).toBe("backend_unreachable");
    expect(live.received).toHaveLength(0);
    // Now it is known down: the next request goes to the live one.
    expect((await fetch(p.url + "/v1/chat/completions", { method: "POST", body: "x".repeat(100) })).status).toBe(200);
  });

  test("a backend marked down gets traffic again only after a successful probe", async () => {
    let alive = true;
    let hang = true;
    const hung = Promise.withResolvers<void>();
    await using flaky = startBackend(async (req) => {
      if (new URL(req.url).pathname === "/health/liveliness") return new Response("", { status: alive ? 200 : 503 });
      if (hang) await hung.promise;
      return new Response("flaky");
    }, { handlerAnswersProbes: true });
    await using other = startBackend(() => new Response("other"));
    const { promise: cameBack, resolve } = Promise.withResolvers<void>();
    const pool = new BackendPool([flaky.url, other.url], {
      cooldownMs: 50,
      probeTimeoutMs: 1000,
      keepaliveLimit: 0,
      keepaliveWaitMs: 0,
      onChange: (_url, up) => up && resolve(),
    });
    const call = (timeout = 10_000) =>
      pool.forward(new Request("http://memproxy/v1/x", { method: "POST", body: "{}" }), "/v1/x", {
        clientHeaders: {},
        body: new Uint8Array(2),
        retryable: true,
        userIdHeaders: ["x-sm-user-id"],
        userId: "u",
        firstByteTimeoutMs: timeout,
        streamIdleTimeoutMs: 0,
      });
    try {
      // The first call goes to the first backend, which does not answer in time: it is marked down.
      alive = false;
      expect(await call(300).catch((e) => e.code)).toBe("backend_timeout");
      expect(pool.status().map((b) => b.status)).toEqual(["down", "up"]);
      expect(await (await call()).text()).toBe("other");
      // Its probes are refused by the liveness check: it stays down.
      await flaky.waitForProbes(1);
      expect(pool.status()[0]!.status).toBe("down");
      expect(await (await call()).text()).toBe("other");
      hang = false;
      hung.resolve();
      alive = true;
      await cameBack;
      expect(pool.status().map((b) => b.status)).toEqual(["up", "up"]);
      expect(await (await call()).text()).toBe("flaky");
      expect(pool.status().map((b) => b.in_flight)).toEqual([0, 0]);
    } finally {
      pool.close();
    }
  });

  test("a backend that fails the liveness check (at start, GET /health) is down in status() too, and up once it answers", async () => {
    let alive = false;
    await using b = startBackend(() => new Response(alive ? "ok" : "starting", { status: alive ? 200 : 503 }), { handlerAnswersProbes: true });
    const { promise: cameBack, resolve } = Promise.withResolvers<void>();
    const pool = new BackendPool([b.url], { cooldownMs: 50, probeTimeoutMs: 1000, keepaliveLimit: 0, keepaliveWaitMs: 0, onChange: (_url, up) => up && resolve() });
    try {
      const [checked] = await pool.checkAll(1000);
      expect(checked!.status).toBe("down");
      expect(pool.status()).toEqual([checked!]);
      alive = true;
      await cameBack;
      expect(pool.status()[0]!.status).toBe("up");
    } finally {
      pool.close();
    }
  });

  test("checks asked at the same time share one round of probes; a later one probes again", async () => {
    await using b = startBackend();
    const pool = new BackendPool([b.url], { cooldownMs: 60_000, probeTimeoutMs: 1000, keepaliveLimit: 0, keepaliveWaitMs: 0 });
    try {
      const rounds = await Promise.all(Array.from({ length: 20 }, () => pool.checkAll(1000)));
      expect(new Set(rounds).size).toBe(1);
      expect(rounds[0]![0]!.status).toBe("up");
      expect(b.probes).toHaveLength(1);
      await pool.checkAll(1000);
      expect(b.probes).toHaveLength(2);
    } finally {
      pool.close();
    }
  });

  test("with every backend down, a request still tries them (a lone backend that came back is used at once)", async () => {
    let first = true;
    const hung = Promise.withResolvers<void>();
    await using b = startBackend(async () => {
      if (first) {
        first = false;
        await hung.promise;
      }
      return new Response("ok");
    });
    await using p = startProxy(config([b.url], "  forward:\n    first_byte_timeout: 300ms\n"));
    expect((await fetch(p.url + "/v1/models")).status).toBe(504);
    hung.resolve();
    // It is marked down (cooldown 200 ms, no probe yet), and still the one to try.
    const res = await fetch(p.url + "/v1/models");
    expect(res.status).toBe(200);
    expect(await res.text()).toBe("ok");
  });
});
