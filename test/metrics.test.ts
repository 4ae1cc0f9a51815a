import { describe, expect, test } from "bun:test";
import { Metrics, NO_USER, OVERFLOW_LABEL, ROUTES, routeIndex } from "../src/metrics.ts";
import { VERSION } from "../src/version.ts";
import { parsePrometheus, sampleValue, samples } from "./support/prometheus.ts";

const route = (path: string): string => ROUTES[routeIndex(path)]!;

describe("route labels are a bounded set", () => {
  test.each([
    ["/v1/chat/completions", "/v1/chat/completions"],
    ["/chat/completions", "/v1/chat/completions"],
    ["/openai/deployments/gpt-4o/chat/completions", "/v1/chat/completions"],
    ["/v1/completions", "/v1/completions"],
    ["/v1/messages", "/v1/messages"],
    ["/v1/messages/", "/v1/messages"],
    ["/v1/messages/count_tokens", "/v1/messages/count_tokens"],
    ["/v1/responses", "/v1/responses"],
    ["/v1/embeddings", "/v1/embeddings"],
    ["/v1/models", "/v1/models"],
    ["/v1/models/gpt-4o", "/v1/models"],
    ["/", "other"],
    ["/v1/files/file-123", "other"],
    ["/random/8f3a9c", "other"],
  ])("%s -> %s", (path, want) => {
    expect(route(path)).toBe(want);
  });
});

function record(m: Metrics, userId: string, status = 200, path = "/v1/chat/completions") {
  m.record({ user: m.user(userId), route: routeIndex(path), status, failed: status >= 400, durationSeconds: 0.02, ttfbSeconds: 0.01, clientDisconnected: false });
}

describe("label limits", () => {
  test("user ids past the limit share the label 'other'; configured ids never do", () => {
    const m = new Metrics({ maxUserLabels: 3 });
    m.reserveUserIds(["default-dev", "claude-cli"]);
    for (let i = 0; i < 50; i++) record(m, `random-${i}`);
    record(m, "default-dev");
    record(m, "claude-cli");
    const f = parsePrometheus(m.render());
    const users = samples(f, "memproxy_requests_total").map((s) => s.labels.user_id);
    expect(users.sort()).toEqual(["claude-cli", "default-dev", OVERFLOW_LABEL, "random-0", "random-1", "random-2"].sort());
    expect(sampleValue(f, "memproxy_requests_total", { user_id: OVERFLOW_LABEL, route: "/v1/chat/completions", status_class: "2xx" })).toBe(47);
    const stats = m.stats() as { users: Record<string, { requests: number }> };
    expect(Object.keys(stats.users)).toHaveLength(6);
    expect(stats.users[OVERFLOW_LABEL]!.requests).toBe(47);
  });

  test("requests refused before routing count under (none), which uses no label slot", () => {
    const m = new Metrics({ maxUserLabels: 1 });
    record(m, NO_USER, 400);
    record(m, "a");
    record(m, "b");
    const f = parsePrometheus(m.render());
    expect(sampleValue(f, "memproxy_requests_total", { user_id: NO_USER, route: "/v1/chat/completions", status_class: "4xx" })).toBe(1);
    expect(sampleValue(f, "memproxy_requests_total", { user_id: "a", route: "/v1/chat/completions", status_class: "2xx" })).toBe(1);
    expect(sampleValue(f, "memproxy_requests_total", { user_id: OVERFLOW_LABEL, route: "/v1/chat/completions", status_class: "2xx" })).toBe(1);
  });

  test("model names past the limit, or absurdly long, count as 'other'", () => {
    const m = new Metrics({ maxModelLabels: 2 });
    const u = m.user("u");
    m.tokens(u, "m1", 1, 1);
    m.tokens(u, "m2", 1, 1);
    m.tokens(u, "m3", 5, 6);
    m.tokens(u, "m4", 5, 6);
    m.tokens(u, "m1", 1, 1);
    const f = parsePrometheus(m.render());
    expect(samples(f, "memproxy_input_tokens_total").map((s) => s.labels.model).sort()).toEqual(["m1", "m2", OVERFLOW_LABEL]);
    expect(sampleValue(f, "memproxy_input_tokens_total", { user_id: "u", model: OVERFLOW_LABEL })).toBe(10);
    expect(sampleValue(f, "memproxy_output_tokens_total", { user_id: "u", model: "m1" })).toBe(2);
    expect(m.modelIndex("x".repeat(500))).toBe(m.modelIndex(OVERFLOW_LABEL));
  });
});

