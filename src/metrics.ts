// memproxy's counters: kept as plain numbers and typed arrays on the hot path, formatted as Prometheus
// text (GET /metrics) or a JSON summary (GET /memory-routing/stats) only when someone asks.
import type { MemoryOutcome } from "./memory.ts";
import { VERSION } from "./version.ts";

/** The Content-Type of the Prometheus text exposition format. */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** Route labels: the API paths worth telling apart; every other path is "other" (raw paths are unbounded). */
export const ROUTES = [
  "/v1/chat/completions",
  "/v1/completions",
  "/v1/messages",
  "/v1/messages/count_tokens",
  "/v1/responses",
  "/v1/embeddings",
  "/v1/models",
  "other",
] as const;
export type Route = (typeof ROUTES)[number];
const OTHER_ROUTE = ROUTES.length - 1;

/**
 * The route label index for a request path. LiteLLM serves each API with and without /v1 and under
 * provider prefixes (/openai/deployments/x/chat/completions), so the suffix decides.
 */
export function routeIndex(path: string): number {
  if (path.length > 1 && path.endsWith("/")) path = path.slice(0, -1);
  if (path.endsWith("/chat/completions")) return 0;
  if (path.endsWith("/completions")) return 1;
  if (path.endsWith("/messages")) return 2;
  if (path.endsWith("/messages/count_tokens")) return 3;
  if (path.endsWith("/responses")) return 4;
  if (path.endsWith("/embeddings")) return 5;
  if (path === "/v1/models" || path === "/models" || path.startsWith("/v1/models/") || path.startsWith("/models/")) return 6;
  return OTHER_ROUTE;
}

/** Why a backend call failed: no connection, too slow (first byte or mid-stream), a 5xx answer, or cut mid-body. */
export const BACKEND_ERROR_KINDS = ["connect", "timeout", "5xx", "reset"] as const;
export type BackendErrorKind = (typeof BACKEND_ERROR_KINDS)[number];

/** The label value that collects every user id (or model) past the limit. */
export const OVERFLOW_LABEL = "other";
/** The user label of requests refused before they were routed (no access key). */
export const NO_USER = "(none)";

/** Bucket bounds in seconds: LLM calls take from milliseconds (errors, cached) to many minutes (long streams). */
const SECONDS_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];
const STATUS_CLASSES = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/** A number that only goes up; for other modules (e.g. the supervisor's restarts). */
export class Counter {
  value = 0;
  /** Adds `n` (default 1); negative or non-finite amounts are ignored. */
  inc(n = 1): void {
    if (n > 0 && Number.isFinite(n)) this.value += n;
  }
}

/** A number that goes up and down. */
export class Gauge {
  value = 0;
  set(v: number): void {
    this.value = v;
  }
  inc(n = 1): void {
    this.value += n;
  }
  dec(n = 1): void {
    this.value -= n;
  }
}

/** A histogram per route with fixed second buckets; counts are per bucket and cumulated only when rendered. */
class RouteHistogram {
  readonly counts = new Float64Array(ROUTES.length * (SECONDS_BUCKETS.length + 1));
  readonly sums = new Float64Array(ROUTES.length);
  readonly totals = new Float64Array(ROUTES.length);

  observe(route: number, seconds: number): void {
    let b = 0;
    while (b < SECONDS_BUCKETS.length && seconds > SECONDS_BUCKETS[b]!) b++;
    this.counts[route * (SECONDS_BUCKETS.length + 1) + b]!++;
    this.sums[route]! += seconds;
    this.totals[route]!++;
  }
}

/** Everything counted for one user id (or for the overflow label). */
export class UserStats {
  /** Requests by route × status class. */
  readonly requests = new Float64Array(ROUTES.length * STATUS_CLASSES.length);
  requestCount = 0;
  errors = 0;
  inputTokens = 0;
  outputTokens = 0;
  /** Tokens by model label index: [2i] input, [2i+1] output. */
  readonly tokensByModel: number[] = [];
  /** Epoch ms of the last request; 0 before the first. */
  lastSeen = 0;
  /** Answers by Supermemory's verdict (memory.ts): memory used, memories added to the prompt, memory failed, no memory header. */
  memoryUsed = 0;
  memoryContextAdded = 0;
  memoryErrors = 0;
  memoryAbsent = 0;

  constructor(readonly userId: string) {}
}

/** Options for the metrics registry. */
export interface MetricsOptions {
  /** Distinct user ids with their own label; later ones count as "other". */
  maxUserLabels?: number;
  /** Distinct model names with their own label; later ones count as "other". */
  maxModelLabels?: number;
}

