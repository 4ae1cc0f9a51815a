// Reading Supermemory's answer headers (direct and as LiteLLM renames them), the "memory is off" watcher, the
// conversation id from a client's session header, and the memory counters in /metrics and the stats.
import { describe, expect, test } from "bun:test";
import { conversationIdFrom, memoryOutcome, MemoryWatch, type MemoryOutcome } from "../src/memory.ts";
import { Metrics } from "../src/metrics.ts";
import { parsePrometheus, sampleValue } from "./support/prometheus.ts";
import { headerMap } from "../src/http.ts";

const ROUTER_HEADERS = {
  "x-supermemory-conversation-id": "conv_123",
  "x-supermemory-context-modified": "true",
  "x-supermemory-tokens-processed": "812",
  "x-supermemory-chunks-created": "1",
  "x-supermemory-chunks-retrieved": "3",
};
/** The same headers as LiteLLM 1.108.7 passes them back, with the provider's other headers. */
const viaLitellm = (h: Record<string, string>) => ({
  "content-type": "application/json",
  "llm_provider-content-type": "application/json",
  "llm_provider-date": "Tue, 01 Jul 2026 10:00:00 GMT",
  ...Object.fromEntries(Object.entries(h).map(([k, v]) => [`llm_provider-${k}`, v])),
  "x-litellm-version": "1.108.7",
});
const outcome = (h: Record<string, string>) => memoryOutcome(headerMap(new Headers(h)));

describe("memoryOutcome", () => {
  test("the router's headers, direct or renamed by LiteLLM: memory used, with what it did", () => {
    const used: MemoryOutcome = { state: "used", context_added: true, error: null, conversation_id: "conv_123", tokens_processed: 812, chunks_retrieved: 3 };
    expect(outcome(ROUTER_HEADERS)).toEqual(used);
    expect(outcome(viaLitellm(ROUTER_HEADERS))).toEqual(used);
  });

  test("context not modified", () => {
    expect(outcome(viaLitellm({ ...ROUTER_HEADERS, "x-supermemory-context-modified": "false", "x-supermemory-chunks-retrieved": "0" }))).toMatchObject({
      state: "used",
      context_added: false,
      chunks_retrieved: 0,
    });
  });

  test("without context-modified, retrieved chunks decide whether context was added", () => {
    expect(outcome({ "x-supermemory-chunks-retrieved": "2" })).toMatchObject({ state: "used", context_added: true });
    expect(outcome({ "x-supermemory-conversation-id": "c" })).toMatchObject({ state: "used", context_added: null, chunks_retrieved: null });
  });

  test("x-supermemory-error: memory failed and the request passed through; the text is kept, cleaned and shortened", () => {
    expect(outcome(viaLitellm({ "x-supermemory-error": "Invalid API key" }))).toEqual({
      state: "error",
      context_added: null,
      error: "Invalid API key",
      conversation_id: null,
      tokens_processed: null,
      chunks_retrieved: null,
    });
    const long = outcome({ "x-supermemory-error": `bad\tthing ${"x".repeat(500)}` })!;
    expect(long.error!.length).toBeLessThanOrEqual(201);
    expect(long.error).toStartWith("bad thing x");
    // An error wins over the other headers; an empty one is no error.
    expect(outcome({ ...ROUTER_HEADERS, "x-supermemory-error": "quota" })!.state).toBe("error");
    expect(outcome({ ...ROUTER_HEADERS, "x-supermemory-error": " " })!.state).toBe("used");
  });

  test("LiteLLM passed the provider's headers back but none of the router's: absent (the router is not in the chain)", () => {
    expect(outcome(viaLitellm({}))).toEqual({ state: "absent", context_added: null, error: null, conversation_id: null, tokens_processed: null, chunks_retrieved: null });
  });

  test("no provider header came back either (LiteLLM drops them on some routes) or not LiteLLM: cannot tell", () => {
    expect(outcome({ "content-type": "application/json", "x-litellm-version": "1.108.7" })).toBeNull();
    expect(outcome({})).toBeNull();
  });

  test("numbers that are not whole numbers are null", () => {
    expect(outcome({ "x-supermemory-tokens-processed": "12abc", "x-supermemory-chunks-retrieved": "-1" })).toMatchObject({
      state: "used",
      tokens_processed: null,
      chunks_retrieved: null,
      context_added: null,
    });
  });
});

const USED: MemoryOutcome = { state: "used", context_added: false, error: null, conversation_id: "c", tokens_processed: 1, chunks_retrieved: 0 };
const ABSENT: MemoryOutcome = { state: "absent", context_added: null, error: null, conversation_id: null, tokens_processed: null, chunks_retrieved: null };
const ERROR = (text: string): MemoryOutcome => ({ ...ABSENT, state: "error", error: text });

