// The test helpers that run processes: a helper that leaked a process or hung would break other tests.
import { describe, expect, test } from "bun:test";
import { killGroup, runToEnd, survivors, waitForExit } from "./process.ts";

describe("runToEnd", () => {
  test("collects what a command printed and its exit code", async () => {
    expect(await runToEnd(["sh", "-c", "echo out; echo err >&2; exit 3"])).toEqual({ stdout: "out\n", stderr: "err\n", code: 3 });
    expect((await runToEnd(["cat"], { stdin: "given" })).stdout).toBe("given");
  });

  test("a command run as its own group: what it left running is killed when it exits, and does not hold its output", async () => {
    let pid = 0;
    // The background sleep keeps stdout open: without the group, collecting the output would wait for it.
    const run = await runToEnd(["sh", "-c", "sleep 60 & echo $!"], { group: true, started: (p) => (pid = p) });
    expect(run).toMatchObject({ code: 0 });
    const child = Number(run.stdout.trim());
    expect(child).toBeGreaterThan(1);
    expect(await survivors([child], 0)).toEqual([]);
    expect(pid).toBeGreaterThan(1);
  });
});

describe("survivors and waitForExit", () => {
  test("wait for the processes to end, not for a time; a zombie counts as ended", async () => {
    const sleeper = Bun.spawn(["sleep", "60"]);
    const zombie = Bun.spawn(["true"]); // its exit is not read here yet: a zombie until Bun reaps it
    expect(await survivors([sleeper.pid], 0)).toEqual([`${sleeper.pid} sleep 60`]);
    const waited = waitForExit(sleeper.pid);
    sleeper.kill("SIGKILL");
    await waited;
    expect(await survivors([sleeper.pid, zombie.pid], 0)).toEqual([]);
    await zombie.exited;
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
