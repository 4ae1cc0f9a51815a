import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseConfig } from "../src/config.ts";
import { compileRouter } from "../src/router.ts";
import { clientRows, sampleOf } from "./e2e/clients/clients-table.ts";
import { headerMap } from "../src/http.ts";
import { DESIGN_ROUTING } from "./support/design-config.ts";

/** The design's config with a rule on another header. */
const ORIGINAL = DESIGN_ROUTING.replace('  default_user_id', '    - header: "x-client"\n      pattern: "(?i)tool-"\n      user_id: "tool"\n  default_user_id');
/** The original design's routing: custom header, then its patterns, then the default (no built-in layer, no derived ids). */
const ORIGINAL_ONLY = ORIGINAL.replace('default_user_id: "default-dev"', 'default_user_id: "default-dev"\n  builtin_rules: false\n  derive_from_user_agent: false');
const route = compileRouter(parseConfig(ORIGINAL_ONLY, "original.yaml").routing);
const layered = compileRouter(parseConfig(ORIGINAL, "original.yaml").routing);
const decide = (h: Record<string, string>, router = route) => {
  const r = router(headerMap(new Headers(h)));
  if (!r.ok) throw new Error(r.rejection.message);
  return r.decision;
};
const idOf = (ua: string, extra: Record<string, string> = {}, router = layered) => decide({ "user-agent": ua, ...extra }, router).user_id;

describe("router priority", () => {
  test("the custom header wins over every rule", () => {
    expect(decide({ "x-memory-user-id": "my-project", "user-agent": "OpenAIClientImpl/Java 1.0" })).toEqual({
      user_id: "my-project",
      decided_by: "custom_header",
      matched_pattern: null,
      tool: null,
      derived_from: null,
      custom_header_present: true,
      is_default: false,
    });
  });

  test("patterns in order, first match wins, and report the rule", () => {
    expect(decide({ "user-agent": "OpenAIClientImpl/Java 2.0" })).toEqual({
      user_id: "pycharm-ai",
      decided_by: "pattern",
      matched_pattern: { header: "user-agent", pattern: "OpenAIClientImpl/Java", user_id: "pycharm-ai" },
      tool: null,
      derived_from: null,
      custom_header_present: false,
      is_default: false,
    });
    expect(decide({ "user-agent": "vscode/1.2" }).user_id).toBe("vscode-copilot");
  });

  test("a pattern reads the header it names, case-insensitively by name", () => {
    expect(decide({ "X-Client": "TOOL-x", "user-agent": "curl/8" }).user_id).toBe("tool");
  });

  test("an absent header never matches; the default applies", () => {
    expect(decide({})).toEqual({
      user_id: "default-dev",
      decided_by: "default",
      matched_pattern: null,
      tool: null,
      derived_from: null,
      custom_header_present: false,
      is_default: true,
    });
    expect(decide({ "user-agent": "curl/8.0" }).is_default).toBe(true);
  });

  test("the original \"Claude Code/.*\" rule alone does not match the real Claude Code (FIELD-NOTES)", () => {
    expect(decide({ "user-agent": "claude-cli/2.1.197 (external, sdk-cli)" }).is_default).toBe(true);
  });
});

describe("with the built-in layer and derivation off, the original design's routing exactly", () => {
  // What the original design's MemoryRouter answers (custom header > re.match patterns in order > default).
  const cases: [Record<string, string>, string][] = [
    [{ "user-agent": "OpenAIClientImpl/Java 2.10.0" }, "pycharm-ai"],
    [{ "user-agent": "Claude Code/1.0.3" }, "claude-cli"],
    [{ "user-agent": "claude-cli/2.1.197 (external, cli)" }, "default-dev"],
    [{ "user-agent": "vscode/1.96.0" }, "vscode-copilot"],
    [{ "user-agent": "GitHubCopilotChat/0.30.0" }, "default-dev"],
    [{ "user-agent": "QwenCode/0.15.10 (linux; x64)" }, "default-dev"],
    [{ "user-agent": "OpenAI/Python 1.99.0" }, "default-dev"],
    [{ "user-agent": "xOpenAIClientImpl/Java" }, "default-dev"],
    [{ "x-client": "tool-1", "user-agent": "OpenAIClientImpl/Java" }, "pycharm-ai"],
    [{ "x-client": "tool-1", "user-agent": "curl/8" }, "tool"],
    [{ "x-memory-user-id": "proj", "user-agent": "vscode/1" }, "proj"],
    [{}, "default-dev"],
  ];
  test.each(cases)("%p -> %s", (headers, id) => {
    expect(decide(headers).user_id).toBe(id);
    expect(["custom_header", "pattern", "default"]).toContain(decide(headers).decided_by);
  });
});

