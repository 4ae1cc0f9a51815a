// A fake LLM provider for end-to-end tests behind the real LiteLLM: OpenAI chat completions and responses,
// Anthropic messages, JSON or SSE, recording every request (path, headers, body) that LiteLLM makes.
import { startBackend, type Received, type RecordingBackend } from "./backend.ts";
import { anthropicEvents, anthropicMessage, chatEvents, chatMessage, responseEvents, responseObject, sse } from "./provider-answers.ts";

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
    return body.stream === true ? sse(chatEvents(model, reply, body)) : Response.json(chatMessage(model, reply));
  }
  if (r.method === "POST" && path.endsWith("/messages")) {
    return body.stream === true ? sse(anthropicEvents(model, reply)) : Response.json(anthropicMessage(model, reply));
  }
  if (r.method === "POST" && path.endsWith("/responses")) {
    return body.stream === true ? sse(responseEvents(model, reply)) : Response.json(responseObject(model, reply));
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
