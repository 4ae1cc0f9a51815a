// The one error shape memproxy answers with itself, and its mapping to a Response.

/** Codes of the errors memproxy itself produces (the backend's own errors pass through untouched). */
export type ErrorCode =
  | "invalid_user_id"
  | "forbidden_user_id"
  | "unauthorized"
  | "not_found"
  | "method_not_allowed"
  | "request_too_large"
  | "overloaded"
  | "backend_starting"
  | "backend_unreachable"
  | "backend_timeout";

/** An error memproxy answers with; `cause` keeps the underlying failure for logs, never for the client. */
export class ProxyError extends Error {
  constructor(
    readonly status: number,
    readonly code: ErrorCode,
    message: string,
    readonly extraHeaders: Record<string, string> = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "ProxyError";
  }
}

/**
 * Renders an error in the OpenAI error shape. The top-level `"type": "error"` also makes it a valid
 * Anthropic error, so Claude Code and the Anthropic SDKs show the message as well.
 */
export function errorResponse(err: ProxyError): Response {
  const body = {
    type: "error",
    error: {
      message: err.message,
      type: err.status >= 500 ? "server_error" : "invalid_request_error",
      param: null,
      code: err.code,
    },
  };
  return new Response(JSON.stringify(body), {
    status: err.status,
    headers: { "content-type": "application/json", ...err.extraHeaders },
  });
}
