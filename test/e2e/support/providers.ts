// A fake LLM provider for the real-client tests: one Bun.serve on port 0 that speaks every API the tools use
// (OpenAI chat completions and Responses, Anthropic messages, Gemini generateContent, model lists), records
// every request, and answers with a marker plus the x-sm-user-id it received.
import { startBackend, type Received, type RecordingBackend } from "../../support/backend.ts";
import { anthropicEvents, anthropicMessage, chatEvents, chatMessage, halves, responseEvents, responseObject, sse } from "../../support/provider-answers.ts";

/** A running fake provider. */
export interface FakeProviders extends RecordingBackend {
  /** Unique to this provider: every answer it writes contains it. */
  readonly marker: string;
  /** The requests that asked a model for an answer (not probes, model lists or token counts). */
  generations(): Received[];
}

/** What every answer says: the provider's marker and the memory id it was called with. */
export function replyFor(marker: string, userId: string | null): string {
  return `${marker} memory=${userId ?? "(none)"}`;
}

/** The marker plus id as they appear in a reply, for asserting on a tool's printed output. */
export function replyPattern(marker: string): RegExp {
  return new RegExp(`${marker} memory=([A-Za-z0-9_:()-]+)`);
}

type Api = "openai" | "anthropic" | "gemini";

/**
 * Starts the fake provider on 127.0.0.1, port 0.
 * Routes (any path prefix, so `/v1/...`, `/api/v1/...` and bare paths all work):
 *  HEAD anything and GET `/` (Claude Code's probe), GET `/health/liveliness|readiness` (memproxy's backend check), GET `.../models` (OpenAI, Anthropic or Gemini shape, by headers),
 *  POST `.../chat/completions` (JSON or SSE), `.../responses` (JSON or the Responses event stream),
 *  `.../messages/count_tokens`, `.../messages` (JSON or SSE),
 *  `...:generateContent`, `...:streamGenerateContent` (SSE with alt=sse, else a JSON array), `...:countTokens`.
 */
export function startProviders(marker = `MPXMARK${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`): FakeProviders {
  const backend = startBackend((_req, r) => answer(r, marker));
  const generations = () => backend.received.filter(isGeneration);
  return Object.assign(backend, { marker, generations });
}

/** True for a request that asks a model for an answer. */
export function isGeneration(r: Received): boolean {
  const path = r.path.split("?")[0]!;
  if (r.method !== "POST") return false;
  return (
    path.endsWith("/chat/completions") ||
    path.endsWith("/responses") ||
    (path.endsWith("/messages") && !path.endsWith("/count_tokens")) ||
    /:(stream)?generateContent$/i.test(path)
  );
}

function apiOf(r: Received): Api {
  if (r.headers.has("x-goog-api-key") || r.path.includes("/v1beta/") || r.path.includes("/v1alpha/") || /:\w+$/.test(r.path.split("?")[0]!)) return "gemini";
  if (r.headers.has("anthropic-version") || r.headers.has("x-api-key")) return "anthropic";
  return "openai";
}

function answer(r: Received, marker: string): Response {
  const [path, query = ""] = r.path.split("?") as [string, string?];
  const reply = replyFor(marker, r.headers.get("x-sm-user-id"));
  // Claude Code probes the base URL (HEAD /, HEAD /api/hello) before its first call.
  if (r.method === "HEAD") return new Response(null);
  if (r.method === "GET" && (path === "/" || path === "")) return new Response("ok");
  // LiteLLM's public health routes: memproxy checks the backend with them.
  if (r.method === "GET" && /^\/health\/(liveliness|liveness|readiness)$/.test(path)) return Response.json({ status: "healthy" });
  if (r.method === "GET" && /\/models$/.test(path)) return Response.json(modelList(apiOf(r)));
  if (r.method === "GET" && /\/models\/[^/]+$/.test(path)) return Response.json(oneModel(apiOf(r), path.split("/").at(-1)!));
  if (r.method !== "POST") return notFound(r);

  let body: any = {};
  if (r.body.length > 0) {
    try {
      body = JSON.parse(new TextDecoder().decode(r.body));
    } catch {
      return Response.json({ error: { message: "fake provider: body is not JSON", type: "invalid_request_error" } }, { status: 400 });
    }
  }
  const model = String(body?.model ?? "fake-model");
  if (path.endsWith("/chat/completions")) return body.stream === true ? sse(chatEvents(model, reply, body)) : Response.json(chatMessage(model, reply));
  if (path.endsWith("/responses")) return body.stream === true ? sse(responseEvents(model, reply)) : Response.json(responseObject(model, reply));
  if (path.endsWith("/messages/count_tokens")) return Response.json({ input_tokens: 12 });
  if (path.endsWith("/messages")) return body.stream === true ? sse(anthropicEvents(model, reply)) : Response.json(anthropicMessage(model, reply));
  const gemini = /\/models\/([^/:]+):(\w+)$/.exec(path);
  if (gemini) {
    const [, geminiModel, method] = gemini as unknown as [string, string, string];
    if (method === "countTokens") return Response.json({ totalTokens: 12 });
    if (method === "generateContent") return Response.json(geminiChunk(geminiModel, geminiText(body, reply), true));
    if (method === "streamGenerateContent") {
      const chunks = geminiChunks(geminiModel, geminiText(body, reply));
      return query.includes("alt=sse") ? sse(chunks.map((c) => `data: ${JSON.stringify(c)}\n\n`)) : Response.json(chunks);
    }
    if (method === "embedContent") return Response.json({ embedding: { values: [0.1, 0.2, 0.3] } });
  }
  return notFound(r);
}

