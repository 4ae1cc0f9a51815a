// Logging: JSON lines for services and log collectors, short coloured lines for a person at a terminal,
// and level-prefixed lines for journald under systemd.
import { fstatSync, writeSync } from "node:fs";

export type LogLevel = "debug" | "info" | "warn" | "error";
/** json: one object per line; text: short aligned lines for a terminal; journal: syslog level prefixes for journald. */
export type LogFormat = "json" | "text" | "journal";
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
  /** Writes out what is buffered (the CLI calls it at exit). */
  flush(): void;
}

export interface LoggerOptions {
  level?: LogLevel;
  /** Default: detected from stdout and the environment (detectFormat). */
  format?: LogFormat;
  /** Colours in text lines; default: on when stdout is a terminal and NO_COLOR is not set. */
  color?: boolean;
  /** Where lines go; default: stdout, written once per turn of the event loop. */
  write?: (line: string) => void;
}

/**
 * The format for stdout as it is: journald's when stdout is the journal stream systemd gave
 * (JOURNAL_STREAM names its device and inode), text on a terminal, JSON otherwise.
 */
export function detectFormat(env: Record<string, string | undefined> = process.env): LogFormat {
  let stat;
  try {
    stat = fstatSync(1);
  } catch {
    return "json";
  }
  const journal = env.JOURNAL_STREAM?.split(":");
  if (journal?.length === 2 && String(stat.dev) === journal[0] && String(stat.ino) === journal[1]) return "journal";
  return stat.isCharacterDevice() ? "text" : "json";
}

function stdoutIsTerminal(): boolean {
  try {
    return fstatSync(1).isCharacterDevice();
  } catch {
    return false;
  }
}

/**
 * Creates a logger.
 * @param options level (default info), format (default detected), colours, sink.
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? "info";
  const format = options.format ?? detectFormat();
  const color = format === "text" && (options.color ?? (!process.env.NO_COLOR && stdoutIsTerminal()));
  const out = options.write ? { write: options.write, flush() {} } : new StdoutWriter();
  const line = format === "json" ? jsonLine : format === "journal" ? journalLine : (l: LogLevel, m: string, f?: LogFields) => textLine(l, m, f, color);
  const min = RANK[level];
  const emit = (lvl: LogLevel, msg: string, fields?: LogFields) => {
    if (RANK[lvl] >= min) out.write(line(lvl, msg, fields));
  };
  return {
    level,
    enabled: (lvl) => RANK[lvl] >= min,
    debug: (msg, fields) => emit("debug", msg, fields),
    info: (msg, fields) => emit("info", msg, fields),
    warn: (msg, fields) => emit("warn", msg, fields),
    error: (msg, fields) => emit("error", msg, fields),
    flush: () => out.flush(),
  };
}

function jsonLine(level: LogLevel, msg: string, fields?: LogFields): string {
  // The fields are serialised as given and appended, rather than copied into a new object first.
  const head = `{"time":"${new Date().toISOString()}","level":"${level}","msg":${JSON.stringify(msg)}`;
  const rest = fields ? JSON.stringify(fields) : "{}";
  return head + (rest === "{}" ? "}\n" : "," + rest.slice(1) + "\n");
}

/** syslog priorities journald reads from a line's `<N>` prefix (sd-daemon(3)). */
const SYSLOG: Record<LogLevel, number> = { debug: 7, info: 6, warn: 4, error: 3 };

function journalLine(level: LogLevel, msg: string, fields?: LogFields): string {
  // journald adds the time; a line must not contain a line break (it would become two entries).
  return `<${SYSLOG[level]}>${oneLine(msg)}${pairs(fields)}\n`;
}

const ANSI = { dim: "\x1b[2m", red: "\x1b[31m", yellow: "\x1b[33m", green: "\x1b[32m", cyan: "\x1b[36m", bold: "\x1b[1m", reset: "\x1b[0m" };
const LEVEL_COLOR: Record<LogLevel, string> = { debug: ANSI.dim, info: ANSI.green, warn: ANSI.yellow, error: ANSI.red };

