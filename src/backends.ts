// The backends (LiteLLM replicas): least-in-flight choice, cooldown after failures, probing before reuse,
// and the retry of a call whose connection was refused.
import { redactUrl } from "./address.ts";
import { CallGate } from "./call-gate.ts";
import { ProxyError } from "./errors.ts";
import { BackendFailure, CONNECTION_REFUSED, forward, isConnectionRefused, type ForwardObserver, type ForwardOptions } from "./proxy.ts";

export interface BackendStatus {
  url: string;
  status: "up" | "down";
  in_flight: number;
  last_error: string | null;
}

export interface PoolOptions {
  /** How long a failed backend gets no traffic before it is probed again, in ms. */
  cooldownMs: number;
  /** Timeout of the liveness probe, in ms. */
  probeTimeoutMs: number;
  /** Backend calls awaiting their answer at once before a call waits for a kept-alive connection (0: no limit). */
  keepaliveLimit: number;
  /** Longest such wait, in ms. */
  keepaliveWaitMs: number;
  /** Called when a backend changes state (for logs). */
  onChange?: (url: string, up: boolean, reason: string) => void;
}

/** Watches one call through the pool: the forward's observer, plus the pool's own events. */
export interface PoolObserver extends ForwardObserver {
  /** An attempt failed before its answer's head (a retry may follow). */
  backendFailed(err: ProxyError): void;
  /** The call has to wait for a kept-alive connection (memproxy.forward.keepalive_limit). */
  keepaliveWaitStarted(): void;
  /** The wait is over: how long it took, and whether it got a kept-alive connection. */
  keepaliveWaited(ms: number, gotConnection: boolean): void;
  /** The connection to `from` was refused, and the call goes to `to` instead. */
  retrying(from: string, to: string): void;
}

/**
 * One call through the pool: what forward() needs, without the backend (the pool chooses it). However many
 * backends it tries, `onSettled` runs once, when the last attempt is over; `onLongCall` may run on each.
 */
export type PoolCall = Omit<ForwardOptions, "backend" | "observer"> & {
  observer?: PoolObserver;
  /** Whether the body may be sent again on another backend (it was read ahead, not streamed). */
  retryable: boolean;
};

/** Path of LiteLLM's cheap liveness check: never its /health, which calls every model. */
export const LIVENESS_PATH = "/health/liveliness";

interface Backend {
  readonly url: string;
  inFlight: number;
  /** 0 when up; otherwise when its cooldown ends (ms since epoch). */
  downUntil: number;
  /** Why it was last marked down. */
  lastError: string | null;
  /** A probe is under way: do not start another. */
  probing: boolean;
}

/**
 * Spreads requests over backends by least in-flight requests. A backend that refused a connection or timed
 * out is down for the cooldown; then it is probed (liveness) and gets traffic only once the probe succeeds.
 * When every backend is down, requests still go to the one down the longest, so that a lone backend coming
 * back is used at once. It keeps backend calls on fetch's kept-alive connections (CallGate).
 */
export class BackendPool {
  private readonly backends: Backend[];
  private readonly gate: CallGate;
  private probeTimer: ReturnType<typeof setInterval> | undefined;

  constructor(
    urls: readonly string[],
    private readonly options: PoolOptions,
  ) {
    this.backends = urls.map((url) => ({ url, inFlight: 0, downUntil: 0, lastError: null, probing: false }));
    this.gate = new CallGate(options.keepaliveLimit, options.keepaliveWaitMs);
  }

  /** The backends' URLs, in configured order. */
  get urls(): string[] {
    return this.backends.map((b) => b.url);
  }

  /** How many backends there are. */
  get size(): number {
    return this.backends.length;
  }

  /** Whether this pool was built with exactly these settings (a reload may keep it). */
  sameAs(urls: readonly string[], options: Omit<PoolOptions, "onChange">): boolean {
    const o = this.options;
    return (
      urls.join("\n") === this.urls.join("\n") &&
      o.cooldownMs === options.cooldownMs &&
      o.probeTimeoutMs === options.probeTimeoutMs &&
      o.keepaliveLimit === options.keepaliveLimit &&
      o.keepaliveWaitMs === options.keepaliveWaitMs
    );
  }

