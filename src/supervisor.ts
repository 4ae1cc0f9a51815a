// Starting and supervising LiteLLM as a child process: readiness, restarts with backoff, clean stop.
import type { Subprocess } from "bun";
import type { LogLevel, Logger } from "./log.ts";
import { RUNTIME_ENV_NAMES } from "./runtime-env.ts";

/** Where the child is in its life. */
export type ChildState = "starting" | "ready" | "restarting" | "failed" | "stopped";

export interface SupervisorStatus {
  state: ChildState;
  pid: number | null;
  restarts: number;
  last_exit_code: number | null;
  /** Why it failed, once state is "failed". */
  error: string | null;
}

export interface SupervisorOptions {
  /** The command and its arguments, e.g. ["litellm", "--config", "config.yaml", "--port", "8765"]. */
  command: string[];
  /** Extra environment for the child (on top of memproxy's own). */
  env: Record<string, string>;
  /** The child's base URL, e.g. http://127.0.0.1:8765; readiness is polled at /health/readiness. */
  url: string;
  readyTimeoutMs: number;
  /** After SIGTERM, how long before SIGKILL. */
  stopTimeoutMs: number;
  restart: { initialBackoffMs: number; maxBackoffMs: number; maxRestarts: number; windowMs: number };
  logger: Logger;
  /** Called with each line the child writes (already logged); for tests and metrics. */
  onLine?: (line: string, stream: "stdout" | "stderr") => void;
  /** Log LiteLLM's own line per request (uvicorn's access log); default: dropped. */
  accessLog?: boolean;
  /** Called after each unexpected exit that leads to a restart. */
  onRestart?: (exitCode: number | null) => void;
}

/** A failure to start or keep the child running, with its last output lines for the user. */
export class SupervisorError extends Error {
  override name = "SupervisorError";
  constructor(
    message: string,
    readonly lastLines: string[] = [],
  ) {
    super(lastLines.length ? `${message}\nLast lines from LiteLLM:\n  ${lastLines.join("\n  ")}` : message);
  }
}

/** LiteLLM's cheap readiness check (never /health, which calls every model). */
export const READINESS_PATH = "/health/readiness";
const TAIL_LINES = 30;
const POLL_MS = 200;

/**
 * Runs LiteLLM as a child in its own process group (its uvicorn workers are grandchildren, which
 * a parent-death signal would not reach), passes its output through line by line, restarts it
 * after an unexpected exit with capped exponential backoff, and gives up on a crash loop.
 */
export class Supervisor {
  private child: Subprocess<"ignore", "pipe", "pipe"> | undefined;
  private readonly tail: string[] = [];
  private readonly crashes: number[] = [];
  private stopping = false;
  private readonly status_: SupervisorStatus = { state: "starting", pid: null, restarts: 0, last_exit_code: null, error: null };
  private failedListeners: ((err: SupervisorError) => void)[] = [];
  private restartTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(private readonly options: SupervisorOptions) {}

  /** The current state, for /health and the proxy's gate. */
  status(): Readonly<SupervisorStatus> {
    return this.status_;
  }

  /** Registers a callback for when the supervisor gives up (crash loop, or a restart never ready). */
  onFailed(listener: (err: SupervisorError) => void): void {
    this.failedListeners.push(listener);
  }

  /**
   * Starts the child at once (a missing or non-executable command throws here, before anything else starts)
   * and returns a promise of its readiness.
   * @throws SupervisorError at once when the command cannot be started at all.
   * @returns resolves once the child is ready; rejects with SupervisorError when it exits or is not ready in time.
   */
  start(): Promise<void> {
    this.spawnChild();
    return this.waitReady();
  }

  private spawnChild(): void {
    const { command, env } = this.options;
    this.status_.state = this.status_.restarts ? "restarting" : "starting";
    let child: Subprocess<"ignore", "pipe", "pipe">;
    try {
      child = Bun.spawn(withParentDeathSignal(command, env.PATH ?? process.env.PATH), {
        env: { ...childEnv(), ...env },
        stdin: "ignore",
        stdout: "pipe",
        stderr: "pipe",
        detached: true,
      });
    } catch (err) {
      const code = (err as { code?: string }).code;
      const why =
        code === "ENOENT"
          ? `'${command[0]}' was not found. Install LiteLLM (pip install 'litellm[proxy]') or point --litellm-command / memproxy.litellm.command at its executable.`
          : code === "EACCES"
            ? `'${command[0]}' is not executable (permission denied).`
            : String((err as Error).message);
      this.status_.state = "failed";
      this.status_.error = why;
      throw new SupervisorError(`cannot start LiteLLM: ${why}`);
    }
    this.child = child;
    this.status_.pid = child.pid;
    void this.pump(child.stdout, "stdout");
    void this.pump(child.stderr, "stderr");
    void child.exited.then((code) => this.onExit(child, code));
  }

