// Correctness of the benchmark's helpers (scripts/bench/): percentiles, the raw HTTP/SSE reader,
// the batching check, and the nginx config routing exactly as memproxy. Nothing here is timed.
import { describe, expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseConfig } from "../src/config.ts";
import { compileRouter } from "../src/router.ts";
import { nginxConfig, routingMaps, ROUTING_PROBES } from "../scripts/bench/nginx.ts";
import { batchedInRead, HttpResponseParser, SseSplitter } from "../scripts/bench/sse.ts";
import { median, percentile, sortedSamples } from "../scripts/bench/stats.ts";
import { findTool } from "../scripts/bench/tools.ts";
import { startBackend } from "./support/backend.ts";

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