describe("MemoryWatch", () => {
  test("warns on the Nth answer in a row without memory, naming the id and the fix; not before", () => {
    const w = new MemoryWatch({ threshold: 3, intervalMs: 60_000 });
    expect(w.observe("claude-cli", ABSENT, 0)).toBeUndefined();
    expect(w.observe("claude-cli", ABSENT, 1)).toBeUndefined();
    const warning = w.observe("claude-cli", ABSENT, 2)!;
    expect(warning).toContain('memory is off for user id "claude-cli"');
    expect(warning).toContain("last 3 answers");
    expect(warning).toContain("https://api.supermemory.ai/v3/<provider URL>");
    expect(warning).toContain("memproxy doctor");
  });

  test("at most once per id per interval, then again while it lasts", () => {
    const w = new MemoryWatch({ threshold: 2, intervalMs: 1000 });
    const warnings: (string | undefined)[] = [];
    for (let t = 0; t < 2500; t += 100) warnings.push(w.observe("a", ABSENT, t));
    expect(warnings.filter(Boolean)).toHaveLength(3); // at 100, 1100 and 2100
    expect(warnings.map((x, i) => (x ? i * 100 : -1)).filter((t) => t >= 0)).toEqual([100, 1100, 2100]);
  });

  test("an answer with memory ends the run; one that cannot tell (null) neither counts nor ends it", () => {
    const w = new MemoryWatch({ threshold: 3, intervalMs: 0 });
    w.observe("a", ABSENT, 0);
    w.observe("a", ABSENT, 1);
    expect(w.observe("a", USED, 2)).toBeUndefined();
    expect(w.observe("a", ABSENT, 3)).toBeUndefined();
    expect(w.observe("a", null, 4)).toBeUndefined();
    expect(w.observe("a", ABSENT, 5)).toBeUndefined();
    expect(w.observe("a", ABSENT, 6)).toContain("last 3 answers");
  });

  test("ids are watched apart", () => {
    const w = new MemoryWatch({ threshold: 2 });
    expect(w.observe("a", ABSENT, 0)).toBeUndefined();
    expect(w.observe("b", ABSENT, 0)).toBeUndefined();
    expect(w.observe("a", ABSENT, 0)).toContain('"a"');
    expect(w.observe("b", ABSENT, 0)).toContain('"b"');
  });

  test("memory errors: says memory is failing, with the router's last error text", () => {
    const w = new MemoryWatch({ threshold: 2 });
    w.observe("p", ERROR("quota exceeded"), 0);
    const warning = w.observe("p", ERROR("Invalid API key"), 1)!;
    expect(warning).toContain('memory is failing for user id "p"');
    expect(warning).toContain('last: "Invalid API key"');
    expect(warning).toContain("x-supermemory-api-key");
  });

  test("bounded: past maxIds the least recently seen id is forgotten", () => {
    const w = new MemoryWatch({ threshold: 2, maxIds: 2 });
    w.observe("a", ABSENT, 0);
    w.observe("b", ABSENT, 0);
    w.observe("c", ABSENT, 0); // forgets a
    expect(w.observe("a", ABSENT, 0)).toBeUndefined(); // a starts over (and forgets b)
    expect(w.observe("c", ABSENT, 0)).toContain('"c"');
    expect(w.observe("a", ABSENT, 0)).toContain('"a"');
  });
});

describe("conversationIdFrom", () => {
  const names = ["x-claude-code-session-id", "x-session-id"];
  test("the first configured session header the client sent", () => {
    expect(conversationIdFrom(headerMap(new Headers({ "X-Claude-Code-Session-Id": "5f0c1b7e-aaaa-bbbb-cccc-0123456789ab" })), names)).toBe("5f0c1b7e-aaaa-bbbb-cccc-0123456789ab");
    expect(conversationIdFrom(headerMap(new Headers({ "x-session-id": "s2", "x-claude-code-session-id": "s1" })), names)).toBe("s1");
    expect(conversationIdFrom(headerMap(new Headers({ "x-session-id": "s2" })), names)).toBe("s2");
  });

  test("none configured, none sent, or a value that is not a plain id: none", () => {
    expect(conversationIdFrom(headerMap(new Headers({ "x-claude-code-session-id": "s1" })), [])).toBeUndefined();
    expect(conversationIdFrom(headerMap(new Headers({})), names)).toBeUndefined();
    expect(conversationIdFrom(headerMap(new Headers({ "x-claude-code-session-id": "a b" })), names)).toBeUndefined();
    expect(conversationIdFrom(headerMap(new Headers({ "x-claude-code-session-id": "x".repeat(201) })), names)).toBeUndefined();
    expect(conversationIdFrom(headerMap(new Headers({ "x-claude-code-session-id": "bad\u00e9", "x-session-id": "ok" })), names)).toBe("ok");
  });
});

describe("memory counters", () => {
  test("per user id in /metrics (bounded labels) and in the stats, with totals", () => {
    const m = new Metrics({ maxUserLabels: 1 });
    const a = m.user("claude-cli");
    m.memory(a, { ...USED, context_added: true });
    m.memory(a, USED);
    m.memory(a, ERROR("x"));
    m.memory(a, ABSENT);
    m.memory(a, ABSENT);
    const overflow = m.user("random-1");
    m.memory(overflow, ABSENT);
    m.memory(m.user("random-2"), USED);

    const scraped = parsePrometheus(m.render());
    expect(sampleValue(scraped, "memproxy_memory_answers_total", { user_id: "claude-cli", state: "used" })).toBe(2);
    expect(sampleValue(scraped, "memproxy_memory_answers_total", { user_id: "claude-cli", state: "error" })).toBe(1);
    expect(sampleValue(scraped, "memproxy_memory_answers_total", { user_id: "claude-cli", state: "absent" })).toBe(2);
    expect(sampleValue(scraped, "memproxy_memory_context_added_total", { user_id: "claude-cli" })).toBe(1);
    expect(sampleValue(scraped, "memproxy_memory_answers_total", { user_id: "other", state: "absent" })).toBe(1);
    expect(sampleValue(scraped, "memproxy_memory_answers_total", { user_id: "other", state: "used" })).toBe(1);

    const stats = m.stats() as any;
    expect(stats.users["claude-cli"].memory).toEqual({ used: 2, context_added: 1, errors: 1, absent: 2 });
    expect(stats.totals.memory).toEqual({ used: 3, context_added: 1, errors: 1, absent: 3 });
  });
});
