// Correctness of the benchmark's helpers (scripts/bench/): percentiles, the raw HTTP/SSE reader,
// the batching check, the nginx config routing exactly as memproxy, the bun floor proxying as it
// should, the load generators' commands and outputs, the rate sweep, the RSS curve, the clients that
// hold streams and idle connections, the summary's targets and the comparison of runs against their
// noise. Nothing here is timed.
import { describe, expect, test } from "bun:test";
import { homedir } from "node:os";
import { freePort, lines, runToEnd, tempDir } from "../support/process.ts";
import { join } from "node:path";
import { parseConfig } from "../../src/config.ts";
import { compileRouter } from "../../src/router.ts";
import { nginxConfig, routingMaps, ROUTING_PROBES } from "../../scripts/bench/nginx.ts";
import { holdConnections, type IdleReport } from "../../scripts/bench/idle-client.ts";
import { crossing, nextSweepFactor, ohaCommand, parseOha, parseWrk, SMALL_REQUEST, wrkCommand, type SweepPoint } from "../../scripts/bench/loadgen.ts";
import { rssCurve, RssSampler } from "../../scripts/bench/memory.ts";
import { holdPage, PAGE_EVENTS_PATH, type PageReport } from "../../scripts/bench/page-client.ts";
import { fdLimitOf, withFdLimit } from "../../scripts/bench/procs.ts";
import { compare, difference, summarize, table, type BenchResults, type OpenLoopMetrics, type SseMetrics, type WrkMetrics } from "../../scripts/bench/report.ts";
import { runSse } from "../../scripts/bench/sse-client.ts";
import { batchedInRead, HttpResponseParser, SseSplitter } from "../../scripts/bench/sse.ts";
import { median, percentile, sortedSamples } from "../../scripts/bench/stats.ts";
import { findTool, OHA_VERSION, ohaPath, versions } from "../../scripts/bench/tools.ts";
import { manualStream, startBackend, textReader } from "../support/backend.ts";
import { headerMap } from "../../src/http.ts";

