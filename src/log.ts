// Logging: one JSON object per line (for services and log collectors) or readable text (for a terminal).
import { fstatSync, writeSync } from "node:fs";

export type LogLevel = "debug" | "info" | "warn" | "error";
export type LogFormat = "json" | "text";
export type LogFields = Record<string, unknown>;

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** A leveled logger; fields are written as given, so callers never pass secrets. */
export interface Logger {
  readonly level: LogLevel;
  enabled(level: LogLevel): boolean;
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
}

export interface LoggerOptions {
  level?: LogLevel;
  format?: LogFormat;
  /** Where lines go; defaults to stdout. */
  write?: (line: string) => void;
}

/**
 * Creates a logger.
 * @param options level (default info), format (default: text on a terminal, else JSON), sink.
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? "info";
  const format = options.format ?? (stdoutIsTerminal() ? "text" : "json");
  const write = options.write ?? writeStdout;
  const min = RANK[level];
  const emit = (lvl: LogLevel, msg: string, fields?: LogFields) => {
    if (RANK[lvl] < min) return;
    write(format === "json" ? jsonLine(lvl, msg, fields) : textLine(lvl, msg, fields));
  };
  return {
    level,
    enabled: (lvl) => RANK[lvl] >= min,
    debug: (msg, fields) => emit("debug", msg, fields),
    info: (msg, fields) => emit("info", msg, fields),
    warn: (msg, fields) => emit("warn", msg, fields),
    error: (msg, fields) => emit("error", msg, fields),
  };
}

// The time as text is made once per millisecond: lines under load share it.
let clockMs = 0;
let clockText = "";
function now(): string {
  const ms = Date.now();
  if (ms !== clockMs) {
    clockMs = ms;
    clockText = new Date(ms).toISOString();
  }
  return clockText;
}

function jsonLine(level: LogLevel, msg: string, fields?: LogFields): string {
  // The fields are serialised as given and appended, rather than copied into a new object first.
  const head = `{"time":"${now()}","level":"${level}","msg":${JSON.stringify(msg)}`;
  const rest = fields ? JSON.stringify(fields) : "{}";
  return head + (rest === "{}" ? "}\n" : "," + rest.slice(1) + "\n");
}

function textLine(level: LogLevel, msg: string, fields?: LogFields): string {
  let line = `${now()} ${level.toUpperCase().padEnd(5)} ${msg}`;
  if (fields) {
    for (const [k, v] of Object.entries(fields)) {
      if (v === undefined) continue;
      const s = typeof v === "string" ? v : JSON.stringify(v);
      line += ` ${k}=${/[\s"=]/.test(s) ? JSON.stringify(s) : s}`;
    }
  }
  return line + "\n";
}

// Lines are gathered and written once per turn of the event loop (or every 64 KiB): one write
// system call for all the requests that ended together, not one each (about a fifth of memproxy's CPU
// per small request under load). They are flushed at exit too.
//
// process.stdout is a Node stream whose first use costs about 15 ms of start-up (and memproxy's
// first proxied answer waits for its first log line): stdout's descriptor is written directly,
// synchronously. A non-blocking descriptor that is full, or takes only part of the text, hands the
// rest (and all later lines) to process.stdout, which queues them.
const encoder = new TextEncoder();
let viaStream = false;
let pending = "";
let flushScheduled = false;

function writeStdout(line: string): void {
  pending += line;
  if (pending.length >= 65536) flushStdout();
  else if (!flushScheduled) {
    flushScheduled = true;
    setImmediate(flushStdout);
  }
}
process.on("exit", () => flushStdout());

function flushStdout(): void {
  flushScheduled = false;
  const text = pending;
  pending = "";
  if (!text) return;
  if (viaStream) return void process.stdout.write(text);
  const bytes = encoder.encode(text);
  let written = 0;
  try {
    written = writeSync(1, bytes);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "EPIPE") return; // nobody reads stdout any more
    if (code !== "EAGAIN") throw err;
  }
  if (written < bytes.length) {
    viaStream = true;
    process.stdout.write(bytes.subarray(written));
  }
}

// A terminal is a character device (so is /dev/null, where the format does not matter); node:tty's
// isatty would cost as much start-up as process.stdout.
function stdoutIsTerminal(): boolean {
  try {
    return fstatSync(1).isCharacterDevice();
  } catch {
    return false;
  }
}

/** A logger that writes nothing (for tests and library use). */
export const silentLogger: Logger = createLogger({ level: "error", format: "json", write: () => {} });
