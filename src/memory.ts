// What the memory layer said about one answer: Supermemory's router adds x-supermemory-* headers, which LiteLLM
// passes back renamed llm_provider-x-supermemory-*. Also a watcher that notices an id whose answers keep coming
// back without memory, and the choice of a conversation id from a client's own session header.

import type { HeaderMap } from "./http.ts";

/** Supermemory's verdict on one answer. */
export interface MemoryOutcome {
  /**
   * used: the router answered with its memory headers; error: it passed the request through with
   * x-supermemory-error (memory failed); absent: the provider's headers came back through LiteLLM without any
   * of the router's, so Supermemory's router is not in the chain.
   */
  state: "used" | "error" | "absent";
  /** The router added memories to the prompt (x-supermemory-context-modified); null when it did not say. */
  context_added: boolean | null;
  /** x-supermemory-error, shortened and without control characters. */
  error: string | null;
  conversation_id: string | null;
  tokens_processed: number | null;
  chunks_retrieved: number | null;
}

const PREFIX = "x-supermemory-";
/** LiteLLM's name for a provider's response header (litellm_core_utils/llm_response_utils/get_headers.py). */
const LITELLM_PREFIX = "llm_provider-";
/**
 * A provider header LiteLLM always passes back when it passes provider headers back at all: every answer has a
 * Content-Type. LiteLLM 1.108.7 drops all provider headers on some routes (/v1/messages not streamed,
 * /v1/messages to an openai/ model, /v1/responses streamed from an anthropic/ model): there, no memory header
 * says nothing.
 */
const PROVIDER_HEADERS_PROBE = "llm_provider-content-type";
const TEXT_MAX = 200;

/**
 * Reads Supermemory's answer headers, direct or as LiteLLM renames them.
 * @param headers the backend's response headers (a 2xx answer of an LLM route; errors say nothing about memory).
 * @returns the outcome, or null when the answer cannot tell (no memory header, and LiteLLM passed back no
 *   provider header on this route either).
 */
export function memoryOutcome(headers: HeaderMap): MemoryOutcome | null {
  const get = (name: string) => headers[PREFIX + name] ?? headers[LITELLM_PREFIX + PREFIX + name] ?? null;
  const error = get("error");
  const conversation = get("conversation-id");
  const modified = get("context-modified");
  const tokens = get("tokens-processed");
  const retrieved = get("chunks-retrieved");
  if (error === null && conversation === null && modified === null && tokens === null && retrieved === null && get("chunks-created") === null) {
    if (headers[PROVIDER_HEADERS_PROBE] === undefined) return null;
    return { state: "absent", context_added: null, error: null, conversation_id: null, tokens_processed: null, chunks_retrieved: null };
  }
  const chunks = count(retrieved);
  const cleanError = error === null || !error.trim() ? null : text(error);
  return {
    state: cleanError !== null ? "error" : "used",
    context_added: modified !== null ? modified.trim().toLowerCase() === "true" : chunks !== null ? chunks > 0 : null,
    error: cleanError,
    conversation_id: conversation === null ? null : text(conversation),
    tokens_processed: count(tokens),
    chunks_retrieved: chunks,
  };
}

function count(value: string | null): number | null {
  if (value === null || !/^\s*\d{1,15}\s*$/.test(value)) return null;
  return Number(value);
}

/** Text from a remote header, fit for a log line. */
function text(value: string): string {
  const clean = value.replace(/[\u0000-\u001f\u007f]/g, " ").trim();
  return clean.length > TEXT_MAX ? `${clean.slice(0, TEXT_MAX)}…` : clean;
}

/** Options for MemoryWatch. */
export interface MemoryWatchOptions {
  /** Answers in a row without memory (absent or error) before a warning. Default 5. */
  threshold?: number;
  /** At most one warning per id per this many milliseconds. Default 10 minutes. */
  intervalMs?: number;
  /** Ids followed at once; the least recently seen is forgotten beyond it (clients may send random ids). Default 1000. */
  maxIds?: number;
}

interface Streak {
  absent: number;
  errors: number;
  lastError: string | null;
  warnedAt: number;
}

/**
 * Notices a memory id whose answers keep coming back without memory. Pure: the caller passes the clock.
 * An answer that cannot tell (outcome null) neither counts nor breaks a run; a "used" one ends it.
 */
export class MemoryWatch {
  private readonly threshold: number;
  private readonly intervalMs: number;
  private readonly maxIds: number;
  private readonly streaks = new Map<string, Streak>();

  constructor(options: MemoryWatchOptions = {}) {
    this.threshold = Math.max(1, options.threshold ?? 5);
    this.intervalMs = options.intervalMs ?? 10 * 60_000;
    this.maxIds = Math.max(1, options.maxIds ?? 1000);
  }

  /**
   * Takes one answer's outcome for a memory id.
   * @returns a warning to log when this id's last `threshold` answers all came back without memory and it was
   *   not warned about within the interval; undefined otherwise.
   */
  observe(userId: string, outcome: MemoryOutcome | null, nowMs: number): string | undefined {
    if (outcome === null) return undefined;
    let s = this.streaks.get(userId);
    if (outcome.state === "used") {
      if (s) {
        s.absent = 0;
        s.errors = 0;
      }
      return undefined;
    }
    if (s) this.streaks.delete(userId); // re-inserted last: the map's order is least recently seen first
    else {
      s = { absent: 0, errors: 0, lastError: null, warnedAt: -Infinity };
      if (this.streaks.size >= this.maxIds) this.streaks.delete(this.streaks.keys().next().value!);
    }
    this.streaks.set(userId, s);
    if (outcome.state === "error") {
      s.errors++;
      s.lastError = outcome.error;
    } else s.absent++;
    if (s.absent + s.errors < this.threshold || nowMs - s.warnedAt < this.intervalMs) return undefined;
    s.warnedAt = nowMs;
    const n = s.absent + s.errors;
    if (s.errors >= s.absent) {
      return (
        `memory is failing for user id ${JSON.stringify(userId)}: its last ${n} answers came back without memory ` +
        `(${s.errors} with x-supermemory-error, last: ${JSON.stringify(s.lastError)}). Supermemory's router passes requests ` +
        `through when memory fails: check the Supermemory key (x-supermemory-api-key in each model's extra_headers) and run memproxy doctor`
      );
    }
    return (
      `memory is off for user id ${JSON.stringify(userId)}: its last ${n} answers came back without any Supermemory header ` +
      `(${s.absent} without, ${s.errors} with x-supermemory-error), so Supermemory's router is not in the chain: ` +
      `each model's api_base must be https://api.supermemory.ai/v3/<provider URL>; run memproxy doctor`
    );
  }
}

/** What a conversation id taken from a client's header may look like (as a user id, a little longer). */
const CONVERSATION_ID = /^[A-Za-z0-9._:@/-]{1,200}$/;

/**
 * The conversation id for a request: the value of the first of `sessionHeaders` the client sent, when it is a
 * well-formed id. The caller sends it as x-sm-conversation-id only when the client sent no x-sm-conversation-id
 * of its own (backendRequestHeaders does that).
 * @param headers the client's request headers.
 * @param sessionHeaders lower-case header names from memproxy.forward.conversation_headers, in order.
 */
export function conversationIdFrom(headers: HeaderMap, sessionHeaders: readonly string[]): string | undefined {
  for (const name of sessionHeaders) {
    const value = headers[name]?.trim();
    if (value && CONVERSATION_ID.test(value)) return value;
  }
  return undefined;
}
