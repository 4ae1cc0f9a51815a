// What fake LLM providers answer in the tests: OpenAI chat completions and Responses, Anthropic messages, JSON or
// SSE, built once for every fake provider (the LiteLLM end-to-end tests' and the real clients').

/** An SSE response carrying these events whole. */
export function sse(events: string[]): Response {
  const enc = new TextEncoder();
  const body = new ReadableStream<Uint8Array>({
    start(c) {
      for (const e of events) c.enqueue(enc.encode(e));
      c.close();
    },
  });
  return new Response(body, { headers: { "content-type": "text/event-stream", "cache-control": "no-cache" } });
}

/** Unix seconds now. */
export const now = () => Math.floor(Date.now() / 1000);
/** A text in two halves, for two deltas. */
export const halves = (s: string): [string, string] => [s.slice(0, Math.ceil(s.length / 2)), s.slice(Math.ceil(s.length / 2))];

// --- OpenAI chat completions

/** A chat completion answering with `reply`. */
export function chatMessage(model: string, reply: string) {
  return {
    id: "chatcmpl-fake",
    object: "chat.completion",
    created: now(),
    model,
    choices: [{ index: 0, message: { role: "assistant", content: reply, refusal: null }, logprobs: null, finish_reason: "stop" }],
    usage: { prompt_tokens: 5, completion_tokens: 7, total_tokens: 12 },
  };
}

/** The chat-completion stream of `reply` in two deltas, with usage when the request asks for it. */
export function chatEvents(model: string, reply: string, body: any): string[] {
  const created = now();
  const chunk = (delta: object, finish_reason: string | null = null, extra: object = {}) =>
    `data: ${JSON.stringify({ id: "chatcmpl-fake", object: "chat.completion.chunk", created, model, choices: [{ index: 0, delta, logprobs: null, finish_reason }], ...extra })}\n\n`;
  const [a, b] = halves(reply);
  const events = [chunk({ role: "assistant", content: "" }), chunk({ content: a }), chunk({ content: b }), chunk({}, "stop")];
  if (body?.stream_options?.include_usage) {
    events.push(`data: ${JSON.stringify({ id: "chatcmpl-fake", object: "chat.completion.chunk", created, model, choices: [], usage: { prompt_tokens: 5, completion_tokens: 7, total_tokens: 12 } })}\n\n`);
  }
  events.push("data: [DONE]\n\n");
  return events;
}

// --- OpenAI Responses API

/** A Responses API answer (or its in-progress shell). */
export function responseObject(model: string, reply: string, status = "completed") {
  return {
    id: "resp_fake",
    object: "response",
    created_at: now(),
    status,
    model,
    output:
      status === "completed"
        ? [{ type: "message", id: "msg_fake", status: "completed", role: "assistant", content: [{ type: "output_text", text: reply, annotations: [] }] }]
        : [],
    usage:
      status === "completed"
        ? { input_tokens: 5, input_tokens_details: { cached_tokens: 0 }, output_tokens: 7, output_tokens_details: { reasoning_tokens: 0 }, total_tokens: 12 }
        : null,
  };
}

/** The Responses API event stream of `reply`. */
export function responseEvents(model: string, reply: string): string[] {
  let seq = 0;
  const ev = (type: string, data: object) => `event: ${type}\ndata: ${JSON.stringify({ type, sequence_number: seq++, ...data })}\n\n`;
  const item = { type: "message", id: "msg_fake", status: "in_progress", role: "assistant", content: [] as object[] };
  const part = { type: "output_text", text: "", annotations: [] };
  const [a, b] = halves(reply);
  const done = { ...item, status: "completed", content: [{ ...part, text: reply }] };
  return [
    ev("response.created", { response: responseObject(model, reply, "in_progress") }),
    ev("response.in_progress", { response: responseObject(model, reply, "in_progress") }),
    ev("response.output_item.added", { output_index: 0, item }),
    ev("response.content_part.added", { item_id: "msg_fake", output_index: 0, content_index: 0, part }),
    ev("response.output_text.delta", { item_id: "msg_fake", output_index: 0, content_index: 0, delta: a }),
    ev("response.output_text.delta", { item_id: "msg_fake", output_index: 0, content_index: 0, delta: b }),
    ev("response.output_text.done", { item_id: "msg_fake", output_index: 0, content_index: 0, text: reply }),
    ev("response.content_part.done", { item_id: "msg_fake", output_index: 0, content_index: 0, part: { ...part, text: reply } }),
    ev("response.output_item.done", { output_index: 0, item: done }),
    ev("response.completed", { response: responseObject(model, reply) }),
  ];
}

// --- Anthropic messages

/** An Anthropic message answering with `reply`. */
export function anthropicMessage(model: string, reply: string) {
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

/** The Anthropic messages stream of `reply` (message_start, a ping, two deltas, usage at the end). */
export function anthropicEvents(model: string, reply: string): string[] {
  const ev = (name: string, data: object) => `event: ${name}\ndata: ${JSON.stringify({ type: name, ...data })}\n\n`;
  const [a, b] = halves(reply);
  return [
    ev("message_start", {
      message: { id: "msg_fake", type: "message", role: "assistant", model, content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: 5, output_tokens: 1 } },
    }),
    ev("ping", {}),
    ev("content_block_start", { index: 0, content_block: { type: "text", text: "" } }),
    ev("content_block_delta", { index: 0, delta: { type: "text_delta", text: a } }),
    ev("content_block_delta", { index: 0, delta: { type: "text_delta", text: b } }),
    ev("content_block_stop", { index: 0 }),
    ev("message_delta", { delta: { stop_reason: "end_turn", stop_sequence: null }, usage: { output_tokens: 7 } }),
    ev("message_stop", {}),
  ];
}