  /** Reads the child's output continuously (so it never blocks on a full pipe) and logs each line. */
  private async pump(stream: ReadableStream<Uint8Array>, name: "stdout" | "stderr"): Promise<void> {
    const dec = new TextDecoder();
    let partial = "";
    const emit = (raw: string) => {
      const entry = litellmLine(raw);
      if (!entry) return;
      // The last lines, shown if LiteLLM fails: as it wrote them, without escape codes.
      this.tail.push(raw.replace(ANSI, "").trimEnd());
      if (this.tail.length > TAIL_LINES) this.tail.shift();
      if (entry.kind !== "access" || this.options.accessLog) {
        this.options.logger[entry.level](entry.msg, { source: "litellm", stream: name, ...(entry.where && { where: entry.where }) });
      }
      this.options.onLine?.(entry.msg, name);
    };
    try {
      for await (const chunk of stream) {
        partial += dec.decode(chunk, { stream: true });
        let nl: number;
        while ((nl = partial.indexOf("\n")) >= 0) {
          emit(partial.slice(0, nl).replace(/\r$/, ""));
          partial = partial.slice(nl + 1);
        }
      }
    } catch {
      // the pipe closed with the child
    }
    emit(partial);
  }

  private async waitReady(): Promise<void> {
    const deadline = Date.now() + this.options.readyTimeoutMs;
    const child = this.child!;
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null || this.child !== child) {
        throw new SupervisorError(
          `LiteLLM exited during start-up (${describeExit(child.exitCode, child.signalCode)}).`,
          [...this.tail],
        );
      }
      if (await this.isReady()) {
        this.status_.state = "ready";
        this.options.logger.info("LiteLLM is ready", { pid: child.pid, url: this.options.url });
        return;
      }
      if (Date.now() >= deadline) {
        throw new SupervisorError(
          `LiteLLM did not become ready within ${Math.round(this.options.readyTimeoutMs / 1000)}s (polling ${this.options.url}${READINESS_PATH}). Raise memproxy.litellm.ready_timeout if it needs longer.`,
          [...this.tail],
        );
      }
      await Promise.race([Bun.sleep(POLL_MS), child.exited]);
    }
  }

  private async isReady(): Promise<boolean> {
    try {
      const res = await fetch(this.options.url + READINESS_PATH, { signal: AbortSignal.timeout(2_000) });
      await res.arrayBuffer();
      return res.ok;
    } catch {
      return false;
    }
  }

  private onExit(child: Subprocess, code: number | null): void {
    if (this.child !== child) return;
    this.status_.last_exit_code = code;
    this.status_.pid = null;
    // Its workers (uvicorn with --num_workers) may outlive it and keep the port.
    signalGroup(child.pid, "SIGKILL");
    if (this.stopping || this.status_.state === "starting") return; // start() reports it
    const { restart, logger } = this.options;
    const now = Date.now();
    this.crashes.push(now);
    while (this.crashes.length && this.crashes[0]! < now - restart.windowMs) this.crashes.shift();
    if (this.crashes.length > restart.maxRestarts) {
      return this.fail(
        new SupervisorError(
          `LiteLLM exited ${this.crashes.length} times within ${Math.round(restart.windowMs / 1000)}s (last: ${describeExit(code, child.signalCode)}); giving up instead of restarting it forever.`,
          [...this.tail],
        ),
      );
    }
    const backoff = Math.min(restart.maxBackoffMs, restart.initialBackoffMs * 2 ** (this.crashes.length - 1));
    this.status_.state = "restarting";
    this.status_.restarts++;
    this.options.onRestart?.(code);
    logger.warn(`LiteLLM exited unexpectedly (${describeExit(code, child.signalCode)}); restarting in ${backoff} ms`, {
      restarts: this.status_.restarts,
      exit_code: code,
    });
    this.restartTimer = setTimeout(() => {
      if (this.stopping) return;
      try {
        this.spawnChild();
      } catch (err) {
        return this.fail(err as SupervisorError);
      }
      this.waitReady().catch((err: SupervisorError) => {
        if (!this.stopping && this.status_.state !== "ready") this.fail(err);
      });
    }, backoff);
  }

  private fail(err: SupervisorError): void {
    this.status_.state = "failed";
    this.status_.error = err.message;
    this.options.logger.error(err.message);
    for (const l of this.failedListeners) l(err);
  }

  /**
   * Stops the child: SIGTERM to its process group, then SIGKILL after the stop timeout. Idempotent.
   * @returns whether it exited within the timeout (a clean stop).
   */
  async stop(): Promise<{ clean: boolean }> {
    this.stopping = true;
    clearTimeout(this.restartTimer);
    const child = this.child;
    this.status_.state = "stopped";
    if (!child || child.exitCode !== null || child.signalCode !== null) return { clean: true };
    signalGroup(child.pid, "SIGTERM");
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = await Promise.race([
      child.exited.then(() => false),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(true), this.options.stopTimeoutMs))),
    ]);
    clearTimeout(timer);
    if (timedOut) {
      this.options.logger.warn(`LiteLLM did not stop within ${this.options.stopTimeoutMs} ms; killing it`);
      signalGroup(child.pid, "SIGKILL");
      await child.exited;
    } else {
      // Workers that outlived their parent must not stay behind.
      signalGroup(child.pid, "SIGKILL");
    }
    return { clean: !timedOut };
  }
}