describe("the built-in layer: every config recognises today's tools, after its own rules", () => {
  test("the original design's config now recognises today's Claude Code and the rest", () => {
    expect(decide({ "user-agent": "claude-cli/2.1.197 (external, cli)" }, layered)).toMatchObject({
      user_id: "claude-cli",
      decided_by: "builtin",
      tool: expect.any(String),
    });
    expect(idOf("OpenAI/Python 1.99.0")).toBe("openai-python");
    expect(idOf("Anthropic/JS 0.60.0")).toBe("anthropic-js");
    expect(idOf("something", { originator: "codex_exec" })).toBe("codex");
  });

  test("the config's own rules still win, in their order", () => {
    expect(decide({ "user-agent": "OpenAIClientImpl/Java 2.0" }, layered)).toMatchObject({ user_id: "pycharm-ai", decided_by: "pattern" });
    expect(decide({ "user-agent": "vscode/1.2" }, layered)).toMatchObject({ user_id: "vscode-copilot", decided_by: "pattern" });
    const own = compileRouter(parseConfig(`user_id_mappings:\n  header_patterns: [{pattern: "claude-cli/", user_id: my-claude}]\n`, "own.yaml").routing);
    expect(decide({ "user-agent": "claude-cli/2.1.197 (external, cli)" }, own)).toMatchObject({ user_id: "my-claude", decided_by: "pattern" });
  });

  test("builtin_rules: false leaves only the config's rules", () => {
    const off = compileRouter(parseConfig(`user_id_mappings:\n  builtin_rules: false\n  derive_from_user_agent: false\n`, "off.yaml").routing);
    expect(decide({ "user-agent": "claude-cli/2.1.197 (external, cli)" }, off).is_default).toBe(true);
  });
});

describe("derived ids: an unknown tool with its own product name gets its own memory", () => {
  test("the User-Agent's first product token, normalised", () => {
    expect(decide({ "user-agent": "MadeUpTool/1.2 (x)" }, layered)).toMatchObject({ user_id: "madeuptool", decided_by: "derived", derived_from: "MadeUpTool" });
    expect(idOf("My.Tool+Pro/3")).toBe("my-tool-pro");
    expect(idOf("Ünïcode-Tool/1")).toBe("n-code-tool");
    expect(idOf(`${"A".repeat(150)}/1`)).toBe("a".repeat(100));
    expect(idOf("tool_x:y/1")).toBe("tool_x:y");
  });

  test("generic HTTP libraries and browsers keep the default; users can add their own", () => {
    for (const ua of ["curl/8.4.0", "python-requests/2.31", "Go-http-client/1.1", "Mozilla/5.0 (X11; Linux x86_64)", "Bun/1.4.0", "node-fetch/1.0", "axios/1.7.2", "okhttp/4.12.0"]) {
      expect(decide({ "user-agent": ua }, layered)).toMatchObject({ user_id: "default-dev", decided_by: "default" });
    }
    const extended = compileRouter(parseConfig(`user_id_mappings:\n  generic_user_agents: [MyHttpLib]\n`, "g.yaml").routing);
    expect(decide({ "user-agent": "MyHttpLib/2" }, extended).decided_by).toBe("default");
    expect(decide({ "user-agent": "OtherLib/2" }, extended).user_id).toBe("otherlib");
  });

  test("nothing to derive from: no User-Agent, an empty one, or only punctuation", () => {
    expect(decide({}, layered).is_default).toBe(true);
    expect(decide({ "user-agent": "" }, layered).is_default).toBe(true);
    expect(decide({ "user-agent": "///" }, layered).is_default).toBe(true);
    expect(decide({ "user-agent": "-/1" }, layered).is_default).toBe(true);
  });

  test("derive_from_user_agent: false keeps the default", () => {
    const off = compileRouter(parseConfig(`user_id_mappings:\n  derive_from_user_agent: false\n`, "off.yaml").routing);
    expect(decide({ "user-agent": "MadeUpTool/1.2" }, off).is_default).toBe(true);
  });
});

describe("custom header validation: Supermemory's memory id rule", () => {
  const reject = (value: string) => {
    const r = route(headerMap(new Headers({ "x-memory-user-id": value })));
    return r.ok ? null : r.rejection;
  };
  test("accepts 1-100 characters of A-Z a-z 0-9 _ : -", () => {
    expect(reject("a")).toBeNull();
    expect(reject("team_a:b-C9")).toBeNull();
    expect(reject("x".repeat(100))).toBeNull();
  });
  test("rejects anything else with a 400 naming the allowed form, without echoing long or binary values", () => {
    expect(reject("")?.status).toBe(400);
    expect(reject("has space")?.message).toContain("x-memory-user-id");
    expect(reject("has space")?.message).toContain("A-Z a-z 0-9 _ : -");
    for (const v of ["a.b", "a@b", "a/b", "ü"]) expect(reject(v)?.status).toBe(400);
    expect(reject("x".repeat(101))?.message).toContain("101 characters");
    expect(reject("a\tb")?.message).toContain("non-printable");
  });
});

