import { describe, expect, test } from "bun:test";
import { usageParserFor, type Usage } from "../src/usage.ts";

const enc = new TextEncoder();
const SSE = "text/event-stream; charset=utf-8";
const JSON_TYPE = "application/json";

/** Feeds `chunks` to a new parser for `type` and returns what it read. */
function parse(type: string, chunks: Uint8Array[]): Usage | undefined {
  const p = usageParserFor(type)!;
  for (const c of chunks) p.push(c);
  return p.end();
}

/** Where each event of an SSE text ends (after its blank line: LF LF, CR LF CR LF or CR CR). */
function eventEnds(bytes: Uint8Array): number[] {
  const ends: number[] = [];
  for (let i = 1; i < bytes.length; i++) {
    const crlf = i >= 3 && bytes[i] === 10 && bytes[i - 1] === 13 && bytes[i - 2] === 10 && bytes[i - 3] === 13;
    const lflf = bytes[i] === 10 && bytes[i - 1] === 10;
    const crcr = bytes[i] === 13 && bytes[i - 1] === 13 && bytes[i + 1] !== 10;
    if (crlf || lflf || crcr) ends.push(i + 1);
  }
  return ends;
}

/** Every way to cut `bytes` in two, one byte at a time, one event per chunk, and one event per chunk with each cut in half. */
function* splits(bytes: Uint8Array): Generator<Uint8Array[]> {
  for (let at = 0; at <= bytes.length; at++) yield [bytes.subarray(0, at), bytes.subarray(at)];
  yield Array.from(bytes, (_, i) => bytes.subarray(i, i + 1));
  const ends = eventEnds(bytes);
  const starts = [0, ...ends];
  yield starts.map((from, i) => bytes.subarray(from, ends[i] ?? bytes.length));
  yield starts.flatMap((from, i) => {
    const to = ends[i] ?? bytes.length;
    const mid = from + Math.floor((to - from) / 2);
    return [bytes.subarray(from, mid), bytes.subarray(mid, to)];
  });
}

