import { describe, expect, test } from "bun:test";
import { memoryChainInfo, shortUserAgent, StatusBoard, type FinishedRequest, type StatusSnapshot } from "../src/status.ts";
import { analyzeChain } from "../src/litellm-config.ts";

let seq = 0;
/** A finished request as the observation gives it; fields overridden per test. */
function req(over: Partial<FinishedRequest> = {}): FinishedRequest {
  return {
    id: `req-${++seq}`,
    at: 1_000_000,
    method: "POST",
    path: "/v1/messages",
    status: 200,
    duration_ms: 120,
    ttfb_ms: 40,
    user_id: "claude-cli",
    decided_by: "builtin",
    rule: "user-agent: claude-cli/",
    tool: "Claude Code",
    user_agent: "claude-cli/2.1.197 (external, cli)",
    model: "claude-sonnet",
    input_tokens: 100,
    output_tokens: 20,
    bytes_in: 500,
    bytes_out: 900,
    error_code: null,
    error: null,
    client_disconnected: false,
    memory: { state: "used", context_added: true, error: null },
    ...over,
  };
}

interface SseEvent {
  event: string;
  data: any;
}

/** Reads a board's stream as Server-Sent Events; heartbeats come back as event ":". */
function reader(stream: ReadableStream<Uint8Array>) {
  const r = stream.getReader();
  const decoder = new TextDecoder();
  let buffered = "";
  return {
    async next(): Promise<SseEvent> {
      for (;;) {
        const end = buffered.indexOf("\n\n");
        if (end >= 0) {
          const block = buffered.slice(0, end);
          buffered = buffered.slice(end + 2);
          if (block.startsWith(":")) return { event: ":", data: block };
          const event = /^event: (.*)$/m.exec(block)?.[1] ?? "message";
          const data = /^data: (.*)$/m.exec(block)?.[1];
          return { event, data: data === undefined ? undefined : JSON.parse(data) };
        }
        const { done, value } = await r.read();
        if (done) throw new Error(`stream ended; unread: ${JSON.stringify(buffered)}`);
        buffered += decoder.decode(value, { stream: true });
      }
    },
    /** The next event of this kind (others skipped). */
    async nextOf(kind: string): Promise<SseEvent> {
      for (;;) {
        const e = await this.next();
        if (e.event === kind) return e;
      }
    },
    read: () => r.read(),
    cancel: () => r.cancel(),
  };
}

describe("aggregation", () => {
  test("tools: one row per (User-Agent product, memory id, reason), with counts, tokens and memory", () => {
    const board = new StatusBoard();
    board.record(req({ at: 1000 }));
    board.record(req({ at: 2000, user_agent: "claude-cli/2.1.198 (external, sdk-cli)", input_tokens: 5, output_tokens: null, status: 500 }));
    board.record(req({ at: 3000, user_id: "my-project", decided_by: "custom_header", rule: null, tool: null, memory: { state: "absent", context_added: null, error: null } }));
    board.record(req({ at: 4000, user_agent: null, user_id: null, decided_by: null, rule: null, tool: null, status: 401, error_code: "unauthorized", memory: null }));
    const s = board.snapshot();
    expect(s.tools.map((t) => [t.product, t.user_id, t.decided_by, t.requests])).toEqual([
      ["(no User-Agent)", null, null, 1],
      ["claude-cli", "my-project", "custom_header", 1],
      ["claude-cli", "claude-cli", "builtin", 2],
    ]);
    const claude = s.tools[2]!;
    expect(claude).toMatchObject({
      version: "2.1.198",
      user_agent: "claude-cli/2.1.198 (external, sdk-cli)",
      tool: "Claude Code",
      errors: 1,
      input_tokens: 105,
      output_tokens: 20,
      memory_used: 2,
      memory_last: "used",
      first_seen: 1000,
      last_seen: 2000,
      last_status: 500,
    });
    expect(s.tools[1]).toMatchObject({ memory_absent: 1, memory_last: "absent" });
    expect(s.tools[0]).toMatchObject({ errors: 1, last_error_code: "unauthorized", memory_last: null });
    expect(s.totals).toEqual({ requests: 4, errors: 2, input_tokens: 305, output_tokens: 60 });
  });

  test("memory health per id counts used, context added, errors and absent, and keeps the last state and error", () => {
    const board = new StatusBoard();
    board.record(req({ memory: { state: "used", context_added: true, error: null } }));
    board.record(req({ memory: { state: "used", context_added: false, error: null } }));
    board.record(req({ memory: { state: "error", context_added: null, error: "x-supermemory-error: quota" } }));
    board.record(req({ memory: { state: "absent", context_added: null, error: null } }));
    board.record(req({ memory: null, path: "/v1/models" }));
    board.record(req({ user_id: null, memory: null }));
    expect(board.snapshot().memory).toEqual([
      { user_id: "claude-cli", calls: 4, used: 2, context_added: 1, errors: 1, absent: 1, last_state: "absent", last_error: "x-supermemory-error: quota", last_at: 1_000_000 },
    ]);
  });

  test("a client that left is not an error; a failure after a 200 head is", () => {
    const board = new StatusBoard();
    board.record(req({ status: 499, client_disconnected: true }));
    board.record(req({ status: 200, error: "StreamIdleTimeout: no event for 900 s" }));
    expect(board.snapshot().totals.errors).toBe(1);
  });

  test("only the named display fields leave the board, and long text is cut", () => {
    const board = new StatusBoard();
    const r = Object.assign(req({ user_agent: "x".repeat(5000), path: "/" + "p".repeat(1000) }), { authorization: "Bearer sk-secret", body: "{...}" });
    board.record(r);
    const text = JSON.stringify(board.snapshot());
    expect(text).not.toContain("sk-secret");
    expect(text).not.toContain("body");
    const row = board.snapshot().recent[0]!;
    expect(row.user_agent!.length).toBe(257);
    expect(row.path.length).toBe(257);
    expect(Object.keys(row).sort()).toEqual(Object.keys(req()).sort());
  });
});

