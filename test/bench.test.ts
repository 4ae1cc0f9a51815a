// Correctness of the benchmark's helpers (scripts/bench/): percentiles, the raw HTTP/SSE reader,
// the batching check, the nginx config routing exactly as memproxy, the bun floor proxying as it
// should, and the summary's same-round comparisons. Nothing here is timed.
import { describe, expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseConfig } from "../src/config.ts";
import { compileRouter } from "../src/router.ts";
import { nginxConfig, routingMaps, ROUTING_PROBES } from "../scripts/bench/nginx.ts";
import { lines } from "../scripts/bench/procs.ts";
import { summarize, table, type BenchResults, type WrkMetrics } from "../scripts/bench/report.ts";
import { batchedInRead, HttpResponseParser, SseSplitter } from "../scripts/bench/sse.ts";
import { median, percentile, sortedSamples } from "../scripts/bench/stats.ts";
import { findTool } from "../scripts/bench/tools.ts";
import { manualStream, startBackend, textReader } from "./support/backend.ts";

const BENCH_CONFIG = join(import.meta.dir, "..", "scripts", "bench", "memproxy.yaml");
const benchConfig = async (backend = "http://127.0.0.1:1") =>
  parseConfig(await Bun.file(BENCH_CONFIG).text(), BENCH_CONFIG, { BENCH_BACKEND_URL: backend, MEMPROXY_PORT: "0" });

describe("stats", () => {
  test("percentile uses the nearest rank", () => {
    const s = sortedSamples(Array.from({ length: 100 }, (_, i) => 100 - i)); // 1..100, given in reverse
    expect(percentile(s, 50)).toBe(50);
    expect(percentile(s, 99)).toBe(99);
    expect(percentile(s, 100)).toBe(100);
    expect(percentile(s, 0)).toBe(1);
    expect(percentile(sortedSamples([7]), 99)).toBe(7);
    expect(percentile(sortedSamples([]), 50)).toBeNaN();
  });

  test("sortedSamples sorts numerically, not as strings", () => {
    expect([...sortedSamples([10, 9, 100, 1.5])]).toEqual([1.5, 9, 10, 100]);
  });

  test("median of rounds, leaving out rounds that measured nothing", () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([NaN, 5])).toBe(5);
    expect(median([])).toBeNaN();
  });
});

describe("HttpResponseParser", () => {
  const chunked =
    "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n" +
    "d\r\ndata: first\n\n\r\n" +
    "e\r\ndata: second\n\n\r\n" +
    "0\r\n\r\n";

  test("decodes a chunked body fed in one piece", () => {
    const p = new HttpResponseParser();
    expect(p.feed(chunked)).toBe("data: first\n\ndata: second\n\n");
    expect(p.status).toBe(200);
    expect(p.headers.get("content-type")).toBe("text/event-stream");
    expect(p.done).toBe(true);
  });

  test("decodes the same body split at every possible byte", () => {
    for (let cut = 1; cut < chunked.length; cut++) {
      const p = new HttpResponseParser();
      const body = p.feed(chunked.slice(0, cut)) + p.feed(chunked.slice(cut));
      expect(body).toBe("data: first\n\ndata: second\n\n");
      expect(p.done).toBe(true);
    }
  });

  test("stops at Content-Length", () => {
    const p = new HttpResponseParser();
    expect(p.feed("HTTP/1.1 400 Bad Request\r\nContent-Length: 5\r\n\r\nhel")).toBe("hel");
    expect(p.done).toBe(false);
    expect(p.feed("loEXTRA")).toBe("lo");
    expect(p.status).toBe(400);
    expect(p.done).toBe(true);
  });

  test("refuses a broken chunk size", () => {
    const p = new HttpResponseParser();
    expect(() => p.feed("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")).toThrow(/bad chunk size/);
  });
});

describe("SseSplitter", () => {
  test("returns only complete events, whatever the pieces", () => {
    const s = new SseSplitter();
    expect(s.push("data: {\"i\":0}\n\ndata: {\"i\"")).toEqual(['{"i":0}']);
    expect(s.push(":1}\n")).toEqual([]);
    expect(s.push("\n: comment\n\nevent: x\ndata: a\ndata: b\n\ndata: [DONE]\n\n")).toEqual(['{"i":1}', "a\nb", "[DONE]"]);
  });
});

