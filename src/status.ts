// The live status board: what the page shows, aggregated from finished requests, and its event stream.

import type { ChainReport } from "./litellm-config.ts";
import type { MemoryOutcome } from "./memory.ts";
import type { DecidedBy } from "./router.ts";

export type { DecidedBy };
/** What the page shows of the memory layer's verdict on one answer (memory.ts). */
export type MemoryVerdict = Pick<MemoryOutcome, "state" | "context_added" | "error">;

/**
 * One finished proxied request, given when its response's last byte passed. It holds no body and no
 * header but the User-Agent (itself truncated by the caller, e.g. to 256 characters).
 */
export interface FinishedRequest {
  id: string;
  /** Epoch ms of arrival. */
  at: number;
  method: string;
  /** Without the query string (it can carry keys). */
  path: string;
  status: number;
  duration_ms: number;
  ttfb_ms: number | null;
  /** null: refused before routing. */
  user_id: string | null;
  decided_by: DecidedBy | null;
  /** The rule that matched, e.g. "user-agent: claude-cli/". */
  rule: string | null;
  /** The tool a built-in rule names, e.g. "Claude Code". */
  tool: string | null;
  user_agent: string | null;
  model: string | null;
  input_tokens: number | null;
  output_tokens: number | null;
  bytes_in: number | null;
  bytes_out: number;
  error_code: string | null;
  error: string | null;
  client_disconnected: boolean;
  /** null: not an LLM call. */
  memory: MemoryVerdict | null;
}

/** One backend as the page shows it. */
export interface BackendInfo {
  url: string;
  status: "up" | "down";
  in_flight: number;
  last_error: string | null;
}

/** The supervised LiteLLM (the supervisor's own status). */
export interface LiteLLMInfo {
  state: string;
  pid: number | null;
  restarts: number;
  last_exit_code: number | null;
  error: string | null;
}

/** The configuration in force. The optional fields are shown when given. */
export interface ConfigInfo {
  file: string;
  /** ISO time or epoch ms. */
  loaded_at: string | number;
  last_reload: { at: string | number; ok: boolean; problems?: readonly string[] } | null;
  listen?: string;
  custom_header?: string;
  default_user_id?: string;
  rules?: number;
  access_keys?: boolean;
}

/** Whether the memory id reaches the memory layer through LiteLLM (checked from the shared config). */
export interface MemoryChainInfo {
  memory_id_forwarding: "on" | "off" | "partial" | "unknown";
  notes: readonly string[];
  /** What stops memory from working, each with its fix (e.g. the YAML lines to add). */
  problems?: readonly { severity: "error" | "warning"; message: string; fix: string }[];
}

/**
 * What the status page says of the memory chain: the shared config's LiteLLM side, when memproxy can see it.
 * @param chain the check of LiteLLM's config (undefined when memproxy's file does not hold it).
 * @param source memproxy's config file, named when it does not.
 */
export function memoryChainInfo(chain: ChainReport | undefined, source: string): MemoryChainInfo {
  if (!chain) {
    return {
      memory_id_forwarding: "unknown",
      notes: [`LiteLLM's config is not in ${source}: memproxy cannot tell whether LiteLLM forwards the memory id. Run memproxy doctor.`],
    };
  }
  return {
    memory_id_forwarding: chain.memory_id_forwarding,
    notes: chain.models_without_forwarding.length ? [`models without the memory id: ${chain.models_without_forwarding.join(", ")}`] : [],
    problems: chain.problems.map((p) => ({ severity: p.severity, message: p.message, fix: p.fix })),
  };
}

/** Where the board reads what records do not carry; each is called at most once a second while a page is open. */
export interface StatusProviders {
  backends?: () => readonly BackendInfo[];
  /** null or absent: LiteLLM is not supervised by memproxy. */
  litellm?: () => LiteLLMInfo | null;
  config?: () => ConfigInfo | null;
  /** Absent until the chain check exists: the page says "unknown". */
  memoryChain?: () => MemoryChainInfo | null;
}

