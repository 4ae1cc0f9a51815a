// Processes for the benchmark: free ports, children that are always stopped, resident memory
// from /proc, waiting for a proxy's first proxied answer, and reading a stream line by line.
import { readdirSync, readFileSync } from "node:fs";
import type { Subprocess } from "bun";

/** A port on 127.0.0.1 that was free a moment ago (the OS picks it). */
export function freePort(): number {
  const probe = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = probe.port;
  probe.stop(true);
  return port;
}

const children = new Set<Subprocess>();

/** Spawns a child that stopAll() (and the bench's exit) will end, by its own pid. */
export function spawnChild(cmd: string[], options: Parameters<typeof Bun.spawn>[1] = {}): Subprocess {
  const proc = Bun.spawn(cmd, { stdin: "ignore", ...options });
  children.add(proc);
  proc.exited.then(() => children.delete(proc));
  return proc;
}

/** Ends one child: SIGTERM, then SIGKILL if it has not exited within `graceMs`. */
export async function stopChild(proc: Subprocess, graceMs = 5_000, signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  proc.kill(signal);
  const timer = setTimeout(() => proc.kill("SIGKILL"), graceMs);
  await proc.exited;
  clearTimeout(timer);
}

/** Ends every child still running. */
export async function stopAll(): Promise<void> {
  await Promise.all([...children].map((c) => stopChild(c)));
}

/** Resident memory of one process in KiB: now (VmRSS) and its peak so far (VmHWM). */
export function memoryOf(pid: number): { rssKb: number; hwmKb: number } | undefined {
  let status: string;
  try {
    status = readFileSync(`/proc/${pid}/status`, "utf8");
  } catch {
    return undefined;
  }
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? NaN);
  return { rssKb: kb("VmRSS"), hwmKb: kb("VmHWM") };
}

/** `pid` and its direct children (nginx: the master and its workers). */
export function withChildren(pid: number): number[] {
  const out = [pid];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      // The command name may hold spaces and parentheses: fields resume after the last ')'.
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === pid) out.push(Number(entry));
    } catch {
      // It exited while we looked.
    }
  }
  return out;
}

/** Summed VmRSS of several processes, KiB. */
export function rssOfAll(pids: number[]): number {
  let sum = 0;
  for (const pid of pids) sum += memoryOf(pid)?.rssKb ?? 0;
  return sum;
}

/** The small JSON request the readiness and start-up checks send. */
export const PROBE_BODY = JSON.stringify({ model: "bench-model", messages: [{ role: "user", content: "hi" }] });

/**
 * Polls `url` (a proxied POST) until it answers 200, retrying refused connections every `everyMs`.
 * @returns ms from `since` (performance.now()) to the first 200; throws after `timeoutMs` or when
 *   `exited` resolves first (the process died).
 */
export async function firstProxiedAnswer(
  url: string,
  since: number,
  opts: { timeoutMs: number; everyMs?: number; exited?: Promise<number> },
): Promise<number> {
  let died = false;
  opts.exited?.then(() => (died = true));
  let last = "";
  while (performance.now() - since < opts.timeoutMs) {
    if (died) throw new Error(`the process exited before answering (last attempt: ${last || "none"})`);
    try {
      const res = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json", "user-agent": "claude-cli/2.1.197 (external, cli)" },
        body: PROBE_BODY,
        keepalive: false,
      });
      await res.arrayBuffer();
      if (res.status === 200) return performance.now() - since;
      last = `status ${res.status}`;
    } catch (err) {
      last = (err as { code?: string }).code ?? String(err);
    }
    await Bun.sleep(opts.everyMs ?? 1);
  }
  throw new Error(`no 200 from ${url} within ${opts.timeoutMs} ms (last attempt: ${last})`);
}

/** CPU time (user + system) used so far by the given processes, ms. */
export function cpuMsOf(pids: number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // Gone: it no longer counts.
    }
  }
  return ticks * 10; // USER_HZ is 100 on Linux
}

/**
 * How busy the whole machine is over `ms`, from /proc/stat: 0 idle, 1 every core busy. Run while
 * the bench's own processes are quiet, it tells whether someone else is using the CPU.
 */
export async function machineBusy(ms = 1000): Promise<number> {
  const read = () => {
    const cpu = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
    const idle = cpu[3]! + (cpu[4] ?? 0);
    return { idle, total: cpu.reduce((a, b) => a + b, 0) };
  };
  const a = read();
  await Bun.sleep(ms);
  const b = read();
  return b.total > a.total ? 1 - (b.idle - a.idle) / (b.total - a.total) : 0;
}

/** The lines of a text stream (a child's output, our stdin), without their "\n"; an unfinished last line too. */
export async function* lines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let pending = "";
  for await (const chunk of stream) {
    pending += decoder.decode(chunk, { stream: true });
    let nl: number;
    while ((nl = pending.indexOf("\n")) >= 0) {
      yield pending.slice(0, nl);
      pending = pending.slice(nl + 1);
    }
  }
  pending += decoder.decode();
  if (pending) yield pending;
}

/**
 * `cmd` run with its open-file limit raised to `n` (soft and hard, as root may), or to the hard
 * limit where `n` is not allowed: the team-scale scenarios hold one descriptor per connection.
 * The shell execs the command, so the pid stays the command's.
 */
export function withFdLimit(cmd: string[], n: number): string[] {
  return ["/bin/sh", "-c", 'ulimit -n "$0" 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$@"', String(n), ...cmd];
}

/** The soft limit on open files of a running process (from /proc/PID/limits), if readable. */
export function fdLimitOf(pid: number): number | undefined {
  try {
    const line = readFileSync(`/proc/${pid}/limits`, "utf8").split("\n").find((l) => l.startsWith("Max open files"));
    const soft = line?.slice("Max open files".length).trim().split(/\s+/)[0];
    return soft === "unlimited" ? Infinity : soft ? Number(soft) : undefined;
  } catch {
    return undefined;
  }
}
