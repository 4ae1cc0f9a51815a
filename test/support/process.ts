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
  /** Its exit code; 128 + the signal's number when a signal ended it (137 when `timeoutMs` ran out). */
  code: number;
}

/**
 * Runs `cmd` to its end and collects its output (stdin closed, or `stdin`'s text). With `timeoutMs`, a process
 * still running then is killed with SIGKILL, and reported (code 137) with what it had printed, even if
 * children it started still hold its output open.
 */
export async function runToEnd(
  cmd: string[],
  options: { cwd?: string; env?: Record<string, string | undefined>; stdin?: string; timeoutMs?: number } = {},
): Promise<Finished> {
  const limited = options.timeoutMs !== undefined;
  // With a time limit the command leads a process group of its own (setsid execs it, same pid), so that
  // the children it started are killed with it.
  const proc = Bun.spawn(limited ? ["setsid", ...cmd] : cmd, {
    cwd: options.cwd,
    env: options.env ?? process.env,
    stdin: options.stdin === undefined ? "ignore" : new TextEncoder().encode(options.stdin),
    stdout: "pipe",
    stderr: "pipe",
  });
  // Past the time, once it has exited, its output is what came until then (plus a moment to drain the pipes):
  // a child that left the group may hold them open.
  let timer: Timer | undefined;
  const cut = !limited
    ? undefined
    : new Promise<void>((resolve) => (timer = setTimeout(resolve, options.timeoutMs)))
        .then(() => killGroup(proc.pid, "SIGKILL"))
        .then(() => proc.exited)
        .then(() => Bun.sleep(DRAIN_MS));
  try {
    const [stdout, stderr, code] = await Promise.all([textOf(proc.stdout, cut), textOf(proc.stderr, cut), proc.exited]);
    return { stdout, stderr, code };
  } finally {
    clearTimeout(timer);
  }
}

/** How long runToEnd() still reads a timed-out process's output after it exited. */
const DRAIN_MS = 200;

/** A stream's text to its end, or (with `cut`) until `cut` resolves. */
async function textOf(stream: ReadableStream<Uint8Array>, cut?: Promise<void>): Promise<string> {
  if (!cut) return stream.text();
  const reader = stream.getReader();
  void cut.then(() => reader.cancel()).catch(() => {});
  const decoder = new TextDecoder();
  let text = "";
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return text + decoder.decode();
    text += decoder.decode(value, { stream: true });
  }
}

/**
 * Resolves when the process `pid` (not necessarily our child) has exited. coreutils' `tail --pid` waits for
 * it; this process only awaits tail's exit, so nothing here spins.
 */
export async function waitForExit(pid: number): Promise<void> {
  const tail = Bun.spawn(["tail", `--pid=${pid}`, "-s", "0.05", "-f", "/dev/null"], { stdout: "ignore", stderr: "ignore", stdin: "ignore" });
  await tail.exited;
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

/** Whether a process is gone. A zombie counts as gone: it runs nothing, and the init of some containers never reaps it. */
export function gone(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "ESRCH";
  }
  return processState(pid) === "Z";
}

/** How often survivors() looks again: a timer, so the wait holds no core. */
const GONE_POLL_MS = 25;

/**
 * The processes still there among `pids` (each as "pid command line"), after waiting up to `withinMs` for
 * signals already sent to take effect. It looks again every few milliseconds on a timer, rather than
 * waitForExit()'s `tail --pid`, because to tail a zombie is alive; and tail polls too.
 */
export async function survivors(pids: number[], withinMs = 5_000): Promise<string[]> {
  const deadline = Date.now() + withinMs;
  let left = pids.filter((p) => !gone(p));
  while (left.length > 0 && Date.now() < deadline) {
    await Bun.sleep(Math.min(GONE_POLL_MS, deadline - Date.now()));
    left = left.filter((p) => !gone(p));
  }
  return left.map((p) => `${p} ${commandLine(p)}`);
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

/** A process's state letter (R, S, Z, ...), from /proc, or from ps where there is no /proc. */
function processState(pid: number): string | undefined {
  if (existsSync("/proc/self/stat")) return processStat(pid)?.state;
  return Bun.spawnSync(["ps", "-o", "stat=", "-p", String(pid)]).stdout.toString().trim()[0];
}

/** A process's state letter and process group, from /proc/PID/stat; undefined once it is gone. */
function processStat(pid: number): { state: string; pgrp: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name in parentheses may contain spaces: the fields after it are state, ppid, pgrp, ...
    const [state, , pgrp] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return { state: state!, pgrp: Number(pgrp) };
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