const BENCH_CONFIG = join(import.meta.dir, "..", "..", "scripts", "bench", "memproxy.yaml");
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
  test("chains one map per run of rules on the same header, in the config's order, the built-in rules after them", async () => {
    const config = await benchConfig();
    const { maps, userVar } = routingMaps(config.routing);
    expect(userVar).toBe("$mp_user");
    // rules 1-5 on user-agent, rule 6 on originator, rules 7-10 on user-agent again (and the built-in rules
    // that follow on it), then the built-in rules' own runs
    expect(maps).toContain("map $http_user_agent $mp_rule_0 {\n    default $mp_rule_1;");
    expect(maps).toContain("map $http_originator $mp_rule_1 {\n    default $mp_rule_2;");
    expect(maps).toContain("map $http_user_agent $mp_rule_2 {\n    default $mp_rule_3;");
    expect(maps.indexOf('"~^(?:claude-cli/)" "claude-cli"')).toBeLessThan(maps.indexOf('"~^(?:Claude Code/.*)" "claude-cli"'));
    expect(maps).toContain('"~^(?:(?:Async)?OpenAI/Python)" "openai-python";');
    expect(maps.indexOf('"anthropic-js"')).toBeLessThan(maps.indexOf('"~^(?:GeminiCLI[/-])"'));
    expect(maps).toMatch(/ \$mp_rule_\d+ \{\n    default \$mp_derived;/);
    expect(maps).toContain('map $http_user_agent $mp_derived {\n    default "default-dev";');
    expect(maps).toContain('map $http_x_memory_user_id $mp_user {\n    default "!invalid";\n    "" $mp_rule_0;');
  });

  test("without the built-in rules and the derived id, the config's rules fall back to the default id", async () => {
    const text = (await Bun.file(BENCH_CONFIG).text()).replace("  default_user_id: default-dev", "  default_user_id: default-dev\n  builtin_rules: false\n  derive_from_user_agent: false");
    const config = parseConfig(text, BENCH_CONFIG, { BENCH_BACKEND_URL: "http://127.0.0.1:1", MEMPROXY_PORT: "0" });
    const { maps } = routingMaps(config.routing);
    expect(maps).toContain('map $http_user_agent $mp_rule_2 {\n    default "default-dev";');
    expect(maps).not.toContain("$mp_derived");
    expect(maps).not.toContain("GeminiCLI");
  });

  // Runs the real nginx (when installed) against a real backend: the bench's nginx must route
  // every probe exactly as memproxy's own router does, or the comparison is unfair.
  test.skipIf(!findTool("nginx"))("real nginx routes every probe as memproxy's router does", async () => {
    await using backend = startBackend((req) => Response.json({ user: req.headers.get("x-sm-user-id") }));
    const config = await benchConfig(backend.url);
    using dir = tempDir("bench-nginx");
    const prefix = dir.path;
    const port = freePort();
    const buildInfo = (await runToEnd([findTool("nginx")!, "-V"])).stderr;
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
        const want = router(headerMap(new Headers(headers)));
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
    const floor = Bun.spawn([process.execPath, join(import.meta.dir, "..", "..", "scripts", "bench", "floor.ts"), "0", backend.url], { stdout: "pipe", stderr: "inherit" });
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

describe("load generators", () => {
  test("wrk's script gets the same request as oha: headers as lines, the body as it is", () => {
    const { cmd, env } = wrkCommand("/usr/bin/wrk", "http://127.0.0.1:9", 32, 8);
    expect(cmd.slice(0, 4)).toEqual(["/usr/bin/wrk", "-t2", "-c32", "-d8s"]);
    expect(cmd.at(-1)).toBe("http://127.0.0.1:9/v1/chat/completions");
    expect(env.BENCH_BODY).toBe(SMALL_REQUEST.body);
    expect(Buffer.byteLength(env.BENCH_BODY!)).toBe(198);
    expect(env.BENCH_HEADERS!.split("\n")).toContain("User-Agent: OpenAI/JS 6.49.0");
    const oha = ohaCommand("/x/oha", "http://127.0.0.1:9", 12_345.6, 8, 64);
    expect(oha).toContain("--latency-correction");
    expect(oha.slice(oha.indexOf("-q"), oha.indexOf("-q") + 2)).toEqual(["-q", "12346"]);
    expect(oha.slice(oha.indexOf("-z"), oha.indexOf("-z") + 2)).toEqual(["-z", "8s"]);
    expect(oha.slice(oha.indexOf("-c"), oha.indexOf("-c") + 2)).toEqual(["-c", "64"]);
    expect(oha.slice(oha.indexOf("-d"), oha.indexOf("-d") + 2)).toEqual(["-d", SMALL_REQUEST.body]);
    expect(oha.filter((_, i) => oha[i - 1] === "-H")).toEqual(env.BENCH_HEADERS!.split("\n"));
    expect(oha.at(-1)).toBe("http://127.0.0.1:9/v1/chat/completions");
  });

  // Runs the real wrk with the bench's script (when installed) against a recording backend: what
  // arrived is the request the bench means to send.
  test.skipIf(!findTool("wrk"))("real wrk sends the small request and reports through the script", async () => {
    await using backend = startBackend(() => Response.json({ ok: true }));
    const { cmd, env } = wrkCommand(findTool("wrk")!, backend.url, 1, 1);
    const { stdout: out, code } = await runToEnd(cmd, { env: { ...process.env, ...env } });
    expect(code).toBe(0);
    const m = parseWrk(out, 10);
    // wrk counts what was answered before it stopped; the backend may have got one more.
    expect(m.requests).toBeGreaterThan(0);
    expect(backend.received.length - m.requests).toBeGreaterThanOrEqual(0);
    expect(backend.received.length - m.requests).toBeLessThanOrEqual(1);
    expect(m.errors).toBe(0);
    const got = backend.received[0]!;
    expect(got.method).toBe("POST");
    expect(got.path).toBe("/v1/chat/completions");
    expect(new TextDecoder().decode(got.body)).toBe(SMALL_REQUEST.body);
    for (const [k, v] of Object.entries(SMALL_REQUEST.headers)) expect(got.headers.get(k)).toBe(v);
  });

  test("oha's JSON: latencies from seconds to ms, statuses other than 200 and failures counted as errors", () => {
    const out = JSON.stringify({
      summary: { successRate: 1, requestsPerSec: 9_990.5, slowest: 0.0123 },
      latencyPercentiles: { p50: 0.0004, p90: 0.0008, p99: 0.0015, "p99.9": 0.004, "p99.99": 0.01 },
      statusCodeDistribution: { "200": 99_000, "503": 5 },
      errorDistribution: { "connection closed": 2 },
    });
    const m = parseOha(out, 10_000, 2_000);
    expect(m).toMatchObject({ offered: 10_000, achieved: 9_990.5, p50Ms: 0.4, p99Ms: 1.5, p999Ms: 4, maxMs: 12.3, requests: 99_005, errors: 7 });
    expect(m.errorKinds).toEqual({ "status 503": 5, "connection closed": 2 });
    expect(m.cpuUsPerReq).toBeCloseTo((2_000 * 1000) / 99_005, 6);
  });
});

describe("tools", () => {
  test("the pinned oha lives in memproxy's tool cache, MEMPROXY_CACHE_DIR first", () => {
    const was = process.env.MEMPROXY_CACHE_DIR;
    try {
      process.env.MEMPROXY_CACHE_DIR = "/somewhere/cache";
      expect(ohaPath()).toBe(`/somewhere/cache/oha-${OHA_VERSION}/bin/oha`);
      delete process.env.MEMPROXY_CACHE_DIR;
      expect(ohaPath()).toBe(join(homedir(), ".cache", "memproxy", `oha-${OHA_VERSION}`, "bin", "oha"));
    } finally {
      if (was === undefined) delete process.env.MEMPROXY_CACHE_DIR;
      else process.env.MEMPROXY_CACHE_DIR = was;
    }
  });
});

describe("rate sweep", () => {
  const opts = { up: 0.1, down: 0.2, maxFactor: 2, maxSteps: 12 };
  const at = (pairs: [number, number][]): SweepPoint[] => pairs.map(([factor, p99Ms]) => ({ factor, rate: factor * 1000, p99Ms }));

  test("goes up from the open-loop rate while p99 stays under the limit, and stops at the first rate over it", () => {
    expect(nextSweepFactor([], 5, opts)).toBe(1);
    expect(nextSweepFactor(at([[1, 1]]), 5, opts)).toBe(1.1);
    expect(nextSweepFactor(at([[1, 1], [1.1, 2], [1.2, 4.9]]), 5, opts)).toBe(1.3);
    expect(nextSweepFactor(at([[1, 1], [1.1, 2], [1.2, 30]]), 5, opts)).toBeUndefined();
    expect(nextSweepFactor(at([[1, 1], [2, 2]]), 5, opts)).toBeUndefined(); // at most 2×
    expect(nextSweepFactor(at([[1, 1], [1.1, 1]]), 5, { ...opts, maxSteps: 2 })).toBeUndefined();
  });

  test("goes down when p99 is already over the limit at the open-loop rate; an unmeasured p99 counts as over", () => {
    expect(nextSweepFactor(at([[1, 9]]), 5, opts)).toBe(0.8);
    expect(nextSweepFactor(at([[1, NaN]]), 5, opts)).toBe(0.8);
    expect(nextSweepFactor(at([[1, 9], [0.8, 7], [0.6, 6], [0.4, 5.5]]), 5, opts)).toBe(0.2);
    expect(nextSweepFactor(at([[1, 9], [0.8, 7], [0.6, 6], [0.4, 5.5], [0.2, 5.1]]), 5, opts)).toBeUndefined();
    expect(nextSweepFactor(at([[1, 9], [0.8, 3]]), 5, opts)).toBeUndefined();
  });

  test("the crossing is interpolated between the last rate under the limit and the first over it", () => {
    const c = crossing(at([[1.2, 5.5], [1, 1], [1.1, 3]]), 5);
    expect(c.lastUnder?.factor).toBe(1.1);
    expect(c.firstOver?.factor).toBe(1.2);
    expect(c.estimate).toBeCloseTo(1100 + 100 * (2 / 2.5), 6);
    expect(crossing(at([[1, 1], [1.1, 2]]), 5)).toEqual({ lastUnder: at([[1.1, 2]])[0] });
    expect(crossing(at([[1, 9], [0.8, 7]]), 5)).toEqual({ firstOver: at([[0.8, 7]])[0] });
  });
});

describe("RSS curve", () => {
  test("idle, peak, end, the marks after the load, and when it came back under 1.5× idle for good", () => {
    // 40 MB idle; the load from t=1000 to t=5000 ms; 100 MB from t=3000 to its end; then falling from
    // 70 MB, over the bound (60 MB) until +2 s, a bump over it at +3 s, under for good from +3.1 s.
    const mbAt = (t: number) => (t < 1000 ? 40 : t <= 3000 ? 40 + (t - 1000) * 0.03 : t <= 5000 ? 100 : t === 8000 ? 65 : t < 9000 ? 70 - (t - 5000) / 200 : 45);
    const samples = Array.from({ length: 341 }, (_, i) => ({ t: i * 100, mb: mbAt(i * 100) })); // to 29 s after the load
    const c = rssCurve(samples, 40, 1000, 5000, 1.5, [1_000, 5_000, 30_000]);
    expect(c.peakMb).toBe(100);
    expect(c.peakAtMs).toBe(2000);
    expect(c.endMb).toBe(100);
    expect(c.after).toEqual({ "1s": 65, "5s": 45 }); // no sample 30 s after the load
    expect(c.boundMb).toBe(60);
    expect(c.backUnderMs).toBe(3100);
    expect(c.curve[0]).toEqual([0, 40]);
    expect(c.curve.every(([t], i) => i === 0 || t - c.curve[i - 1]![0] >= 250)).toBe(true);
  });

  test("not back under the bound by the last sample: no time", () => {
    const samples = [0, 100, 200, 300].map((t) => ({ t, mb: t < 100 ? 40 : 90 }));
    expect(rssCurve(samples, 40, 100, 200).backUnderMs).toBeUndefined();
  });

  test("the sampler reads a real process's RSS from /proc", () => {
    const sampler = new RssSampler(process.pid, 1000);
    const samples = sampler.stop();
    expect(samples.length).toBeGreaterThanOrEqual(2);
    expect(samples.every((s) => s.mb > 1)).toBe(true);
  });
});

describe("processes", () => {
  test("withFdLimit runs the command with the open-file limit asked for, under the command's own pid", async () => {
    const proc = Bun.spawn(withFdLimit(["/bin/sh", "-c", 'ulimit -n; echo "$$"'], 1000), { stdout: "pipe" });
    const [out, code] = await Promise.all([proc.stdout.text(), proc.exited]);
    expect(code).toBe(0);
    expect(out.trim().split("\n")).toEqual(["1000", String(proc.pid)]);
    expect(fdLimitOf(process.pid)).toBeGreaterThan(0);
  });
});

describe("idle connections", () => {
  // A real server that notes each request's client port: every connection answers twice, on the same socket.
  test("are opened, answered once, held, and answered again on the same connections", async () => {
    const ports: number[] = [];
    using server = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      idleTimeout: 0,
      async fetch(req, srv) {
        ports.push(srv.requestIP(req)!.port);
        expect(await req.text()).toBe(SMALL_REQUEST.body);
        return Response.json({ ok: true });
      },
    });
    const reports: IdleReport[] = [];
    const { promise: asked, resolve: again } = Promise.withResolvers<string>();
    const commands = (async function* () {
      yield await asked;
    })();
    const done = holdConnections(`http://127.0.0.1:${server.port}`, 300, (r) => {
      reports.push(r);
      if (r.phase === "held") again("again");
    }, commands);
    await done;
    expect(reports.map((r) => [r.phase, r.count, r.answered, r.open, r.closed, r.errors])).toEqual([
      ["held", 300, 300, 300, 0, []],
      ["again", 300, 300, 300, 0, []],
    ]);
    expect(ports.length).toBe(600);
    expect(new Set(ports).size).toBe(300);
  });

  test("a connection the server closes is counted as closed and not answered", async () => {
    using server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("bye", { headers: { connection: "close" } }) });
    const reports: IdleReport[] = [];
    const commands = (async function* () {
      yield "again";
    })();
    await holdConnections(`http://127.0.0.1:${server.port}`, 3, (r) => reports.push(r), commands);
    // The first answers arrive (200, then the server closes); asked again, none are open.
    expect(reports[0]!.answered).toBe(3);
    expect(reports.at(-1)).toMatchObject({ phase: "again", answered: 0, open: 0, closed: 3 });
  });
});