describe("compileRouter", () => {
  test("is pure: the same headers give the same decision, nothing is shared between calls", () => {
    const a = decide({ "user-agent": "vscode/1" });
    const b = decide({ "user-agent": "vscode/1" });
    expect(a).toEqual(b);
  });
});

describe("header lookups", () => {
  const config = parseConfig(
    `
user_id_mappings:
  header_patterns:
    - { header: user-agent, pattern: "a/", user_id: ua-a }
    - { header: User-Agent, pattern: "b/", user_id: ua-b }
    - { header: x-client, pattern: "c", user_id: client-c }
    - { header: user-agent, pattern: "d/", user_id: ua-d }
  default_user_id: fallback
  builtin_rules: false
  derive_from_user_agent: false
`,
    "lookups.yaml",
  ).routing;
  const router = compileRouter(config);
  /** Headers that record which names were looked up. */
  const recording = (h: Record<string, string>) => {
    const inner = headerMap(new Headers(h));
    const asked: string[] = [];
    const headers = new Proxy(inner, { get: (target, name) => (asked.push(String(name)), target[String(name)]) });
    return { asked, headers };
  };
  const userOf = (r: ReturnType<typeof router>) => (r.ok ? r.decision.user_id : r.rejection.message);

  test("each header the rules read is looked up once, whatever the rules' order and letter case", () => {
    const h = recording({ "user-agent": "d/1", "x-client": "none" });
    expect(userOf(router(h.headers))).toBe("ua-d");
    expect(h.asked).toEqual(["x-memory-user-id", "user-agent", "x-client"]);
  });

  test("the first rule in configured order wins across headers", () => {
    expect(userOf(router(recording({ "user-agent": "b/2" }).headers))).toBe("ua-b");
    expect(userOf(router(recording({ "user-agent": "z", "x-client": "c1" }).headers))).toBe("client-c");
    expect(userOf(router(recording({ "user-agent": "d/1", "x-client": "c1" }).headers))).toBe("client-c");
    expect(userOf(router(recording({ "user-agent": "a/1", "x-client": "c1" }).headers))).toBe("ua-a");
    expect(userOf(router(recording({ "x-client": "a/" }).headers))).toBe("fallback");
    expect(userOf(router(recording({}).headers))).toBe("fallback");
  });
});

describe("every tool is recognised in the configs users really have", () => {
  // The original design's config, as its document gives it, and the example this repository ships (README's
  // Quick start copies it): no rule for today's tools in either, and every tool gets its own id.
  const example = readFileSync(join(import.meta.dir, "..", "config.example.yaml"), "utf8");
  for (const [name, yaml] of [
    ["the original design's config", DESIGN_ROUTING],
    ["config.example.yaml", example],
  ] as const) {
    test(name, () => {
      const router = compileRouter(parseConfig(yaml, name, {}).routing);
      const rows = clientRows().filter((r) => r.userAgent !== null || r.headers.length);
      expect(rows.length).toBeGreaterThan(15);
      for (const row of rows) {
        const headers = new Headers(row.headers.map(([n, v]) => [n, sampleOf(v)] as [string, string]));
        if (row.userAgent !== null) headers.set("user-agent", sampleOf(row.userAgent));
        const r = router(headerMap(headers));
        expect({ tool: row.key, id: r.ok ? r.decision.user_id : r.rejection.message }).toEqual({ tool: row.key, id: row.memoryId });
      }
    });
  }
});

describe("long header values", () => {
  test("rules read the first 8 KiB; an end anchor does not match at that cut, since more follows", () => {
    const router = compileRouter(
      parseConfig(`user_id_mappings:\n  header_patterns:\n    - {pattern: "(a+)+$", user_id: ends}\n    - {pattern: "a{100}", user_id: starts}\n  derive_from_user_agent: false\n`, "long.yaml", {}).routing,
    );
    const id = (ua: string) => {
      const r = router(headerMap(new Headers({ "user-agent": ua })));
      return r.ok ? r.decision.user_id : r.rejection.message;
    };
    expect(id("a".repeat(8000))).toBe("ends");
    expect(id("a".repeat(8192))).toBe("ends");
    expect(id("a".repeat(8193))).toBe("starts");
    expect(id("a".repeat(60_000) + "!")).toBe("starts");
  });

  test("a derived id's product is kept short in the decision", () => {
    const r = layered(headerMap(new Headers({ "user-agent": `${"P".repeat(15_000)}/1` })));
    expect(r.ok && r.decision.derived_from!.length).toBe(100);
    expect(r.ok && r.decision.user_id).toBe("p".repeat(100));
  });
});