/** A line for a person: local time, level, and for a request the few fields that tell what happened. */
function textLine(level: LogLevel, msg: string, fields: LogFields | undefined, color: boolean): string {
  const paint = (code: string, s: string) => (color ? code + s + ANSI.reset : s);
  const head = `${paint(ANSI.dim, localTime())} ${paint(LEVEL_COLOR[level], level.toUpperCase().padEnd(5))}`;
  if (msg === "request" && fields && "status" in fields) return `${head} ${requestText(fields, paint)}\n`;
  // A message of several lines (a fix to copy) keeps its lines, indented under the first.
  const lines = msg.split("\n").map(oneLine);
  return `${head} ${lines[0]}${pairs(fields)}\n${lines.slice(1).map((l) => `      ${l}\n`).join("")}`;
}

function requestText(f: LogFields, paint: (code: string, s: string) => string): string {
  const status = Number(f.status);
  const statusColor = status >= 500 ? ANSI.red : status >= 400 ? ANSI.yellow : ANSI.green;
  const tokens = f.input_tokens !== undefined || f.output_tokens !== undefined ? ` ${f.input_tokens ?? 0}→${f.output_tokens ?? 0} tok` : "";
  const parts = [
    paint(ANSI.cyan, String(f.user_id ?? "-").padEnd(16)),
    `${String(f.method).padEnd(4)} ${oneLine(String(f.path)).padEnd(24)}`,
    paint(statusColor, String(f.status)),
    `${String(Math.round(Number(f.duration_ms))).padStart(6)}ms${tokens}`,
  ];
  if (f.model) parts.push(paint(ANSI.dim, oneLine(String(f.model))));
  if (f.decided_by && f.decided_by !== "pattern" && f.decided_by !== "builtin") parts.push(paint(ANSI.dim, `(${f.decided_by})`));
  if (f.client_disconnected) parts.push(paint(ANSI.yellow, "client left"));
  if (f.error_code || f.error) parts.push(paint(ANSI.red, oneLine(String(f.error ?? f.error_code))));
  if (f.request_id) parts.push(paint(ANSI.dim, `#${oneLine(String(f.request_id))}`));
  return parts.join("  ");
}

function pairs(fields: LogFields | undefined): string {
  let out = "";
  if (!fields) return out;
  for (const [k, v] of Object.entries(fields)) {
    if (v === undefined) continue;
    const s = oneLine(typeof v === "string" ? v : JSON.stringify(v));
    out += ` ${k}=${/[\s"=]/.test(s) ? JSON.stringify(s) : s}`;
  }
  return out;
}

/**
 * Control characters (a line break, an escape sequence from a header, C1 controls such as CSI and NEL), line
 * and paragraph separators and the marks that reorder text (a right-to-left override) shown escaped, never
 * written raw: a terminal or log viewer would act on them.
 */
function oneLine(s: string): string {
  return s.replace(/[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, (c) => {
    const code = c.charCodeAt(0);
    return code < 0x100 ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16).padStart(4, "0")}`;
  });
}

function localTime(): string {
  const d = new Date();
  const two = (n: number) => String(n).padStart(2, "0");
  return `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}.${String(d.getMilliseconds()).padStart(3, "0")}`;
}

/**
 * Lines gathered and written to stdout once per turn of the event loop (or every 64 KiB): one write for all
 * the requests that ended together. stdout's descriptor is written directly and synchronously (process.stdout
 * is a stream whose first use costs start-up time); a full non-blocking descriptor, or one that takes only part
 * of the text, hands the rest (and all later lines) to process.stdout, which queues them.
 */
class StdoutWriter {
  private pending = "";
  private scheduled = false;
  private viaStream = false;
  private readonly encoder = new TextEncoder();

  write(line: string): void {
    this.pending += line;
    if (this.pending.length >= 65536) this.flush();
    else if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  flush(): void {
    this.scheduled = false;
    const text = this.pending;
    this.pending = "";
    if (!text) return;
    if (this.viaStream) return void process.stdout.write(text);
    const bytes = this.encoder.encode(text);
    let written = 0;
    try {
      written = writeSync(1, bytes);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "EPIPE") return; // nobody reads stdout any more
      if (code !== "EAGAIN") throw err;
    }
    if (written < bytes.length) {
      this.viaStream = true;
      process.stdout.write(bytes.subarray(written));
    }
  }
}

/** A logger that writes nothing (for tests and library use). */
export const silentLogger: Logger = createLogger({ level: "error", format: "json", write: () => {} });
