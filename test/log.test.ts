import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLogger } from "../src/log.ts";

const capture = (options: Parameters<typeof createLogger>[0] = {}) => {
  const lines: string[] = [];
  const logger = createLogger({ format: "json", ...options, write: (l) => void lines.push(l) });
  return { logger, lines };
};

describe("JSON lines", () => {
  test("time, level and msg first, then the fields as given; undefined fields left out", () => {
    const { logger, lines } = capture();
    logger.info("request", { request_id: "r1", status: 200, model: null, error: undefined, user_agent: 'a "quoted"\nvalue' });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toEndWith("}\n");
    const obj = JSON.parse(lines[0]!);
    expect(Object.keys(obj)).toEqual(["time", "level", "msg", "request_id", "status", "model", "user_agent"]);
    expect(obj).toMatchObject({ level: "info", msg: "request", request_id: "r1", status: 200, model: null, user_agent: 'a "quoted"\nvalue' });
    expect(new Date(obj.time).toISOString()).toBe(obj.time);
  });

  test("a line without fields, or with only undefined ones, is still one valid object", () => {
    const { logger, lines } = capture();
    logger.warn('a "message"');
    logger.warn("empty", {});
    logger.warn("all undefined", { a: undefined });
    expect(lines.map((l) => JSON.parse(l).msg)).toEqual(['a "message"', "empty", "all undefined"]);
    for (const l of lines) expect(Object.keys(JSON.parse(l))).toEqual(["time", "level", "msg"]);
  });

  test("lines below the level are not written", () => {
    const { logger, lines } = capture({ level: "warn" });
    logger.debug("d");
    logger.info("i");
    logger.warn("w");
    logger.error("e");
    expect(lines.map((l) => JSON.parse(l).level)).toEqual(["warn", "error"]);
    expect(logger.enabled("info")).toBe(false);
    expect(logger.enabled("error")).toBe(true);
  });
});