describe("batchedInRead", () => {
  test("an event that arrived with one sent an interval later was held back", () => {
    expect(batchedInRead([100, 110], 10)).toBe(1);
    expect(batchedInRead([100, 110, 120], 10)).toBe(2);
  });

  test("events the backend sent back to back are not batching", () => {
    expect(batchedInRead([100, 100.2, 100.4], 10)).toBe(0);
    expect(batchedInRead([100, 104.9], 10)).toBe(0);
    expect(batchedInRead([100, 105], 10)).toBe(1);
  });

  test("one event or none in a read is never batched", () => {
    expect(batchedInRead([], 10)).toBe(0);
    expect(batchedInRead([100], 10)).toBe(0);
  });
});

describe("bench config", () => {
  test("is memproxy's realistic setup: access lines at info, metrics on; --lean's values turn both off", async () => {
    const text = await Bun.file(BENCH_CONFIG).text();
    const at = (env: Record<string, string>) => {
      const c = parseConfig(text, BENCH_CONFIG, { BENCH_BACKEND_URL: "http://127.0.0.1:1", MEMPROXY_PORT: "0", ...env });
      return { level: c.logging.level, metrics: c.metrics.enabled, rules: c.routing.header_patterns.length };
    };
    expect(at({})).toEqual({ level: "info", metrics: true, rules: 10 });
    expect(at({ BENCH_LOG_LEVEL: "info", BENCH_METRICS: "true" })).toEqual({ level: "info", metrics: true, rules: 10 });
    expect(at({ BENCH_LOG_LEVEL: "warn", BENCH_METRICS: "false" })).toEqual({ level: "warn", metrics: false, rules: 10 });
  });
});

describe("nginx config", () => {
  test("chains one map per run of rules on the same header, in the config's order", async () => {
    const { maps, userVar } = routingMaps((await benchConfig()).routing);
    expect(userVar).toBe("$mp_user");
    // rules 1-5 on user-agent, rule 6 on originator, rules 7-10 on user-agent again
    expect(maps).toContain("map $http_user_agent $mp_rule_0 {\n    default $mp_rule_1;");
    expect(maps).toContain("map $http_originator $mp_rule_1 {\n    default $mp_rule_2;");
    expect(maps).toContain('map $http_user_agent $mp_rule_2 {\n    default "default-dev";');
    expect(maps.indexOf('"~^(?:claude-cli\\\\/)"')).toBeLessThan(maps.indexOf('"~^(?:Claude Code\\\\/.*)"'));
    expect(maps).toContain('map $http_x_memory_user_id $mp_user {\n    default "!invalid";\n    "" $mp_rule_0;');
  });

  // Runs the real nginx (when installed) against a real backend: the bench's nginx must route
  // every probe exactly as memproxy's own router does, or the comparison is unfair.
  test.skipIf(!findTool("nginx"))("real nginx routes every probe as memproxy's router does", async () => {
    await using backend = startBackend((req) => Response.json({ user: req.headers.get("x-sm-user-id") }));
    const config = await benchConfig(backend.url);
    const prefix = mkdtempSync(join(tmpdir(), "bench-nginx-"));
    const probe = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const port = probe.port;
    probe.stop(true);
    const buildInfo = await Bun.spawn([findTool("nginx")!, "-V"], { stderr: "pipe" }).stderr.text();
    const conf = join(prefix, "nginx.conf");
    await Bun.write(conf, nginxConfig(config, { port, backendPort: backend.port, prefix, buildInfo }));
    const nginx = Bun.spawn([findTool("nginx")!, "-p", prefix, "-e", join(prefix, "error.log"), "-c", conf], { stdout: "ignore", stderr: "pipe" });
    try {
      const router = compileRouter(config.routing);
      const send = (headers: Record<string, string>) =>
        fetch(`http://127.0.0.1:${port}/v1/chat/completions`, { method: "POST", headers, body: "{}" });
      // nginx is ready when it answers; a refused connection means not yet.
      for (;;) {
        if (nginx.exitCode !== null) throw new Error(`nginx exited: ${await nginx.stderr.text()}`);
        const ok = await send({}).then((r) => r.arrayBuffer().then(() => true), () => false);
        if (ok) break;
      }
      for (const headers of ROUTING_PROBES) {
        const want = router(new Headers(headers));
        const res = await send(headers);
        const got = res.status === 200 ? ((await res.json()) as { user: string }).user : `status ${res.status}`;
        expect({ headers, got }).toEqual({ headers, got: want.ok ? want.decision.user_id : "status 400" });
      }
    } finally {
      nginx.kill("SIGTERM");
      await nginx.exited;
    }
  });
});