/** Sizes and pace; the defaults suit the page. */
export interface StatusBoardOptions {
  /** memproxy's version, shown in the page's header. */
  version?: string;
  /** Recent requests kept (default 200). */
  recent?: number;
  /** Rows of the tools table (default 128); the least recently seen row goes first. */
  tools?: number;
  /** Memory ids tracked (default 256); the least recently seen id goes first. */
  memoryIds?: number;
  /** Width of a chart bucket (default 10 s) and how many are kept (default 90: 15 minutes). */
  bucketMs?: number;
  buckets?: number;
  /** Requests are sent to the page in batches this far apart (default 250 ms). */
  batchMs?: number;
  /** State is compared, and sent when it changed, this often (default 1 s). */
  stateMs?: number;
  /** A comment is sent after this long without any other event (default 15 s). */
  heartbeatMs?: number;
  /** A subscriber with more than this many bytes queued and unread is dropped (default 1 MiB). */
  maxQueuedBytes?: number;
  /** The clock (epoch ms); tests pass their own. */
  now?: () => number;
}

/** One row of the tools table: one (User-Agent product, memory id, reason) seen. */
export interface ToolRow {
  /** The User-Agent's first product, without its version, e.g. "claude-cli". */
  product: string;
  version: string | null;
  /** The latest full User-Agent of this row. */
  user_agent: string | null;
  user_id: string | null;
  decided_by: DecidedBy | null;
  rule: string | null;
  tool: string | null;
  requests: number;
  errors: number;
  input_tokens: number;
  output_tokens: number;
  memory_used: number;
  memory_absent: number;
  memory_errors: number;
  memory_last: MemoryOutcome["state"] | null;
  first_seen: number;
  last_seen: number;
  last_status: number;
  last_model: string | null;
  last_error_code: string | null;
}

/** Memory health of one id, from what the memory layer reported back. */
export interface MemoryRow {
  user_id: string;
  /** LLM calls (those with a memory outcome). */
  calls: number;
  used: number;
  context_added: number;
  errors: number;
  absent: number;
  last_state: MemoryOutcome["state"];
  last_error: string | null;
  last_at: number;
}

/** Requests, errors and tokens per bucket, oldest first; the last bucket is the current one. */
export interface Series {
  start: number;
  step_ms: number;
  requests: number[];
  errors: number[];
  input_tokens: number[];
  output_tokens: number[];
}

/** A request as the page shows it: the record's fields only (nothing a caller added), long text cut. */
export type RequestRow = FinishedRequest;

/** Everything but the recent requests: sent again (as a "state" event) when it changed. */
export interface StatusState {
  version: string | null;
  started_at: number;
  totals: { requests: number; errors: number; input_tokens: number; output_tokens: number };
  tools: ToolRow[];
  memory: MemoryRow[];
  series: Series;
  backends: BackendInfo[];
  litellm: LiteLLMInfo | null;
  config: ConfigInfo | null;
  memory_chain: MemoryChainInfo;
}

/** The whole board: the state, the recent requests (newest first) and the time it was taken. */
export interface StatusSnapshot extends StatusState {
  now: number;
  recent: RequestRow[];
}

interface ToolEntry extends ToolRow {
  /** When it was last counted, in records: the smallest goes first when the table is full. */
  touched: number;
}

interface MemoryEntry extends MemoryRow {
  touched: number;
}

interface Subscriber {
  controller: ReadableStreamDefaultController<Uint8Array>;
  /** How many of the pending batch's records its snapshot already held. */
  skip: number;
  /** Called if the board drops it for not reading. */
  onDropped?: () => void;
}

/** A User-Agent's first product and its version. */
export interface ShortAgent {
  product: string;
  version: string | null;
}

const UNKNOWN_CHAIN: MemoryChainInfo = Object.freeze({ memory_id_forwarding: "unknown", notes: Object.freeze([]) as readonly string[] });
const NO_AGENT: ShortAgent = Object.freeze({ product: "(no User-Agent)", version: null });
const TEXT_MAX = 256;
const AGENT_CACHE_MAX = 512;
const encoder = new TextEncoder();
const HEARTBEAT = encoder.encode(": heartbeat\n\n");

/**
 * The live status board. `record` runs on every proxied request: it only counts into fixed-size
 * structures (no serialisation, no timer) unless a page is subscribed, and then it only keeps a
 * reference for the next batch. Serialisation happens once per batch or state change, for all
 * subscribers together. Timers run only while someone subscribes.
 */
export class StatusBoard {
  private providers: StatusProviders;
  private readonly version: string | null;
  private readonly startedAt: number;
  private readonly now: () => number;
  private readonly o: Required<Omit<StatusBoardOptions, "version" | "now">>;

