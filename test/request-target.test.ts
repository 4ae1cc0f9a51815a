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

  test("a relative target (a request without a usable Host) is normalised as Bun normalises an absolute one", () => {
    expect(pathAndQuery("/v1/chat/completions")).toBe("/v1/chat/completions");
    expect(pathOf("/v1/chat/completions")).toBe("/v1/chat/completions");
    expect(pathAndQuery("/v1/models?limit=2#part")).toBe("/v1/models?limit=2");
    expect(pathOf("/v1/models?key=secret")).toBe("/v1/models");
    expect(pathAndQuery("/v1/a/../b?x=1")).toBe("/v1/b?x=1");
    expect(pathAndQuery("/v1/%2e%2e/health")).toBe("/health");
    expect(pathAndQuery("/v1/x\\y")).toBe("/v1/x/y");
    expect(pathAndQuery("//v1//x?")).toBe("//v1//x"); // a path, never a host
    expect(pathOf("//evil.example/v1")).toBe("//evil.example/v1");
    expect(pathAndQuery("/")).toBe("/");
    expect(pathAndQuery("/a?#f")).toBe("/a");
  });

  // HTTP/1.0 without Host, an empty Host and an invalid one: Bun.serve then gives the target as it arrived.
  test("the path and query do not depend on the Host: none, empty, invalid or valid", async () => {
    const targets = ["/v1/chat/completions", "/v1/models?limit=2&x=%2F", "/v1/a/../chat/completions?q=1", "//x//y?", "/v1/x#frag", "/v1/x\\y", "/"];
    const heads = [
      (t: string) => `GET ${t} HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n`,
      (t: string) => `GET ${t} HTTP/1.0\r\n\r\n`,
      (t: string) => `GET ${t} HTTP/1.1\r\nHost:\r\nConnection: close\r\n\r\n`,
      (t: string) => `GET ${t} HTTP/1.1\r\nHost: bad host\r\nConnection: close\r\n\r\n`,
      (t: string) => `GET ${t} HTTP/1.1\r\nHost: a/b\r\nConnection: close\r\n\r\n`,
    ];
    const seen = new Map<string, string>();
    using server = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch(req) {
        seen.set(req.headers.get("x-case")!, `${req.url.startsWith("/") ? "relative" : "absolute"} ${pathAndQuery(req.url)} ${pathOf(req.url)}`);
        return new Response("ok");
      },
    });
    const exchange = async (raw: string) => {
      const done = Promise.withResolvers<void>();
      const socket = await Bun.connect({ hostname: "127.0.0.1", port: server.port!, socket: { data() {}, close: () => done.resolve() } });
      socket.write(raw);
      await done.promise;
    };
    for (const [t, target] of targets.entries()) {
      for (const [h, head] of heads.entries()) await exchange(head(target).replace("\r\n\r\n", `\r\nx-case: ${t}.${h}\r\n\r\n`));
    }
    for (const t of targets.keys()) {
      const withHost = seen.get(`${t}.0`)!;
      expect(withHost).toStartWith("absolute ");
      for (const h of heads.keys()) {
        if (h === 0) continue;
        // Bun 1.4.5 gives these the target as it arrived; a Bun that makes them absolute passes too.
        expect(seen.get(`${t}.${h}`)!.replace(/^relative /, "absolute ")).toBe(withHost);
      }
    }
    expect([...seen.values()].some((v) => v.startsWith("relative "))).toBe(true);
  });

  test("a Host Bun keeps in an absolute URL though it cannot parse it ('[::1'): the path is sliced whole", async () => {
    const got = Promise.withResolvers<string>();
    using server = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch(req) {
        got.resolve(`${req.url} ${pathAndQuery(req.url)} ${pathOf(req.url)}`);
        return new Response("ok");
      },
    });
    const socket = await Bun.connect({ hostname: "127.0.0.1", port: server.port!, socket: { data() {} } });
    socket.write("GET /v1/chat/completions?x=1 HTTP/1.1\r\nHost: [::1\r\nConnection: close\r\n\r\n");
    const [, forwarded, path] = (await got.promise).split(" ");
    expect(forwarded).toBe("/v1/chat/completions?x=1");
    expect(path).toBe("/v1/chat/completions");
  });
});
