// Keeping backend calls on kept-alive connections. Bun's fetch keeps at most 64 idle connections (for
// all hosts together): when more calls than that end at once, the connections beyond 64 are closed, and
// the next calls each pay for a new one, on memproxy's side and on LiteLLM's.
//
// So a call beyond the limit waits, briefly, for a running one to finish and hand over its connection.
// It never waits long: an LLM call can take minutes, so after `waitMs` the call goes anyway, on a
// connection of its own. Only the wait for the answer counts: a stream's slot is freed at its head.

/** Frees a call's slot; calling it again does nothing. */
export type Release = () => void;

/** What a call got: its release, and how its wait went (0 ms for a call admitted at once). */
export interface Admission {
  readonly release: Release;
  /** How long it waited, in ms. */
  readonly waitedMs: number;
  /** True when it got a slot; false when the wait ran out and it went anyway (its release does nothing). */
  readonly gotSlot: boolean;
}

interface Waiter {
  readonly since: number;
  readonly go: (slot: boolean) => void;
}

const NOOP: Release = () => {};
const FREE: Admission = Object.freeze({ release: NOOP, waitedMs: 0, gotSlot: true });

/**
 * Admits backend calls: up to `limit` at once straight away, later ones first in, first out as
 * slots free up, each waiting at most `waitMs`. A limit or wait of 0 admits every call at once.
 */
export class CallGate {
  private active = 0;
  private readonly queue: (Waiter | undefined)[] = [];
  private head = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    readonly limit: number,
    readonly waitMs: number,
  ) {}

  /** Calls running with a slot now. */
  get running(): number {
    return this.active;
  }

  /** Calls waiting for a slot now. */
  get waiting(): number {
    return this.queue.length - this.head;
  }

  /**
   * Admits one call: at once when a slot is free (or the gate is off), else once a slot frees up or the
   * wait runs out.
   * @param queued called at once when the call has to wait.
   */
  enter(queued?: () => void): Promise<Admission> {
    if (this.limit <= 0 || this.waitMs <= 0) return Promise.resolve(FREE);
    if (this.active < this.limit && this.waiting === 0) return Promise.resolve({ release: this.slot(), waitedMs: 0, gotSlot: true });
    queued?.();
    return new Promise<Admission>((resolve) => {
      const since = performance.now();
      this.queue.push({
        since,
        go: (slot) => resolve({ release: slot ? this.slot() : NOOP, waitedMs: performance.now() - since, gotSlot: slot }),
      });
      this.timer ??= setTimeout(() => this.expire(), this.waitMs);
    });
  }

  private slot(): Release {
    this.active++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.active--;
      this.admit();
    };
  }

  /** Hands free slots to the longest-waiting calls. */
  private admit(): void {
    while (this.active < this.limit && this.waiting > 0) this.next()!.go(true);
  }

  /** Lets go every call that has waited `waitMs`, without a slot; re-arms for the next one due. */
  private expire(): void {
    this.timer = undefined;
    const now = performance.now();
    while (this.waiting > 0 && now - this.queue[this.head]!.since >= this.waitMs - 1) this.next()!.go(false);
    if (this.waiting > 0) this.timer = setTimeout(() => this.expire(), Math.max(1, this.queue[this.head]!.since + this.waitMs - now));
  }

  private next(): Waiter | undefined {
    const w = this.queue[this.head];
    this.queue[this.head++] = undefined;
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue.splice(0, this.head);
      this.head = 0;
    } else if (this.head === this.queue.length) {
      this.queue.length = 0;
      this.head = 0;
    }
    return w;
  }
}