describe("bounds", () => {
  test("the recent list keeps the newest, newest first", () => {
    const board = new StatusBoard({}, { recent: 5 });
    for (let i = 0; i < 12; i++) board.record(req({ id: `r${i}` }));
    expect(board.snapshot().recent.map((r) => r.id)).toEqual(["r11", "r10", "r9", "r8", "r7"]);
  });

  test("the tools table drops the least recently seen row", () => {
    const board = new StatusBoard({}, { tools: 3 });
    for (const ua of ["a/1", "b/1", "c/1", "a/1", "d/1"]) board.record(req({ user_agent: ua }));
    expect(board.snapshot().tools.map((t) => t.product).sort()).toEqual(["a", "c", "d"]);
  });

  test("a stranger rotating User-Agents keeps the table at its bound", () => {
    const board = new StatusBoard({}, { tools: 16 });
    for (let i = 0; i < 2000; i++) board.record(req({ at: i, user_agent: `rotating-${i}/1.0` }));
    const tools = board.snapshot().tools;
    expect(tools.length).toBe(16);
    expect(tools[0]!.product).toBe("rotating-1999");
  });

  test("memory ids are bounded the same way", () => {
    const board = new StatusBoard({}, { memoryIds: 2 });
    for (const id of ["a", "b", "a", "c"]) board.record(req({ user_id: id }));
    expect(board.snapshot().memory.map((m) => m.user_id)).toEqual(["a", "c"]);
  });
});

describe("time series", () => {
  test("requests, errors and tokens land in the bucket of the time they finished; the window slides", () => {
    let now = 100_000;
    const board = new StatusBoard({}, { bucketMs: 10_000, buckets: 6, now: () => now });
    board.record(req({ at: 100_500, duration_ms: 100, input_tokens: 7, output_tokens: 3 }));
    board.record(req({ at: 105_000, duration_ms: 6_000, status: 502 })); // finishes at 111 s: the next bucket
    now = 115_000;
    let s = board.snapshot().series;
    expect(s).toEqual({
      start: 60_000,
      step_ms: 10_000,
      requests: [0, 0, 0, 0, 1, 1],
      errors: [0, 0, 0, 0, 0, 1],
      input_tokens: [0, 0, 0, 0, 7, 100],
      output_tokens: [0, 0, 0, 0, 3, 20],
    });
    now = 145_000; // three buckets later: the old ones slide left
    s = board.snapshot().series;
    expect(s.start).toBe(90_000);
    expect(s.requests).toEqual([0, 1, 1, 0, 0, 0]);
    now = 1_000_000; // far later: all empty
    expect(board.snapshot().series.requests).toEqual([0, 0, 0, 0, 0, 0]);
    board.record(req({ at: 100_000, duration_ms: 0 })); // older than the window: counted in totals only
    expect(board.snapshot().series.requests).toEqual([0, 0, 0, 0, 0, 0]);
    expect(board.snapshot().totals.requests).toBe(3);
  });
});

