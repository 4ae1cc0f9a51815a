import { describe, expect, test } from "bun:test";
import { MODEL_SCAN_LIMIT, modelFromJsonPrefix, smallJsonBody } from "../src/request-model.ts";

/** The scan reads UTF-8 bytes, as the body arrived. */
const modelOf = (text: string) => modelFromJsonPrefix(new TextEncoder().encode(text));

describe("the model named by a JSON request body", () => {
  test.each([
    ["first key", '{"model":"gpt-4o","messages":[]}', "gpt-4o"],
    ["after the messages, spaced", '{ "messages": [{"role":"user","content":"x"}], "model" : "claude-sonnet-4-5" }', "claude-sonnet-4-5"],
    ["with escapes", '{"stream":true,"model":"a\\"b\\u00e9"}', 'a"bé'],
    ["pretty-printed", '\n{\n  "max_tokens": 10,\n  "model": "m-1"\n}', "m-1"],
  ])("%s", (_name, text, want) => {
    expect(modelOf(text)).toBe(want);
  });

  test("a model read again is the same; another of the same length is read anew", () => {
    const body = new TextEncoder().encode('{"model":"gpt-4o","messages":[]}');
    expect(modelFromJsonPrefix(body)).toBe("gpt-4o");
    body.set(new TextEncoder().encode("gpt-5o"), 10); // the same body's bytes changed in place
    expect(modelFromJsonPrefix(body)).toBe("gpt-5o");
    expect(modelOf('{"model":"gpt-5o"}')).toBe("gpt-5o");
    expect(modelOf('{"model":"gpt\u0035o"}')).toBe("gpt5o");
    expect(modelOf('{"model":"gpt-4o"}')).toBe("gpt-4o");
  });

  test("only a top-level model counts, not one inside messages, metadata or strings", () => {
    expect(modelOf('{"metadata":{"model":"inner"},"messages":[{"model":"x"}],"note":"\\"model\\":\\"s\\""}')).toBeUndefined();
    expect(modelOf('{"metadata":{"model":"inner"},"model":"outer"}')).toBe("outer");
    expect(modelOf('{"a":"model","b":["model"],"model":"real"}')).toBe("real");
  });

  test("a body cut short before the model, a non-string model or a non-object gives none", () => {
    expect(modelOf('{"messages":[{"role":"user","content":"long')).toBeUndefined();
    expect(modelOf('{"model":"unterminated')).toBeUndefined();
    expect(modelOf('{"model":42}')).toBeUndefined();
    expect(modelOf('["model","x"]')).toBeUndefined();
    expect(modelOf("")).toBeUndefined();
  });

  test("multi-byte UTF-8 before and in the model is read right", () => {
    expect(modelOf('{"messages":[{"content":"héllo 日本語 \\"model\\" 🙂"}],"model":"modèle-日本"}')).toBe("modèle-日本");
  });

  test("a prefix that already holds the model is enough", () => {
    expect(modelOf('{"model":"gpt-4o","messages":[{"role":"user","content":"and then it was cut')).toBe("gpt-4o");
  });
});

describe("which bodies are read ahead", () => {
  const readAhead = (init: Record<string, string>) => smallJsonBody(Number(init["content-length"] ?? NaN), init["content-type"] ?? null);
  test("JSON with a length up to the scan limit", () => {
    expect(readAhead({ "content-type": "application/json", "content-length": "70" })).toBe(true);
    expect(readAhead({ "content-type": "application/json; charset=utf-8", "content-length": String(MODEL_SCAN_LIMIT) })).toBe(true);
  });
  test("not larger JSON, unsized (chunked) bodies, empty bodies or other types", () => {
    expect(readAhead({ "content-type": "application/json", "content-length": String(MODEL_SCAN_LIMIT + 1) })).toBe(false);
    expect(readAhead({ "content-type": "application/json" })).toBe(false);
    expect(readAhead({ "content-type": "application/json", "content-length": "0" })).toBe(false);
    expect(readAhead({ "content-type": "multipart/form-data", "content-length": "70" })).toBe(false);
  });
});
