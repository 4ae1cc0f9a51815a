// A fake LLM provider for end-to-end tests behind the real LiteLLM: OpenAI chat completions and responses,
// Anthropic messages, JSON or SSE, recording every request (path, headers, body) that LiteLLM makes.
import { startBackend, type Received, type RecordingBackend } from "./backend.ts";

/** A running fake provider: a recording backend that answers like OpenAI and Anthropic. */
export interface FakeProvider extends RecordingBackend {
  /** Resolves with the first request whose body contains `marker` (at once if it already arrived). */
  requestWith(marker: string): Promise<Received>;
}

/**
 * Starts the fake provider on 127.0.0.1, port 0.
 * Its answer names the `x-sm-user-id` it received and echoes the last user message, so a client
 * can tell that the content came from this provider, for this request.
 */
export function startFakeProvider(): FakeProvider {
  const waiters: { marker: string; resolve: (r: Received) => void }[] = [];
  const backend = startBackend((_req, r) => {
    const text = new TextDecoder().decode(r.body);
    for (let i = waiters.length - 1; i >= 0; i--) {
      if (text.includes(waiters[i]!.marker)) waiters.splice(i, 1)[0]!.resolve(r);
    }
    return answer(r, text);
  });
  const requestWith = (marker: string) => {
    const found = backend.received.find((r) => new TextDecoder().decode(r.body).includes(marker));
    return found ? Promise.resolve(found) : new Promise<Received>((resolve) => waiters.push({ marker, resolve }));
  };
  return Object.assign(backend, { requestWith });
}

/** What the provider says: who it thinks the user is, and what it was asked. */
export function replyText(r: Received, said: string): string {
  return `fake reply for ${r.headers.get("x-sm-user-id") ?? "(no x-sm-user-id)"}: ${said}`;
}

function answer(r: Received, text: string): Response {
  let body: any;
  try {
    body = JSON.parse(text);
  } catch {
    return Response.json({ error: { message: "fake provider: body is not JSON" } }, { status: 400 });
  }
  const path = r.path.split("?")[0]!;
  const model = String(body?.model ?? "fake");
  const said = lastUserText(body);
  const reply = replyText(r, said);
  if (r.method === "POST" && path.endsWith("/chat/completions")) {
    return body.stream === true ? sse(openaiEvents(model, reply)) : Response.json(openaiMessage(model, reply));
  }
  if (r.method === "POST" && path.endsWith("/messages")) {
    return body.stream === true ? sse(anthropicEvents(model, reply)) : Response.json(anthropicMessage(model, reply));
  }
  if (r.method === "POST" && path.endsWith("/responses")) {
    return body.stream === true ? sse(responsesEvents(model, reply)) : Response.json(responsesMessage(model, reply));
  }
  return Response.json({ error: { message: `fake provider: no route for ${r.method} ${r.path}` } }, { status: 404 });
}

/** The last user text of a chat, messages or responses request (`input` as a string or a list of items). */
function lastUserText(body: any): string {
  if (typeof body?.input === "string") return body.input;
  const items = Array.isArray(body?.messages) ? body.messages : Array.isArray(body?.input) ? body.input : [];
  const content = items.at(-1)?.content;
  if (typeof content === "string") return content;
  // Chat and messages parts carry `text`; responses parts are { type: "input_text", text }.
  if (Array.isArray(content)) return content.map((c: any) => (typeof c?.text === "string" ? c.text : "")).join("");
  return "";
}

function sse(events: string[]): Response {
  const enc = new TextEncoder();
  const body = new ReadableStream<Uint8Array>({
    start(c) {
      for (const e of events) c.enqueue(enc.encode(e));
      c.close();
    },
  });
  return new Response(body, { headers: { "content-type": "text/event-stream", "cache-control": "no-cache" } });
}

const USAGE = { prompt_tokens: 5, completion_tokens: 7, total_tokens: 12 };

function openaiMessage(model: string, reply: string) {
  return {
    id: "chatcmpl-fake",
    object: "chat.completion",
    created: Math.floor(Date.now() / 1000),
    model,
    choices: [{ index: 0, message: { role: "assistant", content: reply }, finish_reason: "stop" }],
    usage: USAGE,
  };
}