describe("shortUserAgent", () => {
  test.each([
    ["claude-cli/2.1.197 (external, cli)", "claude-cli", "2.1.197"],
    ["OpenAI/JS 6.49.0", "OpenAI/JS", "6.49.0"],
    ["AsyncOpenAI/Python 1.99.2", "AsyncOpenAI/Python", "1.99.2"],
    ["GeminiCLI-tui/0.61.0/gemini-2.5-pro (linux; x64; terminal)", "GeminiCLI-tui", "0.61.0"],
    ["codex_exec/0.171.0 (Debian 12.0.0; x86_64) xterm (codex_exec; 0.171.0)", "codex_exec", "0.171.0"],
    ["curl", "curl", null],
    ["<script>alert(1)</script>", "<script>alert(1)</script>", null],
    ["  \u0000\u001b[31mred/1.0", "[31mred", "1.0"],
  ])("%p", (ua, product, version) => {
    expect(shortUserAgent(ua)).toEqual({ product, version });
  });
});

describe("event stream", () => {
  test("a snapshot first, then the requests recorded since, coalesced into one batch", async () => {
    const board = new StatusBoard({}, { batchMs: 5 });
    board.record(req({ id: "before" }));
    const events = reader(board.subscribe());
    const first = await events.next();
    expect(first.event).toBe("snapshot");
    expect((first.data as StatusSnapshot).recent.map((r) => r.id)).toEqual(["before"]);
    board.record(req({ id: "a" }));
    board.record(req({ id: "b" }));
    board.record(req({ id: "c" }));
    const batch = await events.nextOf("requests");
    expect(batch.data.map((r: FinishedRequest) => r.id)).toEqual(["a", "b", "c"]);
    await events.cancel();
  });

  test("a page that subscribes while a batch is pending does not get those requests twice", async () => {
    const board = new StatusBoard({}, { batchMs: 5 });
    const first = reader(board.subscribe());
    await first.next();
    board.record(req({ id: "pending" }));
    const second = reader(board.subscribe());
    expect((await second.next()).data.recent.map((r: FinishedRequest) => r.id)).toEqual(["pending"]);
    expect((await first.nextOf("requests")).data.map((r: FinishedRequest) => r.id)).toEqual(["pending"]);
    board.record(req({ id: "later" }));
    expect((await second.nextOf("requests")).data.map((r: FinishedRequest) => r.id)).toEqual(["later"]);
    await Promise.all([first.cancel(), second.cancel()]);
  });

  test("under load a batch carries only as many requests as the recent list holds, the newest", async () => {
    const board = new StatusBoard({}, { recent: 10, batchMs: 5 });
    const events = reader(board.subscribe());
    await events.next();
    for (let i = 0; i < 1000; i++) board.record(req({ id: `r${i}` }));
    const batch = await events.nextOf("requests");
    expect(batch.data.map((r: FinishedRequest) => r.id)).toEqual(Array.from({ length: 10 }, (_, i) => `r${990 + i}`));
    await events.cancel();
  });

  test("state is sent when it changed, with the providers' view; a heartbeat when nothing did", async () => {
    let backendUp = true;
    const board = new StatusBoard(
      {
        backends: () => [{ url: "http://127.0.0.1:1", status: backendUp ? "up" : "down", in_flight: 0, last_error: backendUp ? null : "connect refused" }],
        litellm: () => ({ state: "ready", pid: 42, restarts: 0, last_exit_code: null, error: null }),
        config: () => ({ file: "memproxy.yaml", loaded_at: "2026-01-01T00:00:00.000Z", last_reload: null }),
      },
      { stateMs: 2, heartbeatMs: 0, batchMs: 1 },
    );
    const events = reader(board.subscribe());
    const snap = (await events.next()).data as StatusSnapshot;
    expect(snap.memory_chain).toEqual({ memory_id_forwarding: "unknown", notes: [] });
    expect(snap.backends[0]!.status).toBe("up");
    expect(snap.litellm!.pid).toBe(42);
    // The first tick sends the state (nothing was sent since the page came), then nothing changes: heartbeats.
    expect((await events.nextOf("state")).data.totals.requests).toBe(0);
    expect((await events.next()).event).toBe(":");
    backendUp = false;
    const changed = await events.nextOf("state");
    expect(changed.data.backends[0]).toEqual({ url: "http://127.0.0.1:1", status: "down", in_flight: 0, last_error: "connect refused" });
    board.setProviders({ memoryChain: () => ({ memory_id_forwarding: "off", notes: ["add general_settings.forward_client_headers_to_llm_api: true"] }) });
    expect((await events.nextOf("state")).data.memory_chain.memory_id_forwarding).toBe("off");
    board.record(req());
    expect((await events.nextOf("state")).data.totals.requests).toBe(1);
    await events.cancel();
  });

  test("a cancelled stream (a closed tab) is removed at once, and the timers stop with the last one", async () => {
    const board = new StatusBoard();
    expect(board.timersRunning).toBe(false);
    board.record(req());
    expect(board.timersRunning).toBe(false); // nobody watches: no batch timer either
    const a = reader(board.subscribe());
    const b = reader(board.subscribe());
    await a.next();
    await b.next();
    board.record(req());
    expect(board.subscribers).toBe(2);
    expect(board.timersRunning).toBe(true);
    await a.cancel();
    expect(board.subscribers).toBe(1);
    expect(board.timersRunning).toBe(true);
    await b.cancel();
    expect(board.subscribers).toBe(0);
    expect(board.timersRunning).toBe(false);
    await board.idle();
    board.record(req());
    expect(board.timersRunning).toBe(false);
  });

  test("a subscriber that does not read is dropped once its queue passes the bound, and told; the others go on", async () => {
    const board = new StatusBoard({}, { maxQueuedBytes: 16 * 1024, batchMs: 1 });
    const dropped: string[] = [];
    const slow = board.subscribe(undefined, () => dropped.push("slow")).getReader(); // never read after this
    const fast = reader(board.subscribe(undefined, () => dropped.push("fast")));
    await fast.next();
    const big = "x".repeat(250);
    let round = 0;
    while (board.subscribers === 2) {
      for (let i = 0; i < 200; i++) board.record(req({ id: `r${round}-${i}`, user_agent: big, path: `/${big}` }));
      await fast.nextOf("requests"); // the fast one reads every batch
      round++;
    }
    expect(board.subscribers).toBe(1);
    expect(round).toBeGreaterThan(0);
    expect(dropped).toEqual(["slow"]);
    expect(slow.read()).rejects.toThrow(/too slow/);
    board.record(req({ id: "still-flowing" }));
    expect((await fast.nextOf("requests")).data.map((r: FinishedRequest) => r.id)).toEqual(["still-flowing"]);
    await fast.cancel();
    expect(board.timersRunning).toBe(false);
  });

  test("close() ends every stream and later streams are empty", async () => {
    const board = new StatusBoard();
    const events = reader(board.subscribe());
    await events.next();
    board.close();
    expect(await events.read()).toEqual({ done: true, value: undefined });
    expect(board.subscribers).toBe(0);
    expect(board.timersRunning).toBe(false);
    expect(await board.subscribe().getReader().read()).toEqual({ done: true, value: undefined });
  });
});