/** One finished request, as the exchange reports it. */
export interface RequestRecord {
  user: UserStats;
  route: number;
  status: number;
  /** The request failed: status 4xx/5xx, or its body was cut by an error. */
  failed: boolean;
  durationSeconds: number;
  /** Seconds to the response's first body byte; undefined when none was sent. */
  ttfbSeconds: number | undefined;
  clientDisconnected: boolean;
}

/**
 * The metrics of one memproxy process. Label sets are bounded: at most `maxUserLabels` user ids and
 * `maxModelLabels` models get their own label, so clients sending random ids cannot grow memory.
 */
export class Metrics {
  readonly maxUserLabels: number;
  readonly maxModelLabels: number;
  readonly startedAt = Date.now();

  readonly requestsInFlight = new Gauge();
  /** SSE responses being streamed right now. */
  readonly streamsInFlight = new Gauge();
  /** LiteLLM restarts by the supervisor; the supervisor calls `supervisorRestarts.inc()`. */
  readonly supervisorRestarts = new Counter();
  readonly clientDisconnects = new Counter();
  /** Routed requests by the layer that chose their memory id (router.ts DecidedBy). */
  readonly decisions = new Map<string, number>();
  /** Config reloads that were applied, and those rejected as invalid (the running config stayed). */
  readonly configReloads = new Counter();
  readonly configReloadFailures = new Counter();
  /** Requests still in flight when the shutdown's drain timeout ended them. */
  readonly shutdownCut = new Counter();
  /** Backend calls that waited for a kept-alive connection: those that got one, and those that went on without. */
  readonly keepaliveWaits = new Counter();
  readonly keepaliveWaitTimeouts = new Counter();
  /** Backend calls waiting for a kept-alive connection right now. */
  readonly keepaliveWaiting = new Gauge();
  readonly backendErrors = new Float64Array(BACKEND_ERROR_KINDS.length);
  readonly duration = new RouteHistogram();
  readonly ttfb = new RouteHistogram();

  private users = new Map<string, UserStats>();
  /** Configured user ids: they always get their own label and do not use up the limit. */
  private reserved = new Set<string>([NO_USER]);
  /** User ids that took a label under the limit (reserved ones and the overflow slot excluded). */
  private labelledUsers = 0;
  private models = new Map<string, number>();
  private modelNames: string[] = [];

  constructor(options: MetricsOptions = {}) {
    this.maxUserLabels = options.maxUserLabels ?? 100;
    this.maxModelLabels = options.maxModelLabels ?? 50;
  }

  /** Marks user ids from the configuration (patterns, default) as always labelled. */
  reserveUserIds(ids: Iterable<string>): void {
    for (const id of ids) this.reserved.add(id);
  }

  /** The stats slot of a user id: its own while under the limit, else the shared "other" one. */
  user(userId: string): UserStats {
    const known = this.users.get(userId);
    if (known) return known;
    if (!this.reserved.has(userId)) {
      if (this.labelledUsers >= this.maxUserLabels) return this.slot(OVERFLOW_LABEL);
      this.labelledUsers++;
    }
    return this.slot(userId);
  }

  private slot(userId: string): UserStats {
    let s = this.users.get(userId);
    if (!s) this.users.set(userId, (s = new UserStats(userId)));
    return s;
  }

  /** The label index of a model name, or of "other" past the limit. */
  modelIndex(model: string): number {
    let i = this.models.get(model);
    if (i !== undefined) return i;
    const name = model.length <= 128 && this.models.size < this.maxModelLabels ? model : OVERFLOW_LABEL;
    i = this.models.get(name);
    if (i === undefined) {
      i = this.modelNames.push(name) - 1;
      this.models.set(name, i);
    }
    return i;
  }

  /** Counts one finished request. */
  record(r: RequestRecord): void {
    const u = r.user;
    const cls = Math.min(Math.max(Math.floor(r.status / 100), 1), 5) - 1;
    u.requests[r.route * STATUS_CLASSES.length + cls]!++;
    u.requestCount++;
    if (r.failed) u.errors++;
    u.lastSeen = Date.now();
    this.duration.observe(r.route, r.durationSeconds);
    if (r.ttfbSeconds !== undefined) this.ttfb.observe(r.route, r.ttfbSeconds);
    if (r.clientDisconnected) this.clientDisconnects.inc();
  }

  /** Counts one routing decision by the layer that made it. */
  decided(by: string): void {
    this.decisions.set(by, (this.decisions.get(by) ?? 0) + 1);
  }

  /** Counts a backend failure. */
  backendError(kind: BackendErrorKind): void {
    this.backendErrors[BACKEND_ERROR_KINDS.indexOf(kind)]!++;
  }

