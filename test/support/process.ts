// Processes, ports, output lines and temporary folders for tests: one helper for each, used by every test.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, lines } from "../../scripts/bench/procs.ts";

export { freePort, lines };

/** What a process printed and how it ended. */
export interface Finished {
  stdout: string;
  stderr: string;
  /** Its exit code; 128 + the signal's number when a signal ended it. */
  code: number;
}

/**
 * Runs `cmd` to its end and collects its output (stdin closed, or `stdin`'s text).
 * @param options.group run it as the leader of a process group of its own (under setsid, same pid): when it
 *   exits, what it started and left running is killed, so nothing it started outlives it or holds its output
 *   open. `started` gets the pid (the group's id) at once, for a cleanup that must also cover a test that
 *   timed out while the command ran.
 */
export async function runToEnd(
  cmd: string[],
  options: { cwd?: string; env?: Record<string, string | undefined>; stdin?: string; group?: boolean; started?: (pid: number) => void } = {},
): Promise<Finished> {
  const proc = Bun.spawn(options.group ? ["setsid", ...cmd] : cmd, {
    cwd: options.cwd,
    env: options.env ?? process.env,
    stdin: options.stdin === undefined ? "ignore" : new TextEncoder().encode(options.stdin),
    stdout: "pipe",
    stderr: "pipe",
  });
  options.started?.(proc.pid);
  const exited = options.group ? proc.exited.then((code) => (killGroup(proc.pid, "SIGKILL"), code)) : proc.exited;
  const [stdout, stderr, code] = await Promise.all([proc.stdout.text(), proc.stderr.text(), exited]);
  return { stdout, stderr, code };
}

/**
 * Waits until every process in `pids` (not necessarily our children) has ended, or `withinMs` has passed. A
 * zombie counts as ended: it runs nothing, and the init of some containers never reaps it. The kernel tells:
 * Python waits on each process's pidfd, which becomes readable when the process ends (Linux 5.3).
 * @returns the pids still running.
 */
async function untilGone(pids: number[], withinMs: number | null): Promise<number[]> {
  if (pids.length === 0) return [];
  const waiter = Bun.spawn(["python3", "-c", PIDFD_WAIT, String(withinMs ?? -1), ...pids.map(String)], { stdout: "pipe", stderr: "pipe", stdin: "ignore" });
  const [out, err, code] = await Promise.all([waiter.stdout.text(), waiter.stderr.text(), waiter.exited]);
  if (code !== 0) throw new Error(`waiting for pids ${pids.join(" ")} failed: ${err}`);
  return out.split(/\s+/).filter(Boolean).map(Number);
}

/** argv: the limit in ms (negative: none), then the pids; prints the pids still running at the end. */
const PIDFD_WAIT = `
import os, select, sys, time
limit = float(sys.argv[1])
deadline = time.monotonic() + limit / 1000 if limit >= 0 else None
poll, waiting = select.poll(), {}
for p in map(int, sys.argv[2:]):
    try:
        fd = os.pidfd_open(p)
    except ProcessLookupError:
        continue
    poll.register(fd, select.POLLIN)
    waiting[fd] = p
while waiting:
    left = None if deadline is None else max(0, deadline - time.monotonic()) * 1000
    events = poll.poll(left)
    if not events:
        break
    for fd, _ in events:
        poll.unregister(fd)
        waiting.pop(fd)
print(" ".join(map(str, waiting.values())))
`;

/** Resolves when the process `pid` (not necessarily our child) has ended (a zombie counts as ended). */
export async function waitForExit(pid: number): Promise<void> {
  await untilGone([pid], null);
}

/** Whether a process with this pid exists now. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * The processes still there among `pids` (each as "pid command line"), after waiting up to `withinMs` for
 * signals already sent to take effect (a zombie counts as gone).
 */
export async function survivors(pids: number[], withinMs = 5_000): Promise<string[]> {
  return (await untilGone(pids, withinMs)).map((p) => `${p} ${commandLine(p)}`);
}

