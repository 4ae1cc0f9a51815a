// A fake Supermemory Memory Router for end-to-end tests: https://api.supermemory.ai/v3/<provider URL> on a local
// port, behaving as Supermemory's router pages document it (supermemoryai/supermemory, apps/docs/memory-router/
// {overview,usage}.mdx and model-enhancement/identifying-users.mdx at 816b85d7, the commit before PR #1331
// removed them): it reads x-supermemory-api-key and the user id (x-sm-user-id header, else the body's `user`,
// else ?userId=), forwards the request to the provider URL in its path, and answers with the provider's answer
// plus its x-supermemory-* headers. When memory fails it passes the request through with x-supermemory-error.
import { startBackend, type Received, type RecordingBackend } from "./backend.ts";

/**
 * How the router answers: `memory` as documented; `fail` passes through with x-supermemory-error (what the
 * router does when memory fails); `bare` passes through without any x-supermemory-* header (a plain proxy,
 * i.e. a chain without Supermemory's router).
 */
export type FakeSupermemoryMode = "memory" | "fail" | "bare";

/** What the router saw of one request. */
export interface RouterCall {
  /** The provider URL from the path, e.g. https://api.openai.com/v1/chat/completions (query removed). */
  providerUrl: string;
  /** The user id it found, and where: the header first, then the body's `user`, then ?userId=. */
  userId: string | null;
  userIdFrom: "header" | "body" | "query" | null;
  conversationId: string;
  /** The x-supermemory-api-key was the expected one. */
  keyOk: boolean;
  /** The response headers the router added. */
  answered: Record<string, string>;
  /** The request as it arrived (path, headers, body). */
  received: Received;
}

/** A running fake router. */
export interface FakeSupermemory extends AsyncDisposable {
  /** Its base URL; api_base is `${url}/v3/<provider URL>`. */
  readonly url: string;
  /** How it answers the next requests; tests may change it between requests. */
  mode: FakeSupermemoryMode;
  /** The error text sent in x-supermemory-error in `fail` mode. */
  errorText: string;
  readonly calls: RouterCall[];
  /** Resolves with the first call whose request body contains `marker` (at once if it already arrived). */
  callWith(marker: string): Promise<RouterCall>;
  /** The memories stored per user id (the last user texts it saw). */
  readonly memories: Map<string, string[]>;
  stop(): Promise<void>;
}

/** Options: the Supermemory key it accepts, and where provider origins really go (e.g. to the fake provider). */
export interface FakeSupermemoryOptions {
  apiKey: string;
  /** Provider URL prefix -> replacement, e.g. { "https://api.openai.com": fakeProvider.url }. */
  upstreams?: Record<string, string>;
  mode?: FakeSupermemoryMode;
}

const OWN_REQUEST_HEADERS = new Set(["x-supermemory-api-key", "host", "content-length", "connection", "accept-encoding"]);
const DROPPED_ANSWER_HEADERS = new Set(["content-length", "content-encoding", "transfer-encoding", "connection", "date"]);
/** Memories handed back per request at most. */
const RETRIEVE_LIMIT = 5;

/** Starts the fake router on 127.0.0.1, port 0. */
export function startFakeSupermemory(options: FakeSupermemoryOptions): FakeSupermemory {
  const calls: RouterCall[] = [];
  const memories = new Map<string, string[]>();
  const waiters: { marker: string; resolve: (c: RouterCall) => void }[] = [];
  let conversations = 0;

  const backend: RecordingBackend = startBackend(async (_req, r) => {
    const query = r.path.indexOf("?");
    const target = query < 0 ? r.path : r.path.slice(0, query);
    const params = new URLSearchParams(query < 0 ? "" : r.path.slice(query + 1));
    const m = /^\/v3\/(https?:\/\/.+)$/.exec(target);
    if (!m) return Response.json({ error: `fake Supermemory: expected /v3/<provider URL>, got ${r.path}` }, { status: 404 });
    const providerUrl = m[1]!;
    const text = new TextDecoder().decode(r.body);
    let body: any;
    try {
      body = JSON.parse(text);
    } catch {
      body = undefined;
    }
    const header = r.headers.get("x-sm-user-id");
    const fromBody = typeof body?.user === "string" && body.user ? body.user : null;
    const fromQuery = params.get("userId");
    const [userId, userIdFrom] = header ? [header, "header" as const] : fromBody ? [fromBody, "body" as const] : fromQuery ? [fromQuery, "query" as const] : [null, null];
    const conversationId = r.headers.get("x-sm-conversation-id") ?? `conv_fake_${++conversations}`;
    const keyOk = r.headers.get("x-supermemory-api-key") === options.apiKey;

    const answered: Record<string, string> = {};
    if (sm.mode !== "bare") {
      if (!keyOk) answered["x-supermemory-error"] = "invalid or missing x-supermemory-api-key";
      else if (sm.mode === "fail") answered["x-supermemory-error"] = sm.errorText;
      else {
        const stored = userId ? (memories.get(userId) ?? []) : [];
        const retrieved = Math.min(stored.length, RETRIEVE_LIMIT);
        answered["x-supermemory-conversation-id"] = conversationId;
        answered["x-supermemory-context-modified"] = String(retrieved > 0);
        answered["x-supermemory-tokens-processed"] = String(Math.ceil(r.body.length / 4));
        answered["x-supermemory-chunks-created"] = "1";
        answered["x-supermemory-chunks-retrieved"] = String(retrieved);
        if (userId) memories.set(userId, [...stored, text]);
      }
    }
    const call: RouterCall = { providerUrl, userId, userIdFrom, conversationId, keyOk, answered, received: r };
    calls.push(call);
    for (let i = waiters.length - 1; i >= 0; i--) {
      if (text.includes(waiters[i]!.marker)) waiters.splice(i, 1)[0]!.resolve(call);
    }

    // The provider gets the request without the Supermemory key. x-sm-user-id stays on it here, so that the
    // fake provider's reply can name the user (a real router's forwarding of it is not documented).
    const headers = new Headers();
    r.headers.forEach((value, name) => {
      if (!OWN_REQUEST_HEADERS.has(name)) headers.set(name, value);
    });
    let upstream = providerUrl;
    for (const [from, to] of Object.entries(options.upstreams ?? {})) {
      if (upstream.startsWith(from)) upstream = to + upstream.slice(from.length);
    }
    params.delete("userId");
    const qs = params.toString();
    const res = await fetch(qs ? `${upstream}?${qs}` : upstream, {
      method: r.method,
      headers,
      body: r.method === "GET" || r.method === "HEAD" ? undefined : r.body,
    });
    const out = new Headers();
    res.headers.forEach((value, name) => {
      if (!DROPPED_ANSWER_HEADERS.has(name)) out.set(name, value);
    });
    for (const [name, value] of Object.entries(answered)) out.set(name, value);
    return new Response(res.body, { status: res.status, headers: out });
  });

  const sm: FakeSupermemory = {
    url: backend.url,
    mode: options.mode ?? "memory",
    errorText: "memory service unavailable (fake)",
    calls,
    memories,
    callWith(marker) {
      const found = calls.find((c) => new TextDecoder().decode(c.received.body).includes(marker));
      return found ? Promise.resolve(found) : new Promise((resolve) => waiters.push({ marker, resolve }));
    },
    stop: () => backend.stop(),
    [Symbol.asyncDispose]: () => backend.stop(),
  };
  return sm;
}