describe("status page client", () => {
  test("does nothing when the page's event stream answers 404", async () => {
    await using backend = startBackend(() => new Response("no", { status: 404 }));
    const reports: PageReport[] = [];
    await holdPage(backend.url, 2, (r) => reports.push(r), new Promise(() => {}));
    expect(reports).toEqual([{ phase: "opened", status: 404, open: 0, events: 0, bytes: 0, errors: [] }]);
    expect(backend.received.map((r) => r.path)).toEqual([PAGE_EVENTS_PATH, PAGE_EVENTS_PATH]);
  });

  test("holds the streams and counts what they send, whatever the chunks", async () => {
    await using backend = startBackend(
      () =>
        new Response(
          new ReadableStream({
            start(c) {
              for (const piece of ["data: {\"a\":1}\n", "\ndata: {\"b\"", ":2}\n\n: ping\n\n"]) c.enqueue(new TextEncoder().encode(piece));
              c.close();
            },
          }),
          { headers: { "content-type": "text/event-stream" } },
        ),
    );
    const reports: PageReport[] = [];
    await holdPage(backend.url, 3, (r) => reports.push(r), new Promise(() => {}));
    expect(reports[0]).toMatchObject({ phase: "opened", status: 200 });
    expect(reports[1]).toMatchObject({ phase: "closed", status: 200, open: 0, events: 9, errors: [] });
  });
});