function notFound(r: Received): Response {
  return Response.json({ error: { message: `fake provider: no route for ${r.method} ${r.path}`, type: "invalid_request_error" } }, { status: 404 });
}



function modelList(api: Api) {
  const ids = ["gpt-4o", "gpt-5", "claude-sonnet-4-5", "claude-haiku-4-5", "gemini-2.5-pro", "gemini-2.5-flash", "qwen3-coder-plus"];
  if (api === "gemini") return { models: ids.map((id) => oneModel("gemini", id)) };
  if (api === "anthropic") return { data: ids.map((id) => oneModel("anthropic", id)), has_more: false, first_id: ids[0], last_id: ids.at(-1) };
  return { object: "list", data: ids.map((id) => oneModel("openai", id)) };
}

function oneModel(api: Api, id: string) {
  if (api === "gemini") {
    return { name: `models/${id}`, displayName: id, inputTokenLimit: 1_000_000, outputTokenLimit: 65_536, supportedGenerationMethods: ["generateContent", "countTokens"] };
  }
  if (api === "anthropic") return { type: "model", id, display_name: id, created_at: "2025-01-01T00:00:00Z" };
  return { id, object: "model", created: 1_700_000_000, owned_by: "fake" };
}

// --- Gemini generateContent

/** A JSON-mode request (Gemini CLI's internal checks ask for an object of a given schema) gets such an object. */
function geminiText(body: any, reply: string): string {
  const config = body?.generationConfig ?? body?.generation_config ?? {};
  const mime = config.responseMimeType ?? config.response_mime_type;
  if (mime !== "application/json") return reply;
  return JSON.stringify(fromSchema(config.responseJsonSchema ?? config.responseSchema ?? config.response_schema, reply));
}

/** A value that fits a JSON schema (Gemini's upper-case type names too): strings carry the reply. */
function fromSchema(schema: any, reply: string): unknown {
  const type = String(schema?.type ?? "object").toLowerCase();
  if (Array.isArray(schema?.enum) && schema.enum.length > 0) return schema.enum[0];
  if (type === "string") return reply;
  if (type === "integer" || type === "number") return 1;
  if (type === "boolean") return false;
  if (type === "array") return [];
  const out: Record<string, unknown> = {};
  for (const [key, sub] of Object.entries(schema?.properties ?? {})) out[key] = fromSchema(sub, reply);
  if (Object.keys(out).length === 0) out.reasoning = reply;
  return out;
}

function geminiChunk(model: string, text: string, last: boolean) {
  return {
    candidates: [{ content: { role: "model", parts: [{ text }] }, index: 0, ...(last ? { finishReason: "STOP" } : {}) }],
    ...(last ? { usageMetadata: { promptTokenCount: 5, candidatesTokenCount: 7, totalTokenCount: 12 } } : {}),
    modelVersion: model,
    responseId: "fake-response",
  };
}

function geminiChunks(model: string, text: string) {
  const [a, b] = halves(text);
  return text.startsWith("{") ? [geminiChunk(model, text, true)] : [geminiChunk(model, a, false), geminiChunk(model, b, true)];
}