describe("text lines, for a person at a terminal", () => {
  test("local time, level and message, then key=value with values quoted only when needed", () => {
    const { logger, lines } = capture({ format: "text", color: false });
    logger.info("listening", { status: 200, user_agent: "has space", plain: "x", gone: undefined });
    expect(lines[0]).toMatch(/^\d\d:\d\d:\d\d\.\d{3} INFO  listening status=200 user_agent="has space" plain=x\n$/);
    const [h, m] = lines[0]!.split(":").map(Number);
    const now = new Date();
    expect(h! * 60 + m!).toBeOneOf([now.getHours() * 60 + now.getMinutes(), (now.getHours() * 60 + now.getMinutes() + 1439) % 1440]);
  });

  test("a request is one short line: memory id, method, path, status, duration, tokens, model", () => {
    const { logger, lines } = capture({ format: "text", color: false });
    logger.info("request", {
      request_id: "01a2",
      method: "POST",
      path: "/v1/messages",
      user_id: "claude-cli",
      decided_by: "builtin",
      user_agent: "claude-cli/2.1.197 (external, cli)",
      model: "claude-sonnet-4-5",
      status: 200,
      bytes_in: 48211,
      bytes_out: 9120,
      ttfb_ms: 812.4,
      duration_ms: 6140.2,
      client_disconnected: false,
      input_tokens: 12004,
      output_tokens: 388,
    });
    expect(lines[0]).toMatch(/^\d\d:\d\d:\d\d\.\d{3} INFO  claude-cli\s+POST \/v1\/messages\s+200\s+6140ms 12004→388 tok  claude-sonnet-4-5  #01a2\n$/);
    expect(lines[0]!.length).toBeLessThan(130);
  });

  test("a refused request shows its error; colours only when asked, never for NO_COLOR", () => {
    const { logger, lines } = capture({ format: "text", color: true });
    logger.warn("request", { method: "POST", path: "/v1/x", user_id: null, status: 502, duration_ms: 3, error_code: "backend_unreachable", error: "memproxy could not reach the backend" });
    expect(lines[0]).toContain("\x1b[31m502\x1b[0m");
    expect(lines[0]).toContain("could not reach the backend");
    const saved = process.env.NO_COLOR;
    process.env.NO_COLOR = "1";
    try {
      const plain = capture({ format: "text" }); // NO_COLOR wins even on a terminal
      plain.logger.warn("request", { method: "GET", path: "/", status: 404, duration_ms: 1 });
      expect(plain.lines[0]).not.toContain("\x1b[");
    } finally {
      if (saved === undefined) delete process.env.NO_COLOR;
      else process.env.NO_COLOR = saved;
    }
  });

  test("control characters from a stranger's header never reach the terminal raw", () => {
    const { logger, lines } = capture({ format: "text", color: false });
    logger.info("request", { method: "GET", path: "/a\x1b[2Jb\nc", status: 200, duration_ms: 1, user_id: "x" });
    expect(lines[0]).not.toContain("\x1b");
    expect(lines[0]!.trimEnd()).not.toContain("\n");
    expect(lines[0]).toContain("\\x1b[2Jb\\x0ac");
  });
});

test("text: a message of several lines keeps them, indented; control characters in them are still escaped", () => {
  const { logger, lines } = capture({ format: "text", color: false });
  logger.warn("config.yaml: forwarding is off. Fix:\n    general_settings:\n      forward: true\x1b[2J", { a: 1 });
  expect(lines[0]).toMatch(/^\d\d:\d\d:\d\d\.\d{3} WARN  config\.yaml: forwarding is off\. Fix: a=1\n {10}general_settings:\n {12}forward: true\\x1b\[2J\n$/);
});

describe("journald lines", () => {
  test("a syslog priority prefix per level, no time, one line", () => {
    const { logger, lines } = capture({ format: "journal", level: "debug" });
    logger.debug("d");
    logger.info("i", { a: 1 });
    logger.warn("w");
    logger.error("e\nsecond line");
    expect(lines).toEqual(["<7>d\n", "<6>i a=1\n", "<4>w\n", "<3>e\\x0asecond line\n"]);
  });

  test("fields from a request never carry raw control characters, C1 controls or text-reordering marks", () => {
    for (const format of ["journal", "text"] as const) {
      const { logger, lines } = capture({ format, color: false });
      logger.warn("memory keeps failing", { user_id: "u", model: "m\x1b]0;PWNED\x07\x1b[2J", note: "c1\u009b31m\u0085bidi\u202egnp.exe\u2028" });
      expect(lines[0]).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u202e]/);
      expect(lines[0]).toContain("m\\x1b]0;PWNED\\x07\\x1b[2J");
      expect(lines[0]).toContain("\\x9b31m\\x85bidi\\u202egnp.exe\\u2028");
    }
  });

  test("chosen when stdout is the journal stream systemd names in JOURNAL_STREAM", async () => {
    const dir = mkdtempSync(join(tmpdir(), "memproxy-log-"));
    try {
      const out = join(dir, "out");
      const script = `import { detectFormat } from ${JSON.stringify(join(import.meta.dir, "..", "src", "log.ts"))};\nconst s = (await import("node:fs")).fstatSync(1);\nprocess.stderr.write(detectFormat({ JOURNAL_STREAM: process.argv[2] === "match" ? s.dev + ":" + s.ino : "1:2" }));\n`;
      writeFileSync(join(dir, "detect-fixture.ts"), script);
      for (const [arg, want] of [["match", "journal"], ["other", "json"]] as const) {
        const proc = Bun.spawn([process.execPath, join(dir, "detect-fixture.ts"), arg], { stdout: Bun.file(out), stderr: "pipe" });
        const [err, code] = await Promise.all([proc.stderr.text(), proc.exited]);
        expect(code).toBe(0);
        expect(err).toBe(want);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