  /**
   * Forwards one call to the best backend. A call whose connection was refused is retried on another
   * backend when its body can be sent again; a call that timed out or was refused marks its backend down.
   * @returns the backend's answer; throws ProxyError when no backend answered.
   */
  async forward(req: Request, pathAndQuery: string, call: PoolCall): Promise<Response> {
    const { observer } = call;
    // One kept-alive slot for all attempts, held until the answer (a stream's head, or a small body whole) is in.
    let waited = false;
    const admission = await this.gate.enter(() => {
      waited = true;
      observer?.keepaliveWaitStarted();
    });
    if (waited) observer?.keepaliveWaited(admission.waitedMs, admission.gotSlot);
    let tried: Set<Backend> | undefined;
    try {
      for (let backend = this.pick(); ; ) {
        const release = this.acquire(backend);
        // An attempt that fails has settled before forward() throws; the one that answers may settle later
        // (its stream's end): only then is the whole call over.
        let answered = false;
        let settledEarly = false;
        try {
          const res = await forward(req, pathAndQuery, {
            ...call,
            backend: backend.url,
            observer,
            onSettled: () => {
              release();
              if (answered) call.onSettled?.();
              else settledEarly = true;
            },
          });
          answered = true;
          if (settledEarly) call.onSettled?.();
          this.markUp(backend);
          return res;
        } catch (err) {
          const other = this.retryAfter(backend, err, call, (tried ??= new Set()));
          if (!other) {
            call.onSettled?.();
            throw err;
          }
          observer?.retrying(backend.url, other.url);
          backend = other;
        }
      }
    } finally {
      admission.release();
    }
  }

  /**
   * After an attempt on `backend` failed with `err`: marks the backend down when it was unreachable or too slow,
   * and chooses the backend to try next (only after a refused connection, with a body that can be sent again).
   * @returns that backend, or undefined when the call fails with `err`.
   */
  private retryAfter(backend: Backend, err: unknown, call: PoolCall, tried: Set<Backend>): Backend | undefined {
    if (!(err instanceof ProxyError)) return undefined;
    call.observer?.backendFailed(err);
    if (!(err instanceof BackendFailure) || (err.kind !== "connect" && err.kind !== "timeout")) return undefined;
    this.markDown(backend, err.message);
    tried.add(backend);
    return err.kind === "connect" && call.retryable ? this.pick(tried) : undefined;
  }