/** One line of LiteLLM's output, as memproxy logs it. */
export interface LitellmLine {
  level: LogLevel;
  msg: string;
  /** access: uvicorn's line per request; banner: LiteLLM's start-up art and thanks; else a message. */
  kind: "message" | "access" | "banner";
  /** LiteLLM's own source location ("login_throttle.py:126"), when its logger gave one. */
  where?: string;
}

const ANSI = /\x1b\[[0-9;?]*[A-Za-z]/g;
const PY_LEVELS: Record<string, LogLevel> = { DEBUG: "debug", INFO: "info", WARNING: "warn", WARN: "warn", ERROR: "error", CRITICAL: "error", FATAL: "error" };
/** uvicorn: `INFO:     127.0.0.1:35162 - "GET /health/readiness HTTP/1.1" 200 OK`. */
const UVICORN_ACCESS = /^[\d.:[\]a-f]+:\d+ - "[A-Z]+ [^"]* HTTP\/[\d.]+" \d{3}/;
/** uvicorn's own lines: `WARNING:  message`. */
const UVICORN = /^(DEBUG|INFO|WARNING|ERROR|CRITICAL):\s+(.*)$/;
/** LiteLLM's logger: `19:11:49 - LiteLLM Proxy:WARNING: login_throttle.py:126 - message`. */
const LITELLM = /^\d\d:\d\d:\d\d - LiteLLM(?: [A-Za-z]+)?:([A-Z]+): (?:([\w./-]+\.py:\d+) - )?(.*)$/;
/** The start-up banner: the logo's box drawing, the frame of the feedback box, the thanks. */
const BANNER = [/^[\s\u2500-\u259f]+$/, /^#[-#\s]*#$/, /^#\s.*\s#$/, /^Thank you for using LiteLLM/, /^Give Feedback \/ Get Help/];

/**
 * Reads one line LiteLLM wrote: escape codes removed, its level mapped to memproxy's, uvicorn's access lines and
 * the start-up banner told apart. Undefined for a blank line.
 */
export function litellmLine(raw: string): LitellmLine | undefined {
  const line = raw.replace(ANSI, "").trimEnd();
  if (!line.trim()) return undefined;
  const text = line.trim();
  if (BANNER.some((b) => b.test(text))) return { level: "debug", msg: text, kind: "banner" };
  const own = LITELLM.exec(text);
  if (own) return { level: PY_LEVELS[own[1]!] ?? "info", msg: own[3]!, kind: "message", ...(own[2] && { where: own[2] }) };
  const uvicorn = UVICORN.exec(text);
  if (uvicorn) {
    const msg = uvicorn[2]!;
    return { level: PY_LEVELS[uvicorn[1]!]!, msg, kind: UVICORN_ACCESS.test(msg) ? "access" : "message" };
  }
  return { level: /^(Traceback|\w*(Error|Exception):)/.test(text) ? "error" : "info", msg: line, kind: "message" };
}

/**
 * memproxy's environment without the settings of its own Bun runtime (runtime-env.ts, and Bun's
 * no-orphans flag): LiteLLM is not memproxy, and a Bun program given as its command (as in the tests)
 * would otherwise behave like memproxy, e.g. exit with it without running its own shutdown.
 */
function childEnv(): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = { ...process.env };
  for (const name of [...RUNTIME_ENV_NAMES, "BUN_FEATURE_FLAG_NO_ORPHANS"]) delete env[name];
  return env;
}

/**
 * The command, made to get SIGTERM from the kernel when memproxy dies, however it dies (SIGKILL, a
 * crash, the OOM killer). Otherwise LiteLLM and its uvicorn workers would outlive a memproxy killed
 * outright and keep its port, which fails every later start with "port in use". On SIGTERM LiteLLM stops
 * its workers. Linux only (the parent-death signal, set by util-linux's
 * `setpriv` before it executes the command, in the same process); elsewhere, without setpriv, or
 * when the command cannot be found (Bun.spawn then says why), the command is run as it is.
 */
export function withParentDeathSignal(command: string[], path: string | undefined): string[] {
  if (process.platform !== "linux" || !Bun.which(command[0]!, { PATH: path })) return command;
  const setpriv = Bun.which("setpriv", { PATH: path });
  return setpriv ? [setpriv, "--pdeathsig", "TERM", "--", ...command] : command;
}

/** Signals the child's whole process group (it was spawned detached, as its leader). */
function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // the group is already gone
  }
}

function describeExit(code: number | null, signal: string | number | null): string {
  return signal ? `killed by ${signal}` : `exit code ${code}`;
}

/**
 * Checks that a TCP port is free on the host, so that a port in use is a clear error at start
 * rather than a child that dies with a bind error.
 */
export function portFree(host: string, port: number): boolean {
  try {
    const l = Bun.listen({ hostname: host, port, socket: { data() {} } });
    l.stop(true);
    return true;
  } catch {
    return false;
  }
}
