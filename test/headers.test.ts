import { describe, expect, test } from "bun:test";
import { backendRequestHeaders, clientResponseHeaders, CONVERSATION_HEADER, isSecretHeader, redactedHeaders } from "../src/headers.ts";
import { headerMap } from "../src/http.ts";

const inject = { userIdHeaders: ["x-sm-user-id"], userId: "claude-code" };

describe("backendRequestHeaders: what the backend receives", () => {
  test("the decided id replaces every copy the client sent of an injected header", () => {
    const client = headerMap(new Headers([["x-sm-user-id", "someone-else"], ["X-SM-User-Id", "again"], ["x-other-id", "mine"], ["user-agent", "claude-cli/2"]]));
    const out = backendRequestHeaders(client, { userIdHeaders: ["x-sm-user-id", "x-other-id"], userId: "claude-code" });
    expect(out["x-sm-user-id"]).toBe("claude-code");
    expect(out["x-other-id"]).toBe("claude-code");
    expect(out["user-agent"]).toBe("claude-cli/2");
    expect(JSON.stringify(out)).not.toMatch(/someone-else|again|mine/);
  });

  test("look-alikes with _ for - are dropped too: a server that reads headers as CGI variables takes them for the id", () => {
    const client = headerMap(new Headers([["x_sm_user_id", "evil1"], ["x-sm_user-id", "evil2"], ["x_other_id", "evil3"], ["x_custom_trace", "kept"]]));
    const out = backendRequestHeaders(client, { userIdHeaders: ["x-sm-user-id", "x-other-id"], userId: "claude-code" });
    expect(out).toMatchObject({ "x-sm-user-id": "claude-code", "x-other-id": "claude-code", x_custom_trace: "kept" });
    expect(JSON.stringify(out)).not.toMatch(/evil/);
  });

  test("hop-by-hop headers, those Connection lists, Host and Expect are dropped; end-to-end headers pass", () => {
    const client = headerMap(
      new Headers({
        host: "127.0.0.1:8764",
        connection: "keep-alive, X-Hop",
        "keep-alive": "timeout=5",
        "x-hop": "drop me",
        te: "trailers",
        "transfer-encoding": "chunked",
        upgrade: "websocket",
        "proxy-authorization": "Basic abc",
        expect: "100-continue",
        authorization: "Bearer sk-1",
        "anthropic-version": "2023-06-01",
      }),
    );
    const out = backendRequestHeaders(client, inject);
    expect(Object.keys(out).sort()).toEqual(["accept-encoding", "anthropic-version", "authorization", "x-sm-user-id"]);
    expect(out.authorization).toBe("Bearer sk-1");
  });

  test("the body is asked for uncompressed; a streamed body's length is sent as one value", () => {
    const client = headerMap(new Headers({ "accept-encoding": "gzip, br", "content-length": "10, 10" }));
    expect(backendRequestHeaders(client, inject)).toEqual({ "accept-encoding": "identity", "x-sm-user-id": "claude-code" });
    expect(backendRequestHeaders(client, { ...inject, contentLength: 10 })["content-length"]).toBe("10");
  });

  test("a conversation id is added unless the client sent its own", () => {
    expect(backendRequestHeaders({}, { ...inject, conversationId: "conv-1" })[CONVERSATION_HEADER]).toBe("conv-1");
    expect(backendRequestHeaders({ [CONVERSATION_HEADER]: "client-conv" }, { ...inject, conversationId: "conv-1" })[CONVERSATION_HEADER]).toBe("client-conv");
    expect(backendRequestHeaders({}, inject)[CONVERSATION_HEADER]).toBeUndefined();
  });
});

describe("clientResponseHeaders: what the client receives", () => {
  test("hop-by-hop and Connection-listed headers are dropped, the rest kept", () => {
    const backend = new Headers({ connection: "close, x-internal", "x-internal": "1", "keep-alive": "timeout=5", "content-type": "application/json", "content-length": "12", "x-request-id": "r1" });
    const out = clientResponseHeaders(backend, headerMap(backend));
    expect(Object.fromEntries(out)).toEqual({ "content-type": "application/json", "content-length": "12", "x-request-id": "r1" });
  });

  test("a body fetch decoded loses its Content-Encoding and Content-Length", () => {
    const backend = new Headers({ "content-encoding": "gzip", "content-length": "40", "content-type": "text/event-stream" });
    expect(Object.fromEntries(clientResponseHeaders(backend, headerMap(backend)))).toEqual({ "content-type": "text/event-stream" });
  });
});

describe("secrets are never shown", () => {
  test("credentials by name, and names that look like one", () => {
    for (const name of ["authorization", "proxy-authorization", "x-api-key", "api-key", "cookie", "set-cookie", "x-supermemory-api-key", "x-goog-api-key", "x-my-token", "x-client-secret", "x-session-id", "x-amz-signature", "x-db-password", "x-custom-bearer", "bearer", "x-jwt", "x-hmac", "x-sig", "x-pwd", "x-access", "x-litellm-master", "x-pass", "x-passphrase"]) {
      expect({ name, secret: isSecretHeader(name) }).toEqual({ name, secret: true });
    }
    for (const name of ["user-agent", "content-type", "x-memory-user-id", "x-sm-user-id", "x-stainless-lang", "x-design-id", "x-accessible", "access-control-request-headers", "x-bypass-cache"]) {
      expect({ name, secret: isSecretHeader(name) }).toEqual({ name, secret: false });
    }
  });

  test("redactedHeaders keeps every name and hides only secret values", () => {
    expect(redactedHeaders({ authorization: "Bearer sk-live", "user-agent": "codex_cli_rs/0.50", "x-api-key": "k" })).toEqual({
      authorization: "[redacted]",
      "user-agent": "codex_cli_rs/0.50",
      "x-api-key": "[redacted]",
    });
  });
});