  /** Counts a call in flight on `b` until the returned release runs (once). */
  private acquire(b: Backend): () => void {
    b.inFlight++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      b.inFlight--;
    };
  }

  /** Chooses a backend, skipping `tried`; undefined when every backend was tried. */
  private pick(): Backend;
  private pick(tried: ReadonlySet<Backend>): Backend | undefined;
  private pick(tried?: ReadonlySet<Backend>): Backend | undefined {
    const list = this.backends;
    if (list.length === 1) return tried?.has(list[0]!) ? undefined : list[0];
    let best: Backend | undefined;
    let fallback: Backend | undefined;
    for (const b of list) {
      if (tried?.has(b)) continue;
      if (b.downUntil === 0) {
        if (!best || b.inFlight < best.inFlight) best = b;
      } else if (!fallback || b.downUntil < fallback.downUntil) {
        fallback = b;
      }
    }
    return best ?? fallback;
  }

  /** Records a connection failure or timeout: no traffic until the cooldown ends and a probe succeeds. */
  /** @param announce false when whoever asked reports it (checkAll's callers: the start-up line, /health). */
  private markDown(b: Backend, reason: string, announce = true): void {
    const wasUp = b.downUntil === 0;
    b.downUntil = Date.now() + this.options.cooldownMs;
    b.lastError = reason;
    if (wasUp && announce) this.options.onChange?.(redactUrl(b.url), false, reason);
    this.probeTimer ??= setInterval(() => this.probeDue(), Math.max(50, Math.min(this.options.cooldownMs, 5_000)));
  }

  /** A successful answer proves the backend up again. */
  private markUp(b: Backend): void {
    if (b.downUntil === 0) return;
    b.downUntil = 0;
    this.options.onChange?.(redactUrl(b.url), true, "answered");
    if (this.probeTimer && this.backends.every((x) => x.downUntil === 0)) {
      clearInterval(this.probeTimer);
      this.probeTimer = undefined;
    }
  }

  /** Probes every backend whose cooldown ended. */
  private probeDue(): void {
    const now = Date.now();
    for (const b of this.backends) {
      if (b.downUntil !== 0 && b.downUntil <= now && !b.probing) void this.probe(b);
    }
  }

  private async probe(b: Backend): Promise<void> {
    b.probing = true;
    const ok = await checkLiveness(b.url, this.options.probeTimeoutMs);
    b.probing = false;
    if (b.downUntil === 0) return;
    if (ok) this.markUp(b);
    else b.downUntil = Date.now() + this.options.cooldownMs;
  }

  /** Every backend's state as known now, without asking any (for the status page). */
  status(): BackendStatus[] {
    return this.backends.map((b) => ({ url: redactUrl(b.url), status: b.downUntil === 0 ? "up" : "down", in_flight: b.inFlight, last_error: b.lastError }));
  }

  /**
   * Checks every backend's liveness now (at start, for GET /health), updating their state: one that does not
   * answer is down, as after a failed call, so status() says what /health says and the probes watch for its return.
   */
  checkAll(timeoutMs: number): Promise<BackendStatus[]> {
    // Callers at the same time share one round of probes: /health/readiness answers without a key, and a
    // flood of it must not become a flood of probes (each of which can mark a backend down).
    this.checking ??= this.probeAll(timeoutMs).finally(() => (this.checking = undefined));
    return this.checking;
  }

  private checking: Promise<BackendStatus[]> | undefined;

  private probeAll(timeoutMs: number): Promise<BackendStatus[]> {
    return Promise.all(
      this.backends.map(async (b) => {
        const probe = await checkLiveness(b.url, timeoutMs, true);
        if (probe.ok) this.markUp(b);
        else this.markDown(b, probe.error, false);
        return { url: redactUrl(b.url), status: probe.ok ? "up" : "down", in_flight: b.inFlight, last_error: probe.ok ? null : b.lastError } as BackendStatus;
      }),
    );
  }

  /** Calls awaiting a kept-alive connection now. */
  get keepaliveWaiting(): number {
    return this.gate.waiting;
  }

  /** Stops the background probes. */
  close(): void {
    clearInterval(this.probeTimer);
    this.probeTimer = undefined;
  }
}

/**
 * GET <backend>/health/liveliness within the timeout.
 * @returns true on a 2xx answer; with `explain`, also why not.
 */
export async function checkLiveness(url: string, timeoutMs: number): Promise<boolean>;
export async function checkLiveness(url: string, timeoutMs: number, explain: true): Promise<{ ok: boolean; error: string }>;
export async function checkLiveness(url: string, timeoutMs: number, explain = false): Promise<boolean | { ok: boolean; error: string }> {
  let ok = false;
  let error = "";
  try {
    const res = await fetch(url + LIVENESS_PATH, {
      signal: AbortSignal.timeout(timeoutMs),
      headers: { "accept-encoding": "identity" },
    });
    await res.arrayBuffer();
    ok = res.ok;
    if (!ok) error = `${LIVENESS_PATH} answered ${res.status}`;
  } catch (err) {
    const code = (err as { code?: string; name?: string }).code ?? (err as Error).name;
    error = isConnectionRefused(code) ? CONNECTION_REFUSED : code === "TimeoutError" ? `no answer within ${timeoutMs} ms` : redactUrl((err as Error).message);
  }
  return explain ? { ok, error } : ok;
}
