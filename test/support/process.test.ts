// The test helpers that run processes: a helper that leaked a process or hung would break other tests.
import { describe, expect, test } from "bun:test";
import { killGroup, runToEnd, survivors } from "./process.ts";

describe("runToEnd", () => {
  test("collects what a command printed and its exit code", async () => {
    expect(await runToEnd(["sh", "-c", "echo out; echo err >&2; exit 3"])).toEqual({ stdout: "out\n", stderr: "err\n", code: 3 });
    expect((await runToEnd(["cat"], { stdin: "given" })).stdout).toBe("given");
  });

  test("past timeoutMs the command and the children it started are killed; what came until then is kept", async () => {
    const run = await runToEnd(["sh", "-c", "sleep 60 & echo $!; sleep 60"], { timeoutMs: 300 });
    expect(run.code).toBe(137);
    const child = Number(run.stdout.trim());
    expect(child).toBeGreaterThan(1);
    expect(await survivors([child])).toEqual([]);
  });
});

describe("killGroup", () => {
  // 0 and 1 are refused by the same check (they would signal the runner's own group, or every process of the
  // user); the test passes values that are harmless even to a killGroup without the check.
  test("refuses what is not a child's process group", () => {
    for (const bad of [Number.NaN, -5, 0.5]) expect(() => killGroup(bad, "SIGCONT")).toThrow("not a process group");
  });

  test("a group that is gone already is not an error", async () => {
    const gone = Bun.spawn(["true"]);
    await gone.exited;
    expect(() => killGroup(gone.pid, "SIGTERM")).not.toThrow();
  });
});