describe("SSE client", () => {
  // The real bench backend, a few streams opened over a ramp: every event arrives, in order.
  test("opens the streams over the ramp and receives every event in order", async () => {
    const backend = Bun.spawn([process.execPath, join(import.meta.dir, "..", "..", "scripts", "bench", "backend.ts")], { stdout: "pipe", stderr: "inherit" });
    try {
      const { value } = await lines(backend.stdout).next();
      const { port } = JSON.parse(value as string) as { port: number };
      const r = await runSse({ url: `http://127.0.0.1:${port}`, streams: 6, events: 4, intervalMs: 2, rampMs: 30, userAgent: "claude-cli/2.1.197" });
      expect({ received: r.received, outOfOrder: r.outOfOrder, errors: r.errors }).toEqual({ received: 24, outOfOrder: 0, errors: [] });
      expect(r.maxOpen).toBeGreaterThanOrEqual(1);
      expect(r.maxOpen).toBeLessThanOrEqual(6);
    } finally {
      backend.kill();
      await backend.exited;
    }
  });
});

describe("summary", () => {
  const wrk = (rps: number, p99Ms: number, cpuUsPerReq = 1): WrkMetrics => ({ rps, p50Ms: 1, p90Ms: 1, p99Ms, maxMs: 1, requests: rps, errors: 0, cpuUsPerReq });
  const base = (): BenchResults =>
    ({ format: "memproxy-bench/2", started: "", finished: "", options: { rounds: 3 }, machine: {}, versions: {}, notes: [], json: {}, memory: {}, rows: [] }) as BenchResults;
  const results = (json: BenchResults["json"]): BenchResults => ({ ...base(), json });
  const open = (p99Ms: number): OpenLoopMetrics => ({ offered: 1000, achieved: 1000, p50Ms: 0.5, p90Ms: 1, p99Ms, p999Ms: 2 * p99Ms, maxMs: 9, requests: 8000, errors: 0, errorKinds: {}, cpuUsPerReq: 30 });
  const sse = (delayP99: number, extra: Partial<SseMetrics> = {}): SseMetrics => ({
    delayP50: 0.1,
    delayP99,
    delayMax: 9,
    totalMs: 1,
    received: 200_000,
    expected: 200_000,
    batched: 0,
    outOfOrder: 0,
    errors: [],
    cpuMsPer1kEvents: 10,
    maxOpen: 4000,
    ...extra,
  });

  test("compares memproxy and the floor with nginx round by round; judges 32 connections only", () => {
    const rows = summarize(
      results({
        "32": [
          { nginx: wrk(1000, 2), floor: wrk(800, 2.5), memproxy: wrk(700, 3.5) },
          { nginx: wrk(2000, 2), floor: wrk(1500, 2.2), memproxy: wrk(1300, 2.9) },
          { nginx: wrk(1500, 2), floor: wrk(1050, 2.2), memproxy: wrk(1050, 2.5) },
        ],
        "256": [{ nginx: wrk(1000, 2), floor: wrk(800, 2.5), memproxy: wrk(100, 30) }],
      }),
    );
    const rps = rows.find((r) => r.key === "json32.rps")!;
    // same-round ratios 0.70 / 0.65 / 0.70 for memproxy, 0.80 / 0.75 / 0.70 for the floor
    expect(rps.vsNginx).toBe("0.70×");
    expect(rps.floorVsNginx).toBe("0.75×");
    expect(rps.values.floor).toBe("1,050");
    expect(rps.samples?.memproxy).toEqual([700, 1300, 1050]);
    expect(rps.target).toBe("≥ 0.65× nginx");
    expect(rps.pass).toBe(true);
    const p99 = rows.find((r) => r.key === "json32.p99")!;
    expect(p99.vsNginx).toBe("+0.90 ms");
    expect(p99.floorVsNginx).toBe("+0.20 ms");
    expect(p99.pass).toBe(true);
    expect(p99.relative).toEqual({ label: "− nginx", samples: [1.5, 0.8999999999999999, 0.5], kind: "diff" });
    // At 256 connections the numbers are reported, not judged.
    for (const key of ["json256.rps", "json256.p99"]) {
      const r = rows.find((x) => x.key === key)!;
      expect([r.target, r.pass]).toEqual(["reported", undefined]);
    }
    expect(rows.find((x) => x.key === "json256.rps")!.relative).toEqual({ label: "÷ nginx", samples: [0.1], kind: "ratio" });
    expect(table(rows).split("\n")[0]).toContain("| bun floor |");
    expect(table(rows).split("\n").find((l) => l.includes("256 conns: p99"))).toMatch(/\| reported +\| +\|$/);
  });

  test("the features' cost: proxy CPU per request at most 1.2× the floor's, at 32 and at 256 connections", () => {
    const rows = summarize(
      results({
        "32": [
          { floor: wrk(1, 1, 30), memproxy: wrk(1, 1, 35) },
          { floor: wrk(1, 1, 40), memproxy: wrk(1, 1, 50) },
        ],
        "256": [{ floor: wrk(1, 1, 30), memproxy: wrk(1, 1, 37) }],
      }),
    );
    expect(rows.find((r) => r.key === "json32.cpu")).toMatchObject({ vsFloor: "1.21×", target: "≤ 1.2× bun floor", pass: false });
    expect(rows.find((r) => r.key === "json256.cpu")).toMatchObject({ vsFloor: "1.23×", pass: false });
    const ok = summarize(results({ "32": [{ floor: wrk(1, 1, 30), memproxy: wrk(1, 1, 36) }] }));
    expect(ok.find((r) => r.key === "json32.cpu")!.pass).toBe(true);
  });

  test("open loop: p99 within nginx's + 0.5 ms, round by round; the sweep's crossing against nginx's saturation", () => {
    const r = base();
    r.open = {
      nginxSaturation: 40_000,
      saturationFrom: "test",
      rate: 20_000,
      connections: 64,
      seconds: 8,
      limitMs: 5,
      rounds: [
        { nginx: open(1), memproxy: open(1.6) },
        { nginx: open(1.2), memproxy: open(1.6) },
        { nginx: open(1.1), memproxy: open(1.5) },
      ],
      sweep: {
        memproxy: [
          { factor: 1, rate: 20_000, p99Ms: 1.6, metrics: open(1.6) },
          { factor: 1.1, rate: 22_000, p99Ms: 3, metrics: open(3) },
          { factor: 1.2, rate: 24_000, p99Ms: 7, metrics: open(7) },
        ],
        floor: [{ factor: 1, rate: 20_000, p99Ms: 1.2, metrics: open(1.2) }],
      },
    };
    const rows = summarize(r);
    expect(rows.find((x) => x.key === "open.p99")).toMatchObject({ vsNginx: "+0.40 ms", target: "≤ nginx + 0.5 ms", pass: true });
    expect(rows.find((x) => x.label.includes("20,000 req/s offered"))).toBeDefined();
    const sweep = rows.find((x) => x.key === "open.passes")!;
    expect(sweep.numbers.memproxy).toBe(23_000);
    expect(sweep.values).toEqual({ memproxy: "≈ 23,000 (0.57× nginx sat.)", floor: "> 20,000" });
  });

  test("team scale: every event in order, added delay, peak and return of RSS, idle connections held", () => {
    const r = base();
    const curve = rssCurve(
      Array.from({ length: 500 }, (_, i) => ({ t: i * 100, mb: i < 10 ? 40 : i < 100 ? 180 : 50 })),
      40,
      1000,
      10_000,
    );
    r.scale = {
      streams: 4000,
      events: 50,
      intervalMs: 100,
      rampMs: 2000,
      sse: { direct: sse(2), memproxy: sse(6.5) },
      rss: curve,
      idleConnections: {
        count: 10_000,
        held: { phase: "held", count: 10_000, open: 10_000, answered: 10_000, closed: 0, ms: 1, errors: [] },
        again: { phase: "again", count: 10_000, open: 10_000, answered: 10_000, closed: 0, ms: 1, errors: [] },
        rssBeforeMb: 50,
        peakMb: 149,
      },
    };
    const rows = summarize(r);
    expect(rows.find((x) => x.key === "scale.integrity")).toMatchObject({ pass: true });
    expect(rows.find((x) => x.key === "scale.p99")).toMatchObject({ vsDirect: "+4.50 ms", target: "added (vs direct) < 5 ms", pass: true });
    expect(rows.find((x) => x.key === "scale.peak")).toMatchObject({ numbers: { memproxy: 180 }, target: "< 200 MB", pass: true });
    expect(rows.find((x) => x.key === "scale.after")).toMatchObject({ pass: true });
    expect(rows.find((x) => x.key === "scale.after")!.values.memproxy).toBe("50 / 50 / 50 / 50 / 50 / 50 MB");
    expect(rows.find((x) => x.key === "scale.idle")).toMatchObject({ target: "all held, RSS < 150 MB", pass: true });

    r.scale.sse.memproxy = sse(1, { received: 199_999, outOfOrder: 1 });
    r.scale.idleConnections!.again!.answered = 9_999;
    const failed = summarize(r);
    expect(failed.find((x) => x.key === "scale.integrity")!.pass).toBe(false);
    expect(failed.find((x) => x.key === "scale.idle")!.pass).toBe(false);
  });

  test("idle memory within 1.3× a bare compiled Bun server; start-up under 50 ms", () => {
    const r = base();
    r.idle = { memproxyMb: [38, 37, 40], bareMb: [29, 28, 29], floorMb: [32, 31, 33] };
    r.startup = { runsMs: [30, 40, 35], medianMs: 35, maxMs: 40 };
    const rows = summarize(r);
    expect(rows.find((x) => x.key === "idle.rss")).toMatchObject({ numbers: { memproxy: 38 }, pass: false });
    expect(rows.find((x) => x.key === "idle.rss")!.target).toContain("≤ 1.3× bare Bun (37.7 MB)");
    expect(rows.find((x) => x.key === "idle.rss")).toMatchObject({ values: { floor: "32.0 MB (compiled)" }, vsFloor: "1.19×" });
    expect(rows.find((x) => x.key === "startup.ms")).toMatchObject({ samples: { memproxy: [30, 40, 35] }, pass: true });
  });
});