function openaiEvents(model: string, reply: string): string[] {
  const created = Math.floor(Date.now() / 1000);
  const chunk = (delta: object, finish_reason: string | null = null) =>
    `data: ${JSON.stringify({ id: "chatcmpl-fake", object: "chat.completion.chunk", created, model, choices: [{ index: 0, delta, finish_reason }] })}\n\n`;
  // The reply in two pieces, so the client has to join deltas as it would with a real stream.
  const half = Math.ceil(reply.length / 2);
  return [
    chunk({ role: "assistant", content: "" }),
    chunk({ content: reply.slice(0, half) }),
    chunk({ content: reply.slice(half) }),
    chunk({}, "stop"),
    "data: [DONE]\n\n",
  ];
}

function anthropicMessage(model: string, reply: string) {
  return {
    id: "msg_fake",
    type: "message",
    role: "assistant",
    model,
    content: [{ type: "text", text: reply }],
    stop_reason: "end_turn",
    stop_sequence: null,
    usage: { input_tokens: 5, output_tokens: 7 },
  };
}

function anthropicEvents(model: string, reply: string): string[] {
  const ev = (name: string, data: object) => `event: ${name}\ndata: ${JSON.stringify({ type: name, ...data })}\n\n`;
  const half = Math.ceil(reply.length / 2);
  return [
    ev("message_start", {
      message: { id: "msg_fake", type: "message", role: "assistant", model, content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: 5, output_tokens: 1 } },
    }),
    // Early, as Anthropic does: LiteLLM holds back message_start until a ping or the first delta.
    ev("ping", {}),
    ev("content_block_start", { index: 0, content_block: { type: "text", text: "" } }),
    ev("content_block_delta", { index: 0, delta: { type: "text_delta", text: reply.slice(0, half) } }),
    ev("content_block_delta", { index: 0, delta: { type: "text_delta", text: reply.slice(half) } }),
    ev("content_block_stop", { index: 0 }),
    ev("message_delta", { delta: { stop_reason: "end_turn", stop_sequence: null }, usage: { output_tokens: 7 } }),
    ev("message_stop", {}),
  ];
}

function responsesMessage(model: string, reply: string, status = "completed") {
  return {
    id: "resp_fake",
    object: "response",
    created_at: Math.floor(Date.now() / 1000),
    status,
    model,
    output: [
      { type: "message", id: "msg_fake", status: "completed", role: "assistant", content: [{ type: "output_text", text: reply, annotations: [] }] },
    ],
    usage: { input_tokens: 5, output_tokens: 7, total_tokens: 12 },
  };
}

function responsesEvents(model: string, reply: string): string[] {
  let seq = 0;
  const ev = (type: string, data: object) => `event: ${type}\ndata: ${JSON.stringify({ type, sequence_number: seq++, ...data })}\n\n`;
  const half = Math.ceil(reply.length / 2);
  const item = { type: "message", id: "msg_fake", status: "in_progress", role: "assistant", content: [] };
  const part = { type: "output_text", text: "", annotations: [] };
  const started = { ...responsesMessage(model, "", "in_progress"), output: [], usage: null };
  return [
    ev("response.created", { response: started }),
    ev("response.in_progress", { response: started }),
    ev("response.output_item.added", { output_index: 0, item }),
    ev("response.content_part.added", { item_id: "msg_fake", output_index: 0, content_index: 0, part }),
    ev("response.output_text.delta", { item_id: "msg_fake", output_index: 0, content_index: 0, delta: reply.slice(0, half) }),
    ev("response.output_text.delta", { item_id: "msg_fake", output_index: 0, content_index: 0, delta: reply.slice(half) }),
    ev("response.output_text.done", { item_id: "msg_fake", output_index: 0, content_index: 0, text: reply }),
    ev("response.content_part.done", { item_id: "msg_fake", output_index: 0, content_index: 0, part: { ...part, text: reply } }),
    ev("response.output_item.done", { output_index: 0, item: responsesMessage(model, reply).output[0] }),
    ev("response.completed", { response: responsesMessage(model, reply) }),
  ];
}