/** Asserts the same usage for every split of `text`. */
function expectAtEverySplit(type: string, text: string, want: Usage | undefined) {
  const bytes = enc.encode(text);
  let n = 0;
  for (const chunks of splits(bytes)) {
    const got = parse(type, chunks);
    if (JSON.stringify(got) !== JSON.stringify(want)) {
      throw new Error(`split ${chunks.map((c) => c.length).join("+")}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
    }
    n++;
  }
  expect(n).toBe(bytes.length + 4);
}

// OpenAI chat completions with stream_options.include_usage: usage null in each chunk, then a final chunk with it.
const OPENAI_CHAT = [
  `data: {"id":"c1","object":"chat.completion.chunk","model":"gpt-4o-mini","choices":[{"index":0,"delta":{"role":"assistant","content":""}}],"usage":null}`,
  `data: {"id":"c1","object":"chat.completion.chunk","model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":"Grüße 👋"}}],"usage":null}`,
  `data: {"id":"c1","object":"chat.completion.chunk","model":"gpt-4o-mini","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":null}`,
  `data: {"id":"c1","object":"chat.completion.chunk","model":"gpt-4o-mini","choices":[],"usage":{"prompt_tokens":31,"completion_tokens":7,"total_tokens":38}}`,
  `data: [DONE]`,
];

// Anthropic messages: input tokens in message_start, cumulative output tokens in message_delta.
const ANTHROPIC = [
  `event: message_start\ndata: {"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[],"usage":{"input_tokens":120,"cache_creation_input_tokens":10,"cache_read_input_tokens":5,"output_tokens":1}}}`,
  `event: content_block_start\ndata: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`,
  `event: ping\ndata: {"type": "ping"}`,
  `event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"the \\"usage\\": word in text"}}`,
  `event: content_block_stop\ndata: {"type":"content_block_stop","index":0}`,
  `event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":42}}`,
  `event: message_stop\ndata: {"type":"message_stop"}`,
];

// OpenAI Responses API: usage in response.completed.
const RESPONSES = [
  `event: response.created\ndata: {"type":"response.created","response":{"id":"resp_1","model":"gpt-5","status":"in_progress","usage":null}}`,
  `event: response.output_text.delta\ndata: {"type":"response.output_text.delta","delta":"Hi"}`,
  `event: response.completed\ndata: {"type":"response.completed","response":{"id":"resp_1","model":"gpt-5","status":"completed","usage":{"input_tokens":50,"input_tokens_details":{"cached_tokens":0},"output_tokens":9,"total_tokens":59}}}`,
];

const sse = (events: string[], eol = "\n") => events.map((e) => e.replaceAll("\n", eol) + eol + eol).join("");

describe("SSE usage, at every chunk split", () => {
  test("OpenAI chat completions: the final chunk's usage", () => {
    expectAtEverySplit(SSE, sse(OPENAI_CHAT), { inputTokens: 31, outputTokens: 7, model: "gpt-4o-mini" });
  });

  test("OpenAI chat completions with CRLF line ends", () => {
    expectAtEverySplit(SSE, sse(OPENAI_CHAT, "\r\n"), { inputTokens: 31, outputTokens: 7, model: "gpt-4o-mini" });
  });

  test("Anthropic messages: message_start input (cache reads and writes included) and message_delta output", () => {
    expectAtEverySplit(SSE, sse(ANTHROPIC), { inputTokens: 135, outputTokens: 42, model: "claude-sonnet-4-5" });
  });

  test("Anthropic messages with CRLF, and data: without a space", () => {
    const text = sse(ANTHROPIC, "\r\n").replaceAll("data: ", "data:");
    expectAtEverySplit(SSE, text, { inputTokens: 135, outputTokens: 42, model: "claude-sonnet-4-5" });
  });

  test("Responses API: response.completed", () => {
    expectAtEverySplit(SSE, sse(RESPONSES), { inputTokens: 50, outputTokens: 9, model: "gpt-5" });
  });

  test("Responses API with bare CR line ends", () => {
    expectAtEverySplit(SSE, sse(RESPONSES, "\r"), { inputTokens: 50, outputTokens: 9, model: "gpt-5" });
  });

  test("a model named only in a later event is still found, whole events skipped before it", () => {
    const events = [
      `data: {"choices":[{"delta":{"content":"a"}}]}`,
      `data: {"choices":[{"delta":{"content":"b"}}]}`,
      `data: {"model":"late-model","choices":[]}`,
      `data: {"usage":{"prompt_tokens":2,"completion_tokens":3}}`,
    ];
    expectAtEverySplit(SSE, sse(events), { inputTokens: 2, outputTokens: 3, model: "late-model" });
  });

  test("after an oversized event, the next events are read again", () => {
    const chunks = [`data: ${"x".repeat(9 * 1024 * 1024)}`, "\n\n", `data: {"usage":{"prompt_tokens":5,"completion_tokens":6}}\n\n`];
    expect(parse(SSE, chunks.map((c) => enc.encode(c)))).toEqual({ inputTokens: 5, outputTokens: 6 });
  });

  test("a stream without usage reports none", () => {
    expectAtEverySplit(SSE, sse(OPENAI_CHAT.filter((e) => !e.includes('"prompt_tokens"'))), undefined);
  });
});

describe("SSE parsing rules", () => {
  test("an event's data split over several data: lines is joined before parsing", () => {
    const text = `data: {"usage":\ndata: {"prompt_tokens":3,\ndata: "completion_tokens":4}}\n\n`;
    expect(parse(SSE, [enc.encode(text)])).toEqual({ inputTokens: 3, outputTokens: 4 });
  });

  test("comments, other fields and a field merely starting with data are ignored", () => {
    const text = `: keep-alive\nid: 7\nretry: 100\ndatax: {"usage":{"prompt_tokens":99}}\ndata: {"usage":{"prompt_tokens":1,"completion_tokens":2}}\n\n`;
    expect(parse(SSE, [enc.encode(text)])).toEqual({ inputTokens: 1, outputTokens: 2 });
  });

  test("a stream cut before its final blank line still counts the last event", () => {
    expect(parse(SSE, [enc.encode(`data: {"usage":{"prompt_tokens":5,"completion_tokens":6}}`)])).toEqual({ inputTokens: 5, outputTokens: 6 });
  });

  test("a CRLF split between chunks does not end the event early", () => {
    // If the LF after a chunk-final CR counted as a second line end, the blank line would dispatch
    // the first data line alone, which is not valid JSON.
    const chunks = [`data: {"usage":\r`, `\ndata: {"prompt_tokens":8,"completion_tokens":9}}\r\n\r\n`].map((t) => enc.encode(t));
    expect(parse(SSE, chunks)).toEqual({ inputTokens: 8, outputTokens: 9 });
  });

  test("broken JSON in an event is skipped, not thrown", () => {
    const text = `data: {"usage": nope}\n\ndata: {"usage":{"prompt_tokens":1,"completion_tokens":1}}\n\n`;
    expect(parse(SSE, [enc.encode(text)])).toEqual({ inputTokens: 1, outputTokens: 1 });
  });
});

describe("JSON bodies", () => {
  const cases: [string, unknown, Usage][] = [
    ["OpenAI chat completion", { id: "c", model: "gpt-4o", choices: [], usage: { prompt_tokens: 11, completion_tokens: 3, total_tokens: 14 } }, { inputTokens: 11, outputTokens: 3, model: "gpt-4o" }],
    ["Anthropic message", { id: "m", type: "message", model: "claude-haiku-4-5", content: [], usage: { input_tokens: 20, output_tokens: 5 } }, { inputTokens: 20, outputTokens: 5, model: "claude-haiku-4-5" }],
    ["Responses API", { id: "r", object: "response", model: "gpt-5", output: [], usage: { input_tokens: 7, output_tokens: 2, total_tokens: 9 } }, { inputTokens: 7, outputTokens: 2, model: "gpt-5" }],
    ["embeddings", { object: "list", data: [{ embedding: [0.1, 0.2] }], model: "text-embedding-3-small", usage: { prompt_tokens: 4, total_tokens: 4 } }, { inputTokens: 4, outputTokens: 0, model: "text-embedding-3-small" }],
  ];
  test.each(cases)("%s, at every chunk split", (_name, body, want) => {
    expectAtEverySplit(JSON_TYPE, JSON.stringify(body), want);
  });

  test("a body over 1 MiB is not kept whole: usage is found in its tail", () => {
    const data = Array.from({ length: 800 }, (_, i) => ({ index: i, embedding: Array.from({ length: 200 }, () => 0.123456789) }));
    const text = JSON.stringify({ object: "list", data, model: "text-embedding-3-large", usage: { prompt_tokens: 1234, total_tokens: 1234 } });
    expect(text.length).toBeGreaterThan(1024 * 1024);
    const bytes = enc.encode(text);
    const chunks: Uint8Array[] = [];
    for (let i = 0; i < bytes.length; i += 16 * 1024) chunks.push(bytes.subarray(i, i + 16 * 1024));
    expect(parse(JSON_TYPE, chunks)).toEqual({ inputTokens: 1234, outputTokens: 0 });
  });

  test("in a large body's tail, a \"usage\" inside a string is not taken for the key", () => {
    const filler = "x".repeat(1100 * 1024);
    const text = JSON.stringify({ usage: { prompt_tokens: 9, completion_tokens: 9 }, filler, note: 'say "usage": {"prompt_tokens": 1}' });
    expect(parse(JSON_TYPE, [enc.encode(text)])).toBeUndefined();
    const withReal = text.slice(0, -1) + `,"usage":{"prompt_tokens":2,"completion_tokens":3}}`;
    expect(parse(JSON_TYPE, [enc.encode(withReal)])).toEqual({ inputTokens: 2, outputTokens: 3 });
  });

  test("usage is found from the end of the body: pretty-printed, after multi-byte text, at every split", () => {
    const body = { id: "c", model: "gpt-4o-ünï", choices: [{ message: { content: "Grüße 👋 \"usage\": {\"prompt_tokens\": 1}" } }], usage: { prompt_tokens: 12, completion_tokens: 4 } };
    expectAtEverySplit(JSON_TYPE, JSON.stringify(body, null, 2), { inputTokens: 12, outputTokens: 4, model: "gpt-4o-ünï" });
  });

  test("in a whole body, a \"usage\" inside a later string is skipped for the real key before it", () => {
    const text = JSON.stringify({ usage: { prompt_tokens: 9, completion_tokens: 8 }, note: 'say "usage": {"prompt_tokens": 1}' });
    expect(parse(JSON_TYPE, [enc.encode(text)])).toEqual({ inputTokens: 9, outputTokens: 8 });
  });

  test("a \"usage\" that is not followed by an object is passed over", () => {
    const text = `{"model":"m","usage":{"prompt_tokens":5,"completion_tokens":6},"meta":{"usage":null},"tags":["usage"]}`;
    expect(parse(JSON_TYPE, [enc.encode(text)])).toEqual({ inputTokens: 5, outputTokens: 6, model: "m" });
  });

  test("an error body or non-JSON text reports no usage", () => {
    expect(parse(JSON_TYPE, [enc.encode(`{"error":{"message":"no"}}`)])).toBeUndefined();
    expect(parse(JSON_TYPE, [enc.encode(`<html>`)])).toBeUndefined();
  });
});

test("content types without usage get no parser", () => {
  expect(usageParserFor(null)).toBeUndefined();
  expect(usageParserFor("text/plain")).toBeUndefined();
  expect(usageParserFor("application/octet-stream")).toBeUndefined();
  expect(usageParserFor("application/json; charset=utf-8")).toBeDefined();
  expect(usageParserFor("text/event-stream")).toBeDefined();
});
