// Token usage read from a backend's response as its bytes pass by: JSON bodies and SSE streams (OpenAI chat
// completions, Anthropic messages, OpenAI Responses). Pure: fed chunk by chunk, no I/O, never throws.

/** Tokens reported by the backend for one response; `model` as the backend named it, when it did. */
export interface Usage {
  inputTokens: number;
  outputTokens: number;
  model?: string;
}

/** Reads usage from a response body fed chunk by chunk. */
export interface UsageParser {
  /** Looks at a chunk; keeps no reference to it beyond what the format needs. */
  push(chunk: Uint8Array): void;
  /** The body ended: the usage seen, or undefined when the body reported none. */
  end(): Usage | undefined;
}

/** A JSON body up to this size is parsed whole; beyond it only its tail is searched for "usage". */
const JSON_WHOLE_LIMIT = 1024 * 1024;
const JSON_TAIL = 64 * 1024;
/** An SSE event larger than this (a huge response.completed) is skipped rather than held. */
const SSE_EVENT_LIMIT = 8 * 1024 * 1024;

/**
 * Chooses a parser by the response's content type.
 * @returns a parser for JSON or SSE bodies, or undefined for anything else (nothing to read).
 */
export function usageParserFor(contentType: string | null): UsageParser | undefined {
  if (!contentType) return undefined;
  if (contentType.includes("text/event-stream")) return new SseUsage();
  if (contentType.includes("json")) return new JsonUsage();
  return undefined;
}

/** Accumulates usage from parsed objects: later reports overwrite earlier ones (streams report cumulative counts). */
class UsageState {
  input: number | undefined;
  output: number | undefined;
  model: string | undefined;

  /** Takes usage and model from a response object, an SSE event's payload, or a message/response wrapper in it. */
  take(obj: unknown): void {
    if (!isObject(obj)) return;
    this.takeUsage(obj.usage);
    this.takeModel(obj.model);
    // Anthropic's message_start wraps the message; the Responses API's events wrap the response.
    for (const inner of [obj.message, obj.response]) {
      if (isObject(inner)) {
        this.takeUsage(inner.usage);
        this.takeModel(inner.model);
      }
    }
  }

  private takeModel(model: unknown): void {
    if (this.model === undefined && typeof model === "string" && model) this.model = model;
  }

  private takeUsage(usage: unknown): void {
    if (!isObject(usage)) return;
    // OpenAI chat and embeddings: prompt_tokens / completion_tokens.
    if (isCount(usage.prompt_tokens)) this.input = usage.prompt_tokens;
    if (isCount(usage.completion_tokens)) this.output = usage.completion_tokens;
    // Anthropic and the Responses API: input_tokens / output_tokens. Anthropic counts cache reads and
    // writes apart from input_tokens; they are input the model read, so they are added in.
    if (isCount(usage.input_tokens)) {
      let input = usage.input_tokens;
      if (isCount(usage.cache_creation_input_tokens)) input += usage.cache_creation_input_tokens;
      if (isCount(usage.cache_read_input_tokens)) input += usage.cache_read_input_tokens;
      this.input = input;
    }
    if (isCount(usage.output_tokens)) this.output = usage.output_tokens;
  }

  result(): Usage | undefined {
    if (this.input === undefined && this.output === undefined) return undefined;
    const usage: Usage = { inputTokens: this.input ?? 0, outputTokens: this.output ?? 0 };
    if (this.model !== undefined) usage.model = this.model;
    return usage;
  }
}

/** For one-shot decoding (no state kept between calls): one for all, not a native object per response. */
const utf8 = new TextDecoder();

/** A JSON body: small ones are kept (as the chunks themselves, no copy) and parsed at the end. */
class JsonUsage implements UsageParser {
  private chunks: Uint8Array[] = [];
  private size = 0;
  private tail: Uint8Array | undefined;

  push(chunk: Uint8Array): void {
    this.size += chunk.length;
    if (this.size <= JSON_WHOLE_LIMIT) {
      this.chunks.push(chunk);
      return;
    }
    // Too big to keep whole (a large embeddings batch): keep a rolling tail, where "usage" sits.
    const joined = concat(this.tail ? [this.tail, ...this.chunks, chunk] : [...this.chunks, chunk]);
    this.chunks = [];
    this.tail = joined.length > JSON_TAIL ? joined.slice(joined.length - JSON_TAIL) : joined;
  }

  end(): Usage | undefined {
    const state = new UsageState();
    if (this.tail === undefined) {
      state.take(parseJson(utf8.decode(concat(this.chunks))));
    } else {
      state.take({ usage: usageFromTail(utf8.decode(this.tail)) });
    }
    this.chunks = [];
    this.tail = undefined;
    return state.result();
  }
}

/**
 * Finds the last `"usage": {...}` object in the tail of a JSON text. A `"usage"` whose quote is
 * preceded by an odd number of backslashes is inside a string and is skipped.
 */
function usageFromTail(text: string): unknown {
  for (let at = text.lastIndexOf('"usage"'); at >= 0; at = at > 0 ? text.lastIndexOf('"usage"', at - 1) : -1) {
    let slashes = 0;
    while (at - slashes - 1 >= 0 && text.charCodeAt(at - slashes - 1) === 92) slashes++;
    if (slashes % 2) continue;
    const colon = skipSpace(text, at + 7);
    if (text[colon] !== ":") continue;
    const open = skipSpace(text, colon + 1);
    if (text[open] !== "{") continue;
    const close = objectEnd(text, open);
    if (close > 0) return parseJson(text.slice(open, close + 1));
  }
  return undefined;
}