/** The pids in process group `pgid` now (from /proc, or from ps where there is none). */
export function processGroup(pgid: number): number[] {
  if (existsSync("/proc/self/stat")) {
    return readdirSync("/proc")
      .filter((name) => /^\d+$/.test(name) && processStat(Number(name))?.pgrp === pgid)
      .map(Number);
  }
  const ps = Bun.spawnSync(["ps", "-A", "-o", "pid=,pgid="]);
  return ps.stdout
    .toString()
    .split("\n")
    .map((l) => l.trim().split(/\s+/).map(Number))
    .filter(([pid, group]) => group === pgid && pid !== undefined)
    .map(([pid]) => pid!);
}

/** Sends `signal` to every process of group `pgid`; nothing if the group is gone already. */
export function killGroup(pgid: number, signal: NodeJS.Signals): void {
  // -0 and -1 would signal the test runner's own group, or every process of the user.
  if (!Number.isInteger(pgid) || pgid <= 1) throw new Error(`killGroup: ${pgid} is not a process group of a child`);
  try {
    process.kill(-pgid, signal);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ESRCH") throw err;
  }
}

/** A process's group, from /proc. */
function processStat(pid: number): { pgrp: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name in parentheses may contain spaces: the fields after it are state, ppid, pgrp, ...
    const [, , pgrp] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return { pgrp: Number(pgrp) };
  } catch {
    return undefined;
  }
}

/** A process's command line, "" once it is gone. */
function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ").trim();
  } catch {
    return "";
  }
}

/** A child's stdout or stderr: a stream when piped, else a file descriptor or nothing. */
type ChildOutput = ReadableStream<Uint8Array> | number | undefined;

/** Lines of output as they arrive, with waits for the ones a test needs. */
export class LineLog {
  /**
   * The lines a process writes to stdout and stderr (those of the two that are piped), as they arrive.
   * @returns the log, and its exit code once the streams have ended (the log is ended then; a stream that
   *   fails to read ends it too).
   */
  static of(proc: { readonly stdout: ChildOutput; readonly stderr: ChildOutput; readonly exited: Promise<number> }): {
    log: LineLog;
    exited: Promise<number>;
  } {
    const log = new LineLog();
    const pump = async (stream: ChildOutput) => {
      if (stream instanceof ReadableStream) for await (const line of lines(stream)) log.push(line);
    };
    const exited = Promise.allSettled([pump(proc.stdout), pump(proc.stderr)]).then(() => {
      log.end();
      return proc.exited;
    });
    return { log, exited };
  }

  readonly all: string[] = [];
  private readonly watchers: { test: (l: string) => boolean; count: number; seen: number; resolve: (l: string) => void; reject: (e: Error) => void }[] = [];
  private ended = false;

  /** Adds a line; wakes whoever waits for it. */
  push(line: string): void {
    this.all.push(line);
    for (let i = this.watchers.length - 1; i >= 0; i--) {
      const w = this.watchers[i]!;
      if (w.test(line) && ++w.seen >= w.count) this.watchers.splice(i, 1)[0]!.resolve(line);
    }
  }

  /** No more lines will come: waits still open fail, with everything seen. */
  end(): void {
    this.ended = true;
    for (const w of this.watchers.splice(0)) w.reject(new Error(`output ended before the line that was waited for; output:\n${this.all.join("\n")}`));
  }

  /**
   * Resolves with the `count`-th line (default the first) containing `needle` (a string or a pattern),
   * counting lines from index `from` on (those already there included).
   */
  waitFor(needle: string | RegExp, options: { count?: number; from?: number } = {}): Promise<string> {
    const test = (l: string) => (typeof needle === "string" ? l.includes(needle) : needle.test(l));
    const count = options.count ?? 1;
    const already = this.all.slice(options.from ?? 0).filter(test);
    if (already.length >= count) return Promise.resolve(already[count - 1]!);
    return new Promise<string>((resolve, reject) => {
      if (this.ended) return reject(new Error(`output ended without ${needle}; output:\n${this.all.join("\n")}`));
      this.watchers.push({ test, count, seen: already.length, resolve, reject });
    });
  }
}

/** A temporary folder removed when disposed (`using dir = tempDir("x")`, or `dir[Symbol.dispose]()` in afterAll). */
export function tempDir(prefix: string): { readonly path: string; file(name: string): string } & Disposable {
  const path = mkdtempSync(join(tmpdir(), `memproxy-${prefix}-`));
  return {
    path,
    file: (name) => join(path, name),
    [Symbol.dispose]: () => rmSync(path, { recursive: true, force: true }),
  };
}