  /** Adds the tokens the backend reported for one response. */
  tokens(user: UserStats, model: string, input: number, output: number): void {
    const m = this.modelIndex(model) * 2;
    user.tokensByModel[m] = (user.tokensByModel[m] ?? 0) + input;
    user.tokensByModel[m + 1] = (user.tokensByModel[m + 1] ?? 0) + output;
    user.inputTokens += input;
    user.outputTokens += output;
  }

  /** Counts Supermemory's verdict on one answer (memory.ts memoryOutcome; an answer that cannot tell is not counted). */
  memory(user: UserStats, outcome: MemoryOutcome): void {
    if (outcome.state === "used") {
      user.memoryUsed++;
      if (outcome.context_added) user.memoryContextAdded++;
    } else if (outcome.state === "error") user.memoryErrors++;
    else user.memoryAbsent++;
  }

  /** The metrics in the Prometheus text exposition format (version 0.0.4). */
  render(): string {
    const out: string[] = [];
    const head = (name: string, type: string, help: string) => out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);

    head("memproxy_build_info", "gauge", "memproxy's version and runtime; always 1.");
    out.push(`memproxy_build_info{version=${label(VERSION)},bun_version=${label(Bun.version)}} 1`);
    head("process_start_time_seconds", "gauge", "Start time of the process since the Unix epoch in seconds.");
    out.push(`process_start_time_seconds ${this.startedAt / 1000}`);
    head("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
    out.push(`process_resident_memory_bytes ${process.memoryUsage.rss()}`);

    head("memproxy_requests_total", "counter", "Requests forwarded or refused, by user id, route and status class.");
    for (const u of this.users.values()) {
      for (let r = 0; r < ROUTES.length; r++) {
        for (let c = 0; c < STATUS_CLASSES.length; c++) {
          const n = u.requests[r * STATUS_CLASSES.length + c]!;
          if (n) out.push(`memproxy_requests_total{user_id=${label(u.userId)},route=${label(ROUTES[r]!)},status_class="${STATUS_CLASSES[c]}"} ${n}`);
        }
      }
    }
    head("memproxy_requests_in_flight", "gauge", "Requests being handled now.");
    out.push(`memproxy_requests_in_flight ${this.requestsInFlight.value}`);
    head("memproxy_streams_in_flight", "gauge", "Server-sent event streams being relayed now.");
    out.push(`memproxy_streams_in_flight ${this.streamsInFlight.value}`);
    renderHistogram(out, "memproxy_request_duration_seconds", "Time from a request's arrival to its response's last byte.", this.duration);
    renderHistogram(out, "memproxy_time_to_first_byte_seconds", "Time from a request's arrival to its response's first body byte.", this.ttfb);

    head("memproxy_backend_errors_total", "counter", "Failed backend calls: connect, timeout (first byte or mid-stream), 5xx answer, reset mid-body.");
    BACKEND_ERROR_KINDS.forEach((kind, i) => out.push(`memproxy_backend_errors_total{kind="${kind}"} ${this.backendErrors[i]}`));
    head(
      "memproxy_routing_decisions_total",
      "counter",
      "Routed requests by what chose their memory id: custom_header, pattern (your header_patterns), builtin (a known tool), derived (an unknown tool's User-Agent product), default.",
    );
    for (const [by, n] of this.decisions) out.push(`memproxy_routing_decisions_total{decided_by=${label(by)}} ${n}`);
    head("memproxy_client_disconnects_total", "counter", "Requests whose client went away before the response ended.");
    out.push(`memproxy_client_disconnects_total ${this.clientDisconnects.value}`);

    head("memproxy_input_tokens_total", "counter", "Prompt (input) tokens the backend reported, by user id and model.");
    this.renderTokens(out, "memproxy_input_tokens_total", 0);
    head("memproxy_output_tokens_total", "counter", "Completion (output) tokens the backend reported, by user id and model.");
    this.renderTokens(out, "memproxy_output_tokens_total", 1);

    head(
      "memproxy_memory_answers_total",
      "counter",
      "Answers by Supermemory's verdict, by user id: used (its memory headers came back), error (x-supermemory-error: memory failed, the request passed through), absent (no Supermemory header: its router is not in the chain).",
    );
    for (const u of this.users.values()) {
      const id = label(u.userId);
      if (u.memoryUsed) out.push(`memproxy_memory_answers_total{user_id=${id},state="used"} ${u.memoryUsed}`);
      if (u.memoryErrors) out.push(`memproxy_memory_answers_total{user_id=${id},state="error"} ${u.memoryErrors}`);
      if (u.memoryAbsent) out.push(`memproxy_memory_answers_total{user_id=${id},state="absent"} ${u.memoryAbsent}`);
    }
    head("memproxy_memory_context_added_total", "counter", "Answers for which Supermemory added memories to the prompt (x-supermemory-context-modified), by user id.");
    for (const u of this.users.values()) {
      if (u.memoryContextAdded) out.push(`memproxy_memory_context_added_total{user_id=${label(u.userId)}} ${u.memoryContextAdded}`);
    }

    head("memproxy_supervisor_restarts_total", "counter", "Times the supervisor restarted the LiteLLM backend.");
    out.push(`memproxy_supervisor_restarts_total ${this.supervisorRestarts.value}`);
    head("memproxy_config_reloads_total", "counter", "Config reloads (file change or SIGHUP), by result: applied, or rejected as invalid.");
    out.push(`memproxy_config_reloads_total{result="applied"} ${this.configReloads.value}`);
    out.push(`memproxy_config_reloads_total{result="rejected"} ${this.configReloadFailures.value}`);
    head("memproxy_shutdown_cut_requests_total", "counter", "Requests still in flight when the shutdown drain timeout ended them.");
    out.push(`memproxy_shutdown_cut_requests_total ${this.shutdownCut.value}`);
    head(
      "memproxy_backend_keepalive_waits_total",
      "counter",
      "Backend calls that waited for a kept-alive connection (memproxy.forward.keepalive_limit), by outcome: got one, or went on a new connection after keepalive_wait.",
    );
    out.push(`memproxy_backend_keepalive_waits_total{outcome="connection"} ${this.keepaliveWaits.value}`);
    out.push(`memproxy_backend_keepalive_waits_total{outcome="timeout"} ${this.keepaliveWaitTimeouts.value}`);
    head("memproxy_backend_keepalive_waiting", "gauge", "Backend calls waiting for a kept-alive connection right now.");
    out.push(`memproxy_backend_keepalive_waiting ${this.keepaliveWaiting.value}`);
    return out.join("\n") + "\n";
  }