describe("comparing runs", () => {
  test("a change counts only when no round of one run overlaps a round of the other", () => {
    expect(difference([40, 42, 41], [37, 38, 36], "lower")).toEqual({ a: 41, b: 37, change: -4, noise: 2, verdict: "better" });
    expect(difference([40, 42, 41], [37, 38, 36], "higher").verdict).toBe("worse");
    expect(difference([40, 42, 41], [39, 40.5, 38], "lower").verdict).toBe("within noise");
    expect(difference([40], [30], "lower").verdict).toBe("n/a");
  });

  test("recomputes both runs' rows from their raw numbers and shows memproxy's change and its reference's", () => {
    const run = (started: string, cpu: number[], floorCpu: number[]): BenchResults =>
      ({
        format: "memproxy-bench/1",
        started,
        finished: "",
        options: { rounds: 3 },
        machine: {},
        versions: { memproxy_commit: started },
        notes: [],
        json: { "32": cpu.map((c, i) => ({ floor: { rps: 1, p50Ms: 1, p90Ms: 1, p99Ms: 1, maxMs: 1, requests: 1, errors: 0, cpuUsPerReq: floorCpu[i]! }, memproxy: { rps: 1, p50Ms: 1, p90Ms: 1, p99Ms: 1, maxMs: 1, requests: 1, errors: 0, cpuUsPerReq: c } })) },
        memory: {},
        rows: [],
      }) as BenchResults;
    // B's CPU per request is lower in every round, but so is the floor's: the machine got faster.
    const out = compare(run("A", [50, 52, 51], [40, 41, 40]), run("B", [45, 46, 44], [36, 37, 35]));
    expect(out).not.toContain("note: the two runs differ");
    expect(compare(run("A", [1], [1]), { ...run("B", [1], [1]), options: { rounds: 1, quick: true } })).toStartWith("note: the two runs differ in --quick");
    const line = out.split("\n").find((l) => l.includes("32 conns: proxy CPU per request"))!;
    const cells = line.split("|").map((c) => c.trim());
    expect(cells.slice(2, 7)).toEqual(["51.0 µs", "45.0 µs", "−6.00 (−11.8%)", "±2.00", "better"]);
    // same-round ratios 1.25 / 1.27 / 1.28 against 1.25 / 1.24 / 1.26
    expect(cells.slice(7, 12)).toEqual(["÷ floor", "1.27×", "1.25×", "−0.018 ±0.025", "within noise"]);
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

describe("versions: which memproxy a result is of", () => {
  const none = { nginx: undefined, wrk: undefined, oha: undefined, notes: [] };

  test("a binary given with --binary is labelled with the commit it reports, not the work tree's", async () => {
    using dir = tempDir("bench-versions");
    const bin = dir.file("memproxy");
    await Bun.write(bin, '#!/bin/sh\necho "memproxy 0.1.0 (commit 1a2b3c4-dirty, built 2026-01-02, bun 1.4.5)"\n');
    await runToEnd(["chmod", "+x", bin]);
    expect((await versions(none, bin)).memproxy_commit).toBe("1a2b3c4-dirty");
    expect((await versions(none, dir.file("missing"))).memproxy_commit).toBe(`unknown (${dir.file("missing")})`);
  });

  test("without one, the work tree's commit", async () => {
    const head = (await runToEnd(["git", "rev-parse", "--short", "HEAD"])).stdout.trim();
    expect((await versions(none)).memproxy_commit).toStartWith(head);
  });
});
