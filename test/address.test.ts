import { describe, expect, test } from "bun:test";
import { connectHost, redactUrl, urlOf } from "../src/address.ts";

describe("hosts in URLs", () => {
  test("wildcards are reached on loopback; IPv6 gets brackets once", () => {
    expect(urlOf("127.0.0.1", 8764)).toBe("http://127.0.0.1:8764");
    expect(urlOf("0.0.0.0", 1)).toBe("http://127.0.0.1:1");
    expect(urlOf("::", 2)).toBe("http://[::1]:2");
    expect(urlOf("::1", 3)).toBe("http://[::1]:3");
    expect(urlOf("[::1]", 3)).toBe("http://[::1]:3");
    expect(connectHost("localhost")).toBe("localhost");
    expect(connectHost("fe80::1")).toBe("[fe80::1]");
  });
});

describe("passwords in URLs are never shown", () => {
  test("user:password and a lone token before @ are hidden, wherever the URL is in the text", () => {
    expect(redactUrl("http://svc:secret@h:8765/x")).toBe("http://svc:[redacted]@h:8765/x");
    expect(redactUrl("https://tok@h/")).toBe("https://[redacted]@h/");
    expect(redactUrl("could not reach http://a:b@c and http://d:e@f")).toBe("could not reach http://a:[redacted]@c and http://d:[redacted]@f");
    expect(redactUrl("http://h/a@b")).toBe("http://h/a@b");
    expect(redactUrl("http://[::1]:8/")).toBe("http://[::1]:8/");
  });
});
