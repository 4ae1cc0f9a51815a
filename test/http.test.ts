import { describe, expect, test } from "bun:test";
import { contentLength, headerMap, requestHasBody, responseHasBody, readUpTo } from "../src/http.ts";

describe("which messages have bodies", () => {
  test("requests: all but GET and HEAD", () => {
    expect(["GET", "HEAD"].map(requestHasBody)).toEqual([false, false]);
    expect(["POST", "PUT", "PATCH", "DELETE", "OPTIONS"].map(requestHasBody)).toEqual([true, true, true, true, true]);
  });
  test("answers: never to HEAD, never with 204 or 304", () => {
    expect(responseHasBody("HEAD", 200)).toBe(false);
    expect(responseHasBody("GET", 204)).toBe(false);
    expect(responseHasBody("POST", 304)).toBe(false);
    expect(responseHasBody("POST", 200)).toBe(true);
    expect(responseHasBody("GET", 404)).toBe(true);
  });
});

describe("Content-Length", () => {
  const of = (...values: string[]) => {
    const h = new Headers();
    for (const v of values) h.append("content-length", v);
    return contentLength(headerMap(h));
  };
  test("none, one, or repeated copies of one value (RFC 9110 section 8.6)", () => {
    expect(contentLength(headerMap(new Headers()))).toBeNull();
    expect(of("10")).toBe(10);
    expect(of("10", "10")).toBe(10);
    expect(of("10, 10")).toBe(10);
    expect(of("0")).toBe(0);
  });
  test("differing copies or anything not a number is invalid, never guessed at", () => {
    for (const bad of [["10", "12"], ["10, 12"], ["-1"], ["1e3"], ["ten"], [""], ["10,"], [" "], ["9".repeat(16)]]) expect(of(...bad)).toBe("invalid");
  });
});

describe("readUpTo", () => {
  const stream = (...parts: string[]) => new Blob(parts).stream();
  test("reads a body of up to `max` bytes whole, across chunks", async () => {
    expect(new TextDecoder().decode(await readUpTo(new Response(stream("ab", "cd")).body, 4))).toBe("abcd");
    expect(await readUpTo(null, 4)).toEqual(new Uint8Array());
  });

  test("a longer body gives undefined and is cancelled, not read to its end", async () => {
    let pulled = 0;
    const endless = new ReadableStream<Uint8Array>({
      pull(controller) {
        pulled++;
        controller.enqueue(new Uint8Array(1024));
      },
    });
    expect(await readUpTo(endless, 4096)).toBeUndefined();
    expect(pulled).toBeLessThan(10);
  });
});