  private readonly ring: (FinishedRequest | undefined)[];
  private ringNext = 0;
  /** The tools table by memory id ("" when refused): a short list per id, one entry per product and reason. */
  private readonly tools = new Map<string, ToolEntry[]>();
  private toolCount = 0;
  private readonly memory = new Map<string, MemoryEntry>();
  private readonly agents = new Map<string, ShortAgent>();
  private totalRequests = 0;
  private totalErrors = 0;
  private totalIn = 0;
  private totalOut = 0;

  // The time series: slot = bucket number % buckets; `head` is the newest bucket number.
  private readonly sReq: Float64Array;
  private readonly sErr: Float64Array;
  private readonly sIn: Float64Array;
  private readonly sOut: Float64Array;
  private head: number;

  private readonly subs = new Set<Subscriber>();
  private pending: FinishedRequest[] = [];
  private batchTimer: ReturnType<typeof setTimeout> | undefined;
  private ticker: ReturnType<typeof setInterval> | undefined;
  /** The state JSON last sent (undefined: none sent since the first subscriber came). */
  private lastState: string | undefined;
  private lastWrite = 0;
  private idleWaiters: (() => void)[] = [];
  private closed = false;

  /**
   * @param providers where backends, LiteLLM, the config and the memory chain are read.
   * @param options sizes, pace, the version to show.
   */
  constructor(providers: StatusProviders = {}, options: StatusBoardOptions = {}) {
    this.providers = { ...providers };
    this.version = options.version ?? null;
    this.now = options.now ?? Date.now;
    this.o = {
      recent: options.recent ?? 200,
      tools: options.tools ?? 128,
      memoryIds: options.memoryIds ?? 256,
      bucketMs: options.bucketMs ?? 10_000,
      buckets: options.buckets ?? 90,
      batchMs: options.batchMs ?? 250,
      stateMs: options.stateMs ?? 1_000,
      heartbeatMs: options.heartbeatMs ?? 15_000,
      maxQueuedBytes: options.maxQueuedBytes ?? 1024 * 1024,
    };
    this.startedAt = this.now();
    this.ring = new Array(this.o.recent);
    const n = this.o.buckets;
    this.sReq = new Float64Array(n);
    this.sErr = new Float64Array(n);
    this.sIn = new Float64Array(n);
    this.sOut = new Float64Array(n);
    this.head = Math.floor(this.startedAt / this.o.bucketMs);
  }

  /** Replaces some providers (e.g. the memory chain check once it exists, or after a reload). */
  setProviders(providers: Partial<StatusProviders>): void {
    this.providers = { ...this.providers, ...providers };
  }

  /** Number of open event streams. */
  get subscribers(): number {
    return this.subs.size;
  }

  /** Whether any timer of the board is scheduled (never while nobody subscribes). */
  get timersRunning(): boolean {
    return this.batchTimer !== undefined || this.ticker !== undefined;
  }

  /**
   * Counts one finished request; called on the request path. Constant time, except a scan of a full
   * table (bounded by its size) when a new tools row or memory id must evict the least recently seen.
   * The board keeps `r` itself in its recent list: do not reuse the object.
   */
  record(r: FinishedRequest): void {
    this.ring[this.ringNext] = r;
    this.ringNext = this.ringNext + 1 === this.ring.length ? 0 : this.ringNext + 1;
    const failed = isError(r);
    const tin = r.input_tokens ?? 0;
    const tout = r.output_tokens ?? 0;
    this.totalRequests++;
    if (failed) this.totalErrors++;
    this.totalIn += tin;
    this.totalOut += tout;
    this.addToSeries(r.at + r.duration_ms, failed, tin, tout);
    this.countTool(r, failed, tin, tout);
    if (r.memory !== null && r.user_id !== null) this.countMemory(r.user_id, r.memory, r.at);
    if (this.subs.size === 0) return;
    // A batch never sends more than the recent list holds: under heavy load the page sees the newest.
    if (this.pending.length >= 2 * this.o.recent) this.trimPending();
    this.pending.push(r);
    this.batchTimer ??= setTimeout(() => this.flushBatch(), this.o.batchMs);
  }

  /** The whole board now. */
  snapshot(): StatusSnapshot {
    const recent: RequestRow[] = [];
    const size = this.ring.length;
    for (let i = 1; i <= size; i++) {
      const r = this.ring[(this.ringNext - i + size) % size];
      if (r === undefined) break;
      recent.push(requestRow(r));
    }
    return { ...this.state(), now: this.now(), recent };
  }

