// The one error shape memproxy answers with itself, and its mapping to a Response.

/** Codes of the errors memproxy itself produces (the backend's own errors pass through untouched). */
export type ErrorCode =
  | "invalid_user_id"
  | "invalid_request"
  | "invalid_headers"
  | "unsupported_media_type"
  | "forbidden_user_id"
  | "unauthorized"
  | "misdirected_request"
  | "forbidden_origin"
  | "not_found"
  | "method_not_allowed"
  | "request_too_large"
  | "overloaded"
  | "backend_starting"
  | "backend_unreachable"
  | "backend_timeout"
  | "request_timeout";

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

/** The body of memproxy's answer to a failure of its own (a bug): the OpenAI error shape, nothing more. */
const INTERNAL_ERROR_BODY = JSON.stringify({
  type: "error",
  error: { message: "internal error in memproxy", type: "server_error", param: null, code: null },
});

/** The 500 memproxy answers when its own code failed; what failed goes to the log, never to the client. */
export function internalErrorResponse(): Response {
  return new Response(INTERNAL_ERROR_BODY, { status: 500, headers: { "content-type": "application/json" } });
}

/**
 * The error's body in the OpenAI error shape. The top-level `"type": "error"` also makes it a valid
 * Anthropic error, so Claude Code and the Anthropic SDKs show the message as well.
 */
export function errorBody(err: ProxyError): string {
  return JSON.stringify({
    type: "error",
    error: {
      message: err.message,
      type: err.status >= 500 ? "server_error" : "invalid_request_error",
      param: null,
      code: err.code,
    },
  });
}

/** The error as a response: its status, its body (errorBody) and its extra headers. */
export function errorResponse(err: ProxyError, body: string = errorBody(err)): Response {
  return new Response(body, {
    status: err.status,
    headers: { "content-type": "application/json", ...err.extraHeaders },
  });
}