describe("memoryChainInfo: the page's memory chain, from the check of LiteLLM's config", () => {
  test("without LiteLLM's config in memproxy's file: unknown, and the file named", () => {
    expect(memoryChainInfo(undefined, "/etc/memproxy/config.yaml")).toEqual({
      memory_id_forwarding: "unknown",
      notes: ["LiteLLM's config is not in /etc/memproxy/config.yaml: memproxy cannot tell whether LiteLLM forwards the memory id. Run memproxy doctor."],
    });
  });

  test("a model that drops the id is named, with each problem and its fix", () => {
    const chain = analyzeChain(
      {
        model_list: [
          { model_name: "gpt-4o", litellm_params: { model: "openai/gpt-4o", api_base: "https://api.supermemory.ai/v3/https://api.openai.com/v1" } },
          { model_name: "claude", litellm_params: { model: "anthropic/claude", api_base: "https://api.supermemory.ai/v3/https://api.anthropic.com" } },
        ],
        general_settings: { master_key: "sk-a-long-enough-master-key-0123456789" },
        litellm_settings: { model_group_settings: { forward_client_headers_to_llm_api: ["gpt-4o"] } },
      },
      {},
    );
    const info = memoryChainInfo(chain, "c.yaml");
    expect(info.memory_id_forwarding).toBe("partial");
    expect(info.notes).toEqual(["models without the memory id: claude"]);
    expect(info.problems!.length).toBeGreaterThan(0);
    for (const p of info.problems!) expect(Object.keys(p).sort()).toEqual(["fix", "message", "severity"]);
    expect(info.problems!.some((p) => p.message.includes("claude") && p.fix.includes("claude"))).toBe(true);
  });
});
