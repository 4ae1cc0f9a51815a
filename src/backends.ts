// The backends (LiteLLM replicas): least-in-flight choice, cooldown after failures, probing before reuse.

/** One backend and what memproxy knows about it. */
export interface Backend {
  readonly url: string;
  inFlight: number;
  /** 0 when up; otherwise when its cooldown ends (ms since epoch). */
  downUntil: number;
  /** Why it was last marked down. */
  lastError: string | null;
  /** A probe is under way: do not start another. */
  probing: boolean;
}

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
  /** Called when a backend changes state (for logs). */
  onChange?: (backend: Backend, up: boolean, reason: string) => void;
}

/** Path of LiteLLM's cheap liveness check: never its /health, which calls every model. */
export const LIVENESS_PATH = "/health/liveliness";

/**
 * Spreads requests over backends by least in-flight requests. A backend that refused a connection
 * or timed out is down for the cooldown; then it is probed (liveness) and gets traffic only once
 * the probe succeeds. When every backend is down, requests still go to the one down the longest,
 * so that a lone backend coming back is used at once.
 */
export class BackendPool {
  readonly backends: Backend[];
  private probeTimer: ReturnType<typeof setInterval> | undefined;

  constructor(
    urls: readonly string[],
    private readonly options: PoolOptions,
  ) {
    this.backends = urls.map((url) => ({ url, inFlight: 0, downUntil: 0, lastError: null, probing: false }));
  }

  get size(): number {
    return this.backends.length;
  }

  /**
   * Chooses a backend for one request, skipping `tried`.
   * @returns the backend, or undefined when every backend was tried.
   */
  pick(tried?: ReadonlySet<Backend>): Backend | undefined {
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
  markDown(b: Backend, reason: string): void {
    const wasUp = b.downUntil === 0;
    b.downUntil = Date.now() + this.options.cooldownMs;
    b.lastError = reason;
    if (wasUp) this.options.onChange?.(b, false, reason);
    this.probeTimer ??= setInterval(() => this.probeDue(), Math.max(50, Math.min(this.options.cooldownMs, 5_000)));
  }

  /** A successful answer proves the backend up again. */
  markUp(b: Backend): void {
    if (b.downUntil === 0) return;
    b.downUntil = 0;
    this.options.onChange?.(b, true, "answered");
    this.stopProbingIfAllUp();
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

  private stopProbingIfAllUp(): void {
    if (this.probeTimer && this.backends.every((b) => b.downUntil === 0)) {
      clearInterval(this.probeTimer);
      this.probeTimer = undefined;
    }
  }

  /** Checks every backend's liveness now (for GET /health), updating their state. */
  async checkAll(timeoutMs: number): Promise<BackendStatus[]> {
    return Promise.all(
      this.backends.map(async (b) => {
        const up = await checkLiveness(b.url, timeoutMs);
        if (up) this.markUp(b);
        return { url: b.url, status: up ? "up" : "down", in_flight: b.inFlight, last_error: up ? null : b.lastError } as BackendStatus;
      }),
    );
  }

  /** Stops the background probes. */
  close(): void {
    clearInterval(this.probeTimer);
    this.probeTimer = undefined;
  }
}

/** GET <backend>/health/liveliness within the timeout; true on a 2xx answer. */
export async function checkLiveness(url: string, timeoutMs: number): Promise<boolean> {
  try {
    const res = await fetch(url + LIVENESS_PATH, {
      signal: AbortSignal.timeout(timeoutMs),
      headers: { "accept-encoding": "identity" },
    });
    await res.arrayBuffer();
    return res.ok;
  } catch {
    return false;
  }
}
