import { describe, expect, test } from "bun:test";
import { pathAndQuery, pathOf } from "../src/request-target.ts";

describe("request target", () => {
  test("path and query are kept, the fragment is not", () => {
    expect(pathAndQuery("http://127.0.0.1:8764/v1/chat/completions")).toBe("/v1/chat/completions");
    expect(pathAndQuery("http://h/v1/models?limit=2&x=%2F")).toBe("/v1/models?limit=2&x=%2F");
    expect(pathAndQuery("http://h/v1/models?limit=2#part")).toBe("/v1/models?limit=2");
    expect(pathAndQuery("http://h/a#b?c")).toBe("/a");
    expect(pathAndQuery("http://h//double//slash")).toBe("//double//slash");
    expect(pathAndQuery("http://[::1]:8764/health")).toBe("/health");
    expect(pathAndQuery("http://h/a?")).toBe("/a");
    expect(pathAndQuery("http://h/a?#f")).toBe("/a");
    expect(pathAndQuery("http://h/a?b?")).toBe("/a?b?");
    expect(pathAndQuery("http://h")).toBe("/");
  });

  test("the path stops at the query or the fragment, whichever comes first", () => {
    expect(pathOf("http://h/v1/chat/completions?key=secret")).toBe("/v1/chat/completions");
    expect(pathOf("http://h/v1/chat/completions#x?y")).toBe("/v1/chat/completions");
    expect(pathOf("http://h/v1/x%3Fy")).toBe("/v1/x%3Fy");
    expect(pathOf("http://user@h:1/p")).toBe("/p");
    expect(pathOf("http://h")).toBe("/");
  });

  test("the same as URL's pathname and search for the URLs Bun.serve makes", async () => {
    const targets = ["/v1/chat/completions", "/a/../health?x=1", "/v1/%C3%BC?q=%20#frag", "//x//y?", "/a/./b?c=d?e"];
    const seen: string[] = [];
    const all = Promise.withResolvers<void>();
    using server = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch(req) {
        const u = new URL(req.url);
        seen.push(`${pathAndQuery(req.url) === u.pathname + u.search} ${pathOf(req.url) === u.pathname}`);
        if (seen.length === targets.length) all.resolve();
        return new Response("ok");
      },
    });
    for (const target of targets) {
      const socket = await Bun.connect({ hostname: "127.0.0.1", port: server.port!, socket: { data() {} } });
      socket.write(`GET ${target} HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n`);
    }
    await all.promise;
    expect(seen).toEqual(targets.map(() => "true true"));
  });
});
