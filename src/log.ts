// Logging: one JSON object per line (for services and log collectors) or readable text (for a terminal).

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
  const format = options.format ?? (process.stdout.isTTY ? "text" : "json");
  const write = options.write ?? ((line: string) => process.stdout.write(line));
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

function jsonLine(level: LogLevel, msg: string, fields?: LogFields): string {
  return JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields }) + "\n";
}

function textLine(level: LogLevel, msg: string, fields?: LogFields): string {
  let line = `${new Date().toISOString()} ${level.toUpperCase().padEnd(5)} ${msg}`;
  if (fields) {
    for (const [k, v] of Object.entries(fields)) {
      if (v === undefined) continue;
      const s = typeof v === "string" ? v : JSON.stringify(v);
      line += ` ${k}=${/[\s"=]/.test(s) ? JSON.stringify(s) : s}`;
    }
  }
  return line + "\n";
}

/** A logger that writes nothing (for tests and library use). */
export const silentLogger: Logger = createLogger({ level: "error", write: () => {} });
