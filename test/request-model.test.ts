import { describe, expect, test } from "bun:test";
import { MODEL_READ_LIMIT, modelOf, smallJsonBody } from "../src/request-model.ts";

/** The body as it arrived: UTF-8 bytes. */
const modelIn = (text: string) => modelOf(new TextEncoder().encode(text));

describe("the model named by a JSON request body", () => {
  test.each([
    ["first key", '{"model":"gpt-4o","messages":[]}', "gpt-4o"],
    ["after the messages, spaced", '{ "messages": [{"role":"user","content":"x"}], "model" : "claude-sonnet-4-5" }', "claude-sonnet-4-5"],
    ["with escapes", '{"stream":true,"model":"a\\"b\\u00e9"}', 'a"bé'],
    ["pretty-printed", '\n{\n  "max_tokens": 10,\n  "model": "m-1"\n}', "m-1"],
  ])("%s", (_name, text, want) => {
    expect(modelIn(text)).toBe(want);
  });

  test("only a top-level model counts, not one inside messages, metadata or strings", () => {
    expect(modelIn('{"metadata":{"model":"inner"},"messages":[{"model":"x"}],"note":"\\"model\\":\\"s\\""}')).toBeUndefined();
    expect(modelIn('{"metadata":{"model":"inner"},"model":"outer"}')).toBe("outer");
    expect(modelIn('{"a":"model","b":["model"],"model":"real"}')).toBe("real");
  });

  test("a body that is not whole JSON, a non-string model or a non-object gives none", () => {
    expect(modelIn('{"model":"gpt-4o","messages":[{"role":"user","content":"cut short')).toBeUndefined();
    expect(modelIn('{"model":"unterminated')).toBeUndefined();
    expect(modelIn('{"model":42}')).toBeUndefined();
    expect(modelIn('["model","x"]')).toBeUndefined();
    expect(modelIn("null")).toBeUndefined();
    expect(modelIn("")).toBeUndefined();
  });

  test("multi-byte UTF-8 before and in the model is read right", () => {
    expect(modelIn('{"messages":[{"content":"héllo 日本語 \\"model\\" 🙂"}],"model":"modèle-日本"}')).toBe("modèle-日本");
  });

  test("a body larger than the limit (kept only to be sent again) is not parsed", () => {
    const filler = "x".repeat(MODEL_READ_LIMIT);
    expect(modelIn(`{"model":"gpt-4o","messages":[{"role":"user","content":"${filler}"}]}`)).toBeUndefined();
    const atLimit = `{"model":"gpt-4o","pad":"${"x".repeat(MODEL_READ_LIMIT - 27)}"}`;
    expect(new TextEncoder().encode(atLimit).length).toBe(MODEL_READ_LIMIT);
    expect(modelIn(atLimit)).toBe("gpt-4o");
  });
});

describe("which bodies are read ahead", () => {
  const readAhead = (init: Record<string, string>) => smallJsonBody(Number(init["content-length"] ?? NaN), init["content-type"] ?? null);
  test("JSON with a length up to the scan limit", () => {
    expect(readAhead({ "content-type": "application/json", "content-length": "70" })).toBe(true);
    expect(readAhead({ "content-type": "application/json; charset=utf-8", "content-length": String(MODEL_READ_LIMIT) })).toBe(true);
  });
  test("not larger JSON, unsized (chunked) bodies, empty bodies or other types", () => {
    expect(readAhead({ "content-type": "application/json", "content-length": String(MODEL_READ_LIMIT + 1) })).toBe(false);
    expect(readAhead({ "content-type": "application/json" })).toBe(false);
    expect(readAhead({ "content-type": "application/json", "content-length": "0" })).toBe(false);
    expect(readAhead({ "content-type": "multipart/form-data", "content-length": "70" })).toBe(false);
  });
});