describe("bun floor", () => {
  // The floor must do the least memproxy does, or the comparison flatters memproxy's stack.
  test("forwards with the user id set and Host dropped, small answers whole, streams as they come", async () => {
    const stream = manualStream();
    await using backend = startBackend((req, r) =>
      r.path === "/v1/stream" ? new Response(stream.body, { headers: { "content-type": "text/event-stream" } }) : Response.json({ got: r.body.length }),
    );
    const floor = Bun.spawn([process.execPath, join(import.meta.dir, "..", "scripts", "bench", "floor.ts"), "0", backend.url], { stdout: "pipe", stderr: "inherit" });
    try {
      const reader = floor.stdout.getReader();
      const { value } = await reader.read();
      const { port } = JSON.parse(new TextDecoder().decode(value)) as { port: number };
      const res = await fetch(`http://127.0.0.1:${port}/v1/chat/completions?x=1`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-sm-user-id": "someone-else" },
        body: '{"model":"m"}',
      });
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ got: 13 });
      const got = backend.received[0]!;
      expect(got.path).toBe("/v1/chat/completions?x=1");
      expect(got.headers.get("x-sm-user-id")).toBe("default-dev");
      expect(got.headers.get("host")).toBe(`127.0.0.1:${backend.port}`);

      stream.send("data: one\n\n"); // Bun.serve sends a streamed answer's head with its first chunk
      const streamed = await fetch(`http://127.0.0.1:${port}/v1/stream`, { method: "POST", body: "{}" });
      const events = textReader(streamed);
      expect(await events.until("one")).toBe("data: one\n\n"); // before the second is even sent
      stream.send("data: two\n\n");
      stream.close();
      expect(await events.rest()).toBe("data: two\n\n");
    } finally {
      floor.kill();
      await floor.exited;
    }
  });
});

describe("summary", () => {
  const wrk = (rps: number, p99Ms: number): WrkMetrics => ({ rps, p50Ms: 1, p90Ms: 1, p99Ms, maxMs: 1, requests: rps, errors: 0, cpuUsPerReq: 1 });
  const results = (json: BenchResults["json"]): BenchResults =>
    ({ format: "memproxy-bench/1", started: "", finished: "", options: {}, machine: {}, versions: {}, notes: [], json, memory: {}, rows: [] }) as BenchResults;

  test("compares memproxy and the floor with nginx round by round, and judges memproxy only", () => {
    const rows = summarize(
      results({
        "32": [
          { nginx: wrk(1000, 2), floor: wrk(800, 2.5), memproxy: wrk(700, 3.5) },
          { nginx: wrk(2000, 2), floor: wrk(1500, 2.2), memproxy: wrk(1100, 3.5) },
          { nginx: wrk(1500, 2), floor: wrk(1050, 2.2), memproxy: wrk(900, 2.5) },
        ],
      }),
    );
    const rps = rows.find((r) => r.key === "json32.rps")!;
    // same-round ratios 0.70 / 0.55 / 0.60 for memproxy, 0.80 / 0.75 / 0.70 for the floor
    expect(rps.vsNginx).toBe("0.60×");
    expect(rps.floorVsNginx).toBe("0.75×");
    expect(rps.values.floor).toBe("1,050");
    expect(rps.pass).toBe(true);
    const p99 = rows.find((r) => r.key === "json32.p99")!;
    expect(p99.vsNginx).toBe("+1.50 ms");
    expect(p99.floorVsNginx).toBe("+0.20 ms");
    expect(p99.pass).toBe(false);
    expect(table(rows).split("\n")[0]).toContain("| bun floor |");
  });
});

describe("lines", () => {
  test("splits on newlines whatever the chunks, a character split between chunks included; keeps an unfinished last line", async () => {
    const enc = new TextEncoder();
    const bytes = enc.encode('{"a":1}\n{"b":"é"}\n\nlast');
    const at = bytes.indexOf(0xa9); // the second byte of "é"
    const chunks = [bytes.subarray(0, 3), bytes.subarray(3, at), bytes.subarray(at)];
    const got: string[] = [];
    const stream = new ReadableStream<Uint8Array>({
      start(c) {
        for (const chunk of chunks) c.enqueue(chunk);
        c.close();
      },
    });
    for await (const line of lines(stream)) got.push(line);
    expect(got).toEqual(['{"a":1}', '{"b":"é"}', "", "last"]);
  });
});
