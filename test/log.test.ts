import { describe, expect, test } from "bun:test";
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

describe("text lines", () => {
  test("level and message, then key=value with values quoted only when needed", () => {
    const { logger, lines } = capture({ format: "text" });
    logger.info("request", { status: 200, user_agent: "has space", plain: "x", gone: undefined });
    expect(lines[0]).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z INFO  request status=200 user_agent="has space" plain=x\n$/);
  });
});
