import { describe, expect, test } from "bun:test";
import { CallGate, type Admission, type Release } from "../src/call-gate.ts";

/** Enters, expecting a slot at once: the gate must not have queued the call. */
const immediate = async (gate: CallGate): Promise<Release> => {
  let queued = false;
  const admission = gate.enter(() => (queued = true));
  if (queued) throw new Error("expected a slot at once, got a wait");
  const a = await admission;
  expect(a).toMatchObject({ waitedMs: 0, gotSlot: true });
  return a.release;
};
/** Enters, expecting the call to wait. */
const waits = (gate: CallGate): Promise<Admission> => {
  let queued = false;
  const admission = gate.enter(() => (queued = true));
  if (!queued) throw new Error("expected a wait, got a slot at once");
  return admission;
};

describe("CallGate", () => {
  test("up to the limit at once; the next waits until a slot frees, then holds it", async () => {
    const gate = new CallGate(2, 10_000);
    const a = await immediate(gate);
    await immediate(gate);
    const c = waits(gate);
    expect(gate.running).toBe(2);
    expect(gate.waiting).toBe(1);
    a();
    const got = await c;
    expect(got.gotSlot).toBe(true);
    expect(got.waitedMs).toBeGreaterThanOrEqual(0);
    expect(gate.running).toBe(2);
    expect(gate.waiting).toBe(0);
    got.release();
    expect(gate.running).toBe(1);
  });

  test("waiters get slots first in, first out, and a new call does not jump the queue", async () => {
    const gate = new CallGate(1, 10_000);
    const first = await immediate(gate);
    const order: number[] = [];
    const queued = [1, 2, 3].map((n) => waits(gate).then((a) => (order.push(n), a)));
    first();
    const one = await queued[0]!;
    // A slot is taken and two wait: a new call queues behind them.
    const fourth = waits(gate).then((a) => (order.push(4), a.release()));
    one.release();
    (await queued[1]!).release();
    (await queued[2]!).release();
    await fourth;
    expect(order).toEqual([1, 2, 3, 4]);
    expect(gate.running).toBe(0);
  });

  test("a call that waited its time goes on without a slot; its release frees nothing", async () => {
    const gate = new CallGate(1, 30);
    const held = await immediate(gate);
    const late = await waits(gate);
    expect(late.gotSlot).toBe(false);
    expect(late.waitedMs).toBeGreaterThanOrEqual(25);
    expect(gate.waiting).toBe(0);
    late.release();
    expect(gate.running).toBe(1);
    held();
    expect(gate.running).toBe(0);
    // The gate still works after an expiry.
    await immediate(gate);
  });

  test("expiry lets go only the calls that are due", async () => {
    const gate = new CallGate(1, 200);
    await immediate(gate);
    const outcome = await waits(gate);
    expect(outcome.gotSlot).toBe(false);
    // Queued after the first expired: it waits its own full time, not the rest of the earlier one's.
    const next = await waits(gate);
    expect(next.gotSlot).toBe(false);
    expect(next.waitedMs).toBeGreaterThanOrEqual(195);
  });

  test("a release is counted once however often it is called", async () => {
    const gate = new CallGate(1, 10_000);
    const r = await immediate(gate);
    const next = waits(gate);
    r();
    r();
    const got = await next;
    expect(gate.running).toBe(1);
    got.release();
    got.release();
    expect(gate.running).toBe(0);
  });

  test("a limit or a wait of 0 turns the gate off", async () => {
    for (const gate of [new CallGate(0, 20), new CallGate(2, 0)]) {
      for (let i = 0; i < 100; i++) await immediate(gate);
      expect(gate.running).toBe(0);
      expect(gate.waiting).toBe(0);
    }
  });

  test("a long queue is served in order and its storage is reclaimed", async () => {
    const gate = new CallGate(1, 60_000);
    let release = await immediate(gate);
    const queued = Array.from({ length: 3000 }, () => waits(gate));
    for (const q of queued) {
      release();
      const a = await q;
      expect(a.gotSlot).toBe(true);
      release = a.release;
    }
    release();
    expect(gate.running).toBe(0);
    expect(gate.waiting).toBe(0);
  });
});