function skipSpace(text: string, i: number): number {
  while (i < text.length && (text[i] === " " || text[i] === "\n" || text[i] === "\r" || text[i] === "\t")) i++;
  return i;
}

/** The index of the `}` closing the object that opens at `open`, or -1 when the text ends first. */
function objectEnd(text: string, open: number): number {
  let depth = 0;
  let inString = false;
  for (let i = open; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92) i++;
      else if (c === 34) inString = false;
    } else if (c === 34) inString = true;
    else if (c === 123 || c === 91) depth++;
    else if ((c === 125 || c === 93) && --depth === 0) return i;
  }
  return -1;
}

/**
 * An SSE stream, parsed per the HTML spec's line rules: lines end in LF, CRLF or CR (also when a CRLF is
 * split between chunks), `data:` with or without one space, events end at a blank line. Only events
 * whose data mentions "usage" are parsed as JSON: the many token events are skipped by a substring test.
 */
class SseUsage implements UsageParser {
  private decoder = new TextDecoder();
  private state = new UsageState();
  /** The unfinished line carried over from the previous chunk. */
  private partial = "";
  /** The current event's data lines, joined with LF. */
  private data = "";
  private hasData = false;
  private oversized = false;
  /** The previous chunk ended in CR: an LF that starts the next one belongs to the same line end. */
  private afterCR = false;

  /** The decoder holds no part of a character and no line is unfinished: the stream is between events. */
  private atBoundary = true;

  push(chunk: Uint8Array): void {
    // Most chunks are whole token events that matter to nobody: skipped without making a string.
    if (this.atBoundary && endsWithBlankLine(chunk) && !includesBytes(chunk, USAGE_KEY) && (this.state.model !== undefined || !includesBytes(chunk, MODEL_KEY))) {
      return;
    }
    this.feed(this.decoder.decode(chunk, { stream: true }));
    this.atBoundary = chunk.length > 0 && chunk[chunk.length - 1]! < 0x80 && this.partial === "" && !this.hasData && !this.afterCR && !this.oversized;
  }

  end(): Usage | undefined {
    this.feed(this.decoder.decode());
    // A stream cut before its final blank line still told its usage in the last event.
    if (this.partial) this.line(this.partial);
    this.partial = "";
    this.dispatch();
    return this.state.result();
  }

  private feed(text: string): void {
    let start = 0;
    if (this.afterCR && text.charCodeAt(0) === 10) start = 1;
    this.afterCR = false;
    for (let i = start; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c !== 10 && c !== 13) continue;
      const piece = text.slice(start, i);
      this.line(this.partial ? this.partial + piece : piece);
      this.partial = "";
      if (c === 13) {
        if (i + 1 === text.length) this.afterCR = true;
        else if (text.charCodeAt(i + 1) === 10) i++;
      }
      start = i + 1;
    }
    if (start < text.length) {
      this.partial += text.slice(start);
      if (this.partial.length > SSE_EVENT_LIMIT) {
        this.partial = "";
        this.oversized = true;
      }
    }
  }

  private line(line: string): void {
    if (line === "") return this.dispatch();
    if (!line.startsWith("data")) return;
    let value: string;
    if (line.length === 4) value = "";
    else if (line.charCodeAt(4) !== 58) return; // "data" followed by something other than ":"
    else value = line.charCodeAt(5) === 32 ? line.slice(6) : line.slice(5);
    if (this.oversized) return;
    if (this.hasData) this.data += "\n" + value;
    else this.data = value;
    this.hasData = true;
    if (this.data.length > SSE_EVENT_LIMIT) this.oversized = true;
  }

  private dispatch(): void {
    if (this.hasData && !this.oversized && this.data.includes('"usage"')) this.state.take(parseJson(this.data));
    else if (this.hasData && !this.oversized && this.state.model === undefined && this.data.includes('"model"')) {
      // The first event names the model (OpenAI chunks all do; Anthropic's message_start has usage too).
      this.state.take(parseJson(this.data));
    }
    this.data = "";
    this.hasData = false;
    this.oversized = false;
  }
}

const USAGE_KEY = new TextEncoder().encode('"usage"');
const MODEL_KEY = new TextEncoder().encode('"model"');

/** True when the bytes end an SSE event: a blank line, LF LF or CR LF CR LF (CR-only streams take the long way). */
function endsWithBlankLine(b: Uint8Array): boolean {
  const n = b.length;
  if (n >= 2 && b[n - 1] === 10 && b[n - 2] === 10) return true;
  return n >= 4 && b[n - 1] === 10 && b[n - 2] === 13 && b[n - 3] === 10 && b[n - 4] === 13;
}

/** Whether `needle` occurs in `hay`; a plain scan, allocating nothing. */
function includesBytes(hay: Uint8Array, needle: Uint8Array): boolean {
  const first = needle[0]!;
  const last = hay.length - needle.length;
  outer: for (let i = 0; i <= last; i++) {
    if (hay[i] !== first) continue;
    for (let j = 1; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return true;
  }
  return false;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function concat(chunks: Uint8Array[]): Uint8Array {
  if (chunks.length === 1) return chunks[0]!;
  let size = 0;
  for (const c of chunks) size += c.length;
  const out = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

function isCount(x: unknown): x is number {
  return typeof x === "number" && Number.isFinite(x) && x >= 0;
}