describe("the Prometheus text", () => {
  test("parses strictly, with build info, zeroed counters and the supervisor's counter", () => {
    const m = new Metrics();
    const f = parsePrometheus(m.render());
    expect(f.get("memproxy_build_info")!.samples[0]!.labels.version).toBe(VERSION);
    expect(sampleValue(f, "memproxy_supervisor_restarts_total")).toBe(0);
    for (const kind of ["connect", "timeout", "5xx", "reset"]) expect(f.get("memproxy_backend_errors_total")!.samples.some((s) => s.labels.kind === kind)).toBe(true);
    m.supervisorRestarts.inc();
    m.supervisorRestarts.inc(2);
    expect(sampleValue(parsePrometheus(m.render()), "memproxy_supervisor_restarts_total")).toBe(3);
  });

  test("label values with quotes, backslashes and line feeds are escaped", () => {
    const m = new Metrics();
    const weird = 'a"b\\c\nd';
    m.tokens(m.user("u"), weird, 3, 4);
    const text = m.render();
    expect(text).toContain('model="a\\"b\\\\c\\nd"');
    expect(sampleValue(parsePrometheus(text), "memproxy_input_tokens_total", { user_id: "u", model: weird })).toBe(3);
  });

  test("histograms have cumulative buckets ending in +Inf, and _count/_sum", () => {
    const m = new Metrics();
    for (const s of [0.001, 0.2, 0.2, 3, 1000]) {
      m.record({ user: m.user("u"), route: 0, status: 200, failed: false, durationSeconds: s, ttfbSeconds: s / 2, clientDisconnected: false });
    }
    const f = parsePrometheus(m.render());
    const r = { route: "/v1/chat/completions" };
    expect(sampleValue(f, "memproxy_request_duration_seconds_count", r)).toBe(5);
    expect(sampleValue(f, "memproxy_request_duration_seconds_sum", r)).toBeCloseTo(1003.401);
    expect(sampleValue(f, "memproxy_request_duration_seconds_bucket", { ...r, le: "0.005" })).toBe(1);
    expect(sampleValue(f, "memproxy_request_duration_seconds_bucket", { ...r, le: "0.25" })).toBe(3);
    expect(sampleValue(f, "memproxy_request_duration_seconds_bucket", { ...r, le: "600" })).toBe(4);
    expect(sampleValue(f, "memproxy_request_duration_seconds_bucket", { ...r, le: "+Inf" })).toBe(5);
    expect(sampleValue(f, "memproxy_time_to_first_byte_seconds_count", r)).toBe(5);
  });
});

describe("the strict test parser rejects what a scraper would", () => {
  test.each([
    ["no final line feed", "# TYPE a counter\na 1"],
    ["a sample without its TYPE group", "# TYPE a counter\na 1\nb 2\n"],
    ["a bad escape", '# TYPE a counter\na{x="\\t"} 1\n'],
    ["an unquoted label", "# TYPE a counter\na{x=1} 1\n"],
    ["a duplicate sample", '# TYPE a counter\na{x="1"} 1\na{x="1"} 2\n'],
    ["a bad value", "# TYPE a gauge\na one\n"],
    ["a histogram without +Inf", '# TYPE h histogram\nh_bucket{le="1"} 1\nh_sum 1\nh_count 1\n'],
    ["a histogram whose count differs", '# TYPE h histogram\nh_bucket{le="1"} 1\nh_bucket{le="+Inf"} 2\nh_sum 1\nh_count 3\n'],
    ["decreasing buckets", '# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n'],
    ["a family split in two", "# TYPE a counter\na 1\n# TYPE b gauge\nb 1\n# TYPE a counter\n"],
  ])("%s", (_why, text) => {
    expect(() => parsePrometheus(text)).toThrow();
  });
});