  /**
   * An event stream (Server-Sent Events) for one page: a "snapshot" event, then "requests" events
   * (arrays, oldest first) every batch, "state" events when the state changed, and a heartbeat
   * comment when nothing else was sent for a while. Cancelling the stream unsubscribes at once, and calls
   * `onCancel`; a subscriber that stops reading is dropped (its stream errored), and `onDropped` called.
   */
  subscribe(onCancel?: () => void, onDropped?: () => void): ReadableStream<Uint8Array> {
    let sub: Subscriber | undefined;
    return new ReadableStream<Uint8Array>(
      {
        start: (controller) => {
          if (this.closed) return controller.close();
          sub = { controller, skip: this.pending.length, onDropped };
          this.subs.add(sub);
          controller.enqueue(encoder.encode(`event: snapshot\ndata: ${JSON.stringify(this.snapshot())}\n\n`));
          this.ticker ??= setInterval(() => this.tick(), this.o.stateMs);
        },
        cancel: () => {
          if (sub) this.drop(sub);
          onCancel?.();
        },
      },
      new ByteLengthQueuingStrategy({ highWaterMark: 64 * 1024 }),
    );
  }

  /** Resolves when no stream is open (at once if none is). */
  idle(): Promise<void> {
    if (this.subs.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Ends every stream and stops the timers; later subscribers get an empty stream. Idempotent. */
  close(): void {
    this.closed = true;
    for (const sub of [...this.subs]) {
      this.drop(sub);
      try {
        sub.controller.close();
      } catch {
        // already closed by its reader
      }
    }
  }

  private state(): StatusState {
    const p = this.providers;
    const tools: ToolRow[] = [];
    for (const list of this.tools.values()) for (const t of list) tools.push(toolRow(t));
    tools.sort((a, b) => b.last_seen - a.last_seen);
    const memory = [...this.memory.values()].map(({ touched: _touched, ...m }) => ({ ...m, last_error: cut(m.last_error) }));
    memory.sort((a, b) => (a.user_id < b.user_id ? -1 : 1));
    return {
      version: this.version,
      started_at: this.startedAt,
      totals: { requests: this.totalRequests, errors: this.totalErrors, input_tokens: this.totalIn, output_tokens: this.totalOut },
      tools,
      memory,
      series: this.series(),
      backends: p.backends ? [...p.backends()] : [],
      litellm: p.litellm?.() ?? null,
      config: p.config?.() ?? null,
      memory_chain: p.memoryChain?.() ?? UNKNOWN_CHAIN,
    };
  }

  private series(): Series {
    this.advance(Math.floor(this.now() / this.o.bucketMs));
    const n = this.o.buckets;
    const first = this.head - n + 1;
    const pick = (a: Float64Array) => Array.from({ length: n }, (_, i) => a[(first + i) % n]!);
    return {
      start: first * this.o.bucketMs,
      step_ms: this.o.bucketMs,
      requests: pick(this.sReq),
      errors: pick(this.sErr),
      input_tokens: pick(this.sIn),
      output_tokens: pick(this.sOut),
    };
  }

  /** Moves the newest bucket to `bucket`, emptying the slots it passes. */
  private advance(bucket: number): void {
    if (bucket <= this.head) return;
    const n = this.o.buckets;
    const from = Math.max(this.head + 1, bucket - n + 1);
    for (let b = from; b <= bucket; b++) {
      const s = b % n;
      this.sReq[s] = this.sErr[s] = this.sIn[s] = this.sOut[s] = 0;
    }
    this.head = bucket;
  }

  private addToSeries(at: number, failed: boolean, tin: number, tout: number): void {
    const bucket = Math.floor(at / this.o.bucketMs);
    this.advance(bucket);
    if (bucket <= this.head - this.o.buckets) return; // older than the window
    const s = bucket % this.o.buckets;
    this.sReq[s]!++;
    if (failed) this.sErr[s]!++;
    this.sIn[s]! += tin;
    this.sOut[s]! += tout;
  }

  private countTool(r: FinishedRequest, failed: boolean, tin: number, tout: number): void {
    const agent = this.agent(r.user_agent);
    const id = r.user_id ?? "";
    let list = this.tools.get(id);
    let t: ToolEntry | undefined;
    if (list !== undefined) {
      for (let i = 0; i < list.length; i++) {
        const e = list[i]!;
        if (e.product === agent.product && e.decided_by === r.decided_by) {
          t = e;
          break;
        }
      }
    }
    if (t === undefined) {
      if (this.toolCount >= this.o.tools) {
        this.evictTool();
        list = this.tools.get(id);
      }
      t = {
        touched: 0,
        product: agent.product,
        version: agent.version,
        user_agent: r.user_agent,
        user_id: r.user_id,
        decided_by: r.decided_by,
        rule: r.rule,
        tool: r.tool,
        requests: 0,
        errors: 0,
        input_tokens: 0,
        output_tokens: 0,
        memory_used: 0,
        memory_absent: 0,
        memory_errors: 0,
        memory_last: null,
        first_seen: r.at,
        last_seen: r.at,
        last_status: r.status,
        last_model: null,
        last_error_code: null,
      };
      if (list === undefined) this.tools.set(id, [t]);
      else list.push(t);
      this.toolCount++;
    }
    t.touched = this.totalRequests;
    t.version = agent.version;
    t.user_agent = r.user_agent;
    t.rule = r.rule;
    t.tool = r.tool;
    t.requests++;
    if (failed) {
      t.errors++;
      t.last_error_code = r.error_code;
    }
    t.input_tokens += tin;
    t.output_tokens += tout;
    if (r.memory !== null) {
      const state = r.memory.state;
      if (state === "used") t.memory_used++;
      else if (state === "absent") t.memory_absent++;
      else t.memory_errors++;
      t.memory_last = state;
    }
    if (r.at > t.last_seen) t.last_seen = r.at;
    t.last_status = r.status;
    if (r.model !== null) t.last_model = r.model;
  }

  /** Drops the least recently counted row: a scan, only when a new row finds the table full. */
  private evictTool(): void {
    let oldest: ToolEntry | undefined;
    let oldestList: ToolEntry[] | undefined;
    let oldestId = "";
    for (const [id, list] of this.tools) {
      for (const e of list) {
        if (oldest === undefined || e.touched < oldest.touched) {
          oldest = e;
          oldestList = list;
          oldestId = id;
        }
      }
    }
    if (oldest === undefined) return;
    oldestList!.splice(oldestList!.indexOf(oldest), 1);
    if (oldestList!.length === 0) this.tools.delete(oldestId);
    this.toolCount--;
  }

  private countMemory(userId: string, m: MemoryVerdict, at: number): void {
    let row = this.memory.get(userId);
    if (row === undefined) {
      if (this.memory.size >= this.o.memoryIds) {
        let oldest: MemoryEntry | undefined;
        for (const e of this.memory.values()) if (oldest === undefined || e.touched < oldest.touched) oldest = e;
        this.memory.delete(oldest!.user_id);
      }
      row = { user_id: userId, calls: 0, used: 0, context_added: 0, errors: 0, absent: 0, last_state: m.state, last_error: null, last_at: at, touched: 0 };
      this.memory.set(userId, row);
    }
    row.touched = this.totalRequests;
    row.calls++;
    if (m.state === "used") row.used++;
    else if (m.state === "absent") row.absent++;
    else row.errors++;
    if (m.context_added === true) row.context_added++;
    if (m.error !== null) row.last_error = m.error;
    row.last_state = m.state;
    if (at > row.last_at) row.last_at = at;
  }

  /** The User-Agent's first product, cached per distinct header value. */
  private agent(ua: string | null): ShortAgent {
    if (ua === null || ua === "") return NO_AGENT;
    let a = this.agents.get(ua);
    if (a === undefined) {
      if (this.agents.size >= AGENT_CACHE_MAX) this.agents.clear();
      a = shortUserAgent(ua);
      this.agents.set(ua, a);
    }
    return a;
  }

  private trimPending(): void {
    const removed = this.pending.length - this.o.recent;
    this.pending.splice(0, removed);
    for (const sub of this.subs) sub.skip = Math.max(0, sub.skip - removed);
  }

  private flushBatch(): void {
    this.batchTimer = undefined;
    if (this.pending.length > this.o.recent) this.trimPending();
    const batch = this.pending;
    this.pending = [];
    let all: Uint8Array | undefined;
    for (const sub of [...this.subs]) {
      const skip = sub.skip;
      sub.skip = 0;
      if (skip >= batch.length) continue;
      const bytes = skip === 0 ? (all ??= requestsEvent(batch)) : requestsEvent(batch.slice(skip));
      this.send(sub, bytes);
    }
  }

  private tick(): void {
    const json = JSON.stringify(this.state());
    if (json !== this.lastState) {
      this.lastState = json;
      this.broadcast(encoder.encode(`event: state\ndata: ${json}\n\n`));
    } else if (this.now() - this.lastWrite >= this.o.heartbeatMs) {
      this.broadcast(HEARTBEAT);
    }
  }

  private broadcast(bytes: Uint8Array): void {
    for (const sub of [...this.subs]) this.send(sub, bytes);
  }

  /** Queues bytes for one subscriber; one that stopped reading is dropped with an error. */
  private send(sub: Subscriber, bytes: Uint8Array): void {
    this.lastWrite = this.now();
    try {
      sub.controller.enqueue(bytes);
      if ((sub.controller.desiredSize ?? 0) < -this.o.maxQueuedBytes) {
        this.drop(sub);
        sub.controller.error(new Error("status page subscriber too slow: dropped"));
        sub.onDropped?.();
      }
    } catch {
      this.drop(sub);
    }
  }

  private drop(sub: Subscriber): void {
    if (!this.subs.delete(sub) || this.subs.size > 0) return;
    clearTimeout(this.batchTimer);
    clearInterval(this.ticker);
    this.batchTimer = this.ticker = undefined;
    this.pending = [];
    this.lastState = undefined;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }
}

/** A failed request: an error status (a client that left is not an error) or a failure after the head. */
export function isError(r: FinishedRequest): boolean {
  return (r.status >= 400 && !r.client_disconnected) || r.error !== null;
}

/**
 * The first product of a User-Agent and its version: "claude-cli/2.1.197 (external, cli)" gives
 * claude-cli and 2.1.197; "OpenAI/JS 6.49.0" gives OpenAI/JS and 6.49.0 (the part after the slash
 * is a version only when it starts with a digit).
 */
export function shortUserAgent(ua: string): ShortAgent {
  // eslint-disable-next-line no-control-regex
  const clean = ua.replace(/[\x00-\x1f\x7f]/g, "").trim();
  const space = clean.search(/\s/);
  const token = (space < 0 ? clean : clean.slice(0, space)).slice(0, 80);
  if (token === "") return NO_AGENT;
  const slash = token.indexOf("/");
  if (slash > 0 && /\d/.test(token[slash + 1] ?? "")) {
    const rest = token.slice(slash + 1);
    const end = rest.indexOf("/");
    return { product: token.slice(0, slash), version: end < 0 ? rest : rest.slice(0, end) };
  }
  const next = space < 0 ? "" : clean.slice(space).trim().split(/\s/, 1)[0]!;
  return { product: token, version: /^\d/.test(next) ? next.slice(0, 40) : null };
}

function cut(s: string | null): string | null {
  return s !== null && s.length > TEXT_MAX ? s.slice(0, TEXT_MAX) + "…" : s;
}

/** The display fields of a record; long text is cut (only named fields leave: nothing else the caller added). */
function requestRow(r: FinishedRequest): RequestRow {
  return {
    id: cut(r.id)!,
    at: r.at,
    method: cut(r.method)!,
    path: cut(r.path)!,
    status: r.status,
    duration_ms: r.duration_ms,
    ttfb_ms: r.ttfb_ms,
    user_id: r.user_id,
    decided_by: r.decided_by,
    rule: cut(r.rule),
    tool: cut(r.tool),
    user_agent: cut(r.user_agent),
    model: cut(r.model),
    input_tokens: r.input_tokens,
    output_tokens: r.output_tokens,
    bytes_in: r.bytes_in,
    bytes_out: r.bytes_out,
    error_code: cut(r.error_code),
    error: cut(r.error),
    client_disconnected: r.client_disconnected,
    memory: r.memory && { state: r.memory.state, context_added: r.memory.context_added, error: cut(r.memory.error) },
  };
}

function toolRow(t: ToolEntry): ToolRow {
  const { touched: _touched, ...row } = t;
  return { ...row, user_agent: cut(row.user_agent), rule: cut(row.rule), last_model: cut(row.last_model) };
}

function requestsEvent(batch: readonly FinishedRequest[]): Uint8Array {
  return encoder.encode(`event: requests\ndata: ${JSON.stringify(batch.map(requestRow))}\n\n`);
}
