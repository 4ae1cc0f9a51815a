import { describe, expect, test } from "bun:test";
import { errorBody, errorResponse, internalErrorResponse, ProxyError } from "../src/errors.ts";

describe("memproxy's own errors", () => {
  test("a client error has the OpenAI shape, with Anthropic's top-level type", async () => {
    const err = new ProxyError(401, "unauthorized", "memproxy needs an access key", { "www-authenticate": 'Bearer realm="memproxy"' });
    const res = errorResponse(err);
    expect(res.status).toBe(401);
    expect(res.headers.get("content-type")).toBe("application/json");
    expect(res.headers.get("www-authenticate")).toBe('Bearer realm="memproxy"');
    expect(await res.json()).toEqual({
      type: "error",
      error: { message: "memproxy needs an access key", type: "invalid_request_error", param: null, code: "unauthorized" },
    });
  });

  test("a 5xx is a server_error; the cause stays out of the body", () => {
    const err = new ProxyError(502, "backend_unreachable", "The backend did not answer", {}, { cause: new Error("ECONNREFUSED 127.0.0.1:8765 secret-detail") });
    expect(JSON.parse(errorBody(err)).error).toEqual({ message: "The backend did not answer", type: "server_error", param: null, code: "backend_unreachable" });
    expect(errorBody(err)).not.toContain("secret-detail");
  });

  test("the 500 for memproxy's own failure says nothing more than that", async () => {
    const res = internalErrorResponse();
    expect(res.status).toBe(500);
    expect(await res.json()).toEqual({ type: "error", error: { message: "internal error in memproxy", type: "server_error", param: null, code: null } });
  });
});