  private renderTokens(out: string[], name: string, which: 0 | 1): void {
    for (const u of this.users.values()) {
      for (let m = 0; m < this.modelNames.length; m++) {
        const n = u.tokensByModel[m * 2 + which];
        if (n !== undefined) out.push(`${name}{user_id=${label(u.userId)},model=${label(this.modelNames[m]!)}} ${n}`);
      }
    }
  }

  /** A JSON-ready summary since start, per user id (bounded like the labels). */
  stats(): Record<string, unknown> {
    const users: Record<string, unknown> = {};
    const totals = { requests: 0, errors: 0, input_tokens: 0, output_tokens: 0, memory: { used: 0, context_added: 0, errors: 0, absent: 0 } };
    const sorted = [...this.users.values()].sort((a, b) => b.lastSeen - a.lastSeen);
    for (const u of sorted) {
      users[u.userId] = {
        requests: u.requestCount,
        errors: u.errors,
        input_tokens: u.inputTokens,
        output_tokens: u.outputTokens,
        memory: { used: u.memoryUsed, context_added: u.memoryContextAdded, errors: u.memoryErrors, absent: u.memoryAbsent },
        last_seen: u.lastSeen ? new Date(u.lastSeen).toISOString() : null,
      };
      totals.requests += u.requestCount;
      totals.errors += u.errors;
      totals.input_tokens += u.inputTokens;
      totals.output_tokens += u.outputTokens;
      totals.memory.used += u.memoryUsed;
      totals.memory.context_added += u.memoryContextAdded;
      totals.memory.errors += u.memoryErrors;
      totals.memory.absent += u.memoryAbsent;
    }
    return {
      since: new Date(this.startedAt).toISOString(),
      uptime_seconds: Math.round((Date.now() - this.startedAt) / 1000),
      requests_in_flight: this.requestsInFlight.value,
      user_label_limit: this.maxUserLabels,
      totals,
      users,
    };
  }
}

function renderHistogram(out: string[], name: string, help: string, h: RouteHistogram): void {
  out.push(`# HELP ${name} ${help}`, `# TYPE ${name} histogram`);
  const width = SECONDS_BUCKETS.length + 1;
  for (let r = 0; r < ROUTES.length; r++) {
    if (!h.totals[r]) continue;
    const route = label(ROUTES[r]!);
    let cumulative = 0;
    for (let b = 0; b < width; b++) {
      cumulative += h.counts[r * width + b]!;
      const le = b < SECONDS_BUCKETS.length ? String(SECONDS_BUCKETS[b]) : "+Inf";
      out.push(`${name}_bucket{route=${route},le="${le}"} ${cumulative}`);
    }
    out.push(`${name}_sum{route=${route}} ${h.sums[r]}`, `${name}_count{route=${route}} ${h.totals[r]}`);
  }
}

/** A quoted label value, escaped as the text format requires (backslash, double quote, line feed). */
function label(value: string): string {
  return `"${value.replace(/[\\"\n]/g, (c) => (c === "\n" ? "\\n" : `\\${c}`))}"`;
}
