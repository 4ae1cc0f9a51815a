// Tests for src/tools.ts: the built-in rules compile, the ids are Supermemory's form, and every row of
// test/e2e/clients/CLIENTS.md (what the tools really send) gets its row's memory id from the rules, first match winning.
import { describe, expect, test } from "bun:test";
import { compilePattern } from "../src/pattern.ts";
import { BUILTIN_RULES, GENERIC_PRODUCTS, KNOWN_TOOLS, findTool, verifiedTestName } from "../src/tools.ts";
import { clientRows, sampleOf, templateRegex, type ClientRow } from "./e2e/clients/clients-table.ts";

const ID = /^[a-zA-Z0-9_:-]{1,100}$/;
const rows = clientRows();

/** A pattern's matcher. */
function tester(pattern: string): (value: string) => boolean {
  const c = compilePattern(pattern);
  if (!c.ok) throw new Error(`${pattern}: ${c.error}`);
  return (v) => c.matcher.test(v);
}
const compiled = BUILTIN_RULES.map((r) => ({ ...r, test: tester(r.pattern) }));

/** The request headers a row stands for, with its varying parts filled in. */
function headersOf(row: ClientRow): Map<string, string> {
  const h = new Map<string, string>(row.headers.map(([n, v]) => [n, sampleOf(v)]));
  if (row.userAgent !== null) h.set("user-agent", sampleOf(row.userAgent));
  return h;
}

/** The first built-in rule (in order) that matches, as the router applies them. */
function firstRule(headers: Map<string, string>) {
  return compiled.find((r) => {
    const value = headers.get(r.header.toLowerCase());
    return value !== undefined && r.test(value);
  });
}

describe("the rules", () => {
  test("every built-in pattern compiles with the router's pattern compiler", () => {
    for (const r of BUILTIN_RULES) {
      const c = compilePattern(r.pattern);
      expect({ pattern: r.pattern, ok: c.ok, error: c.ok ? undefined : c.error }).toEqual({ pattern: r.pattern, ok: true, error: undefined });
    }
  });

  test("BUILTIN_RULES are KNOWN_TOOLS' rules in the table's order, each with its tool's id and name", () => {
    const expected = KNOWN_TOOLS.flatMap((t) => t.rules.map((r) => ({ ...r, user_id: t.userId, tool: t.name })));
    expect(BUILTIN_RULES).toEqual(expected);
    expect(BUILTIN_RULES.length).toBeGreaterThan(15);
  });

  test("header names are lower-case and patterns are not empty", () => {
    for (const r of BUILTIN_RULES) {
      expect(r.header).toBe(r.header.toLowerCase());
      expect(r.pattern.length).toBeGreaterThan(0);
    }
  });

  test("every id fits Supermemory's container-tag rule, and keys and ids are unique", () => {
    for (const t of KNOWN_TOOLS) {
      expect(t.userId).toMatch(ID);
      expect(t.key).toMatch(/^[a-z0-9-]+$/);
    }
    expect(new Set(KNOWN_TOOLS.map((t) => t.key)).size).toBe(KNOWN_TOOLS.length);
    expect(new Set(KNOWN_TOOLS.map((t) => t.userId)).size).toBe(KNOWN_TOOLS.length);
  });

  test("the ids the original design and today's defaults use stay as they were", () => {
    const ids = Object.fromEntries(KNOWN_TOOLS.map((t) => [t.key, t.userId]));
    expect(ids).toMatchObject({
      "claude-code": "claude-cli",
      jetbrains: "pycharm-ai",
      "vscode-copilot": "vscode-copilot",
      codex: "codex",
      "openai-python": "openai-python",
      "openai-js": "openai-js",
      "anthropic-python": "anthropic-python",
      "anthropic-js": "anthropic-js",
      "gemini-cli": "gemini-cli",
      "qwen-code": "qwen-code",
      opencode: "opencode",
      zed: "zed",
    });
  });

  test("a tool that cannot be told apart has no rules and says why; one that can has rules", () => {
    for (const t of KNOWN_TOOLS) {
      if (t.recognisable) expect(t.rules.length).toBeGreaterThan(0);
      else {
        expect(t.rules).toEqual([]);
        expect(t.note ?? "").not.toBe("");
      }
    }
    expect(KNOWN_TOOLS.filter((t) => !t.recognisable).map((t) => t.key).sort()).toEqual(["aider", "cline", "continue", "cursor"]);
  });

  test("verifiedBy names the real-client test, and findTool finds by key", () => {
    expect(findTool("claude-code")?.verifiedBy).toBe(verifiedTestName("claude-code"));
    expect(findTool("nope")).toBeUndefined();
    for (const t of KNOWN_TOOLS) if (t.verifiedBy) expect(t.verifiedBy).toBe(verifiedTestName(t.key));
  });
});

describe("CLIENTS.md", () => {
  test("has a row for every recognisable tool, and only rows of known tools", () => {
    const keys = new Set(rows.map((r) => r.key));
    for (const r of rows) expect(findTool(r.key)?.key).toBe(r.key);
    for (const t of KNOWN_TOOLS.filter((t) => t.recognisable)) expect({ tool: t.key, row: keys.has(t.key) }).toEqual({ tool: t.key, row: true });
    expect(rows.filter((r) => r.captured).length).toBeGreaterThanOrEqual(12);
  });

  test("every row gets its memory id from the built-in rules, first match winning", () => {
    for (const row of rows) {
      const rule = firstRule(headersOf(row));
      const got = rule?.user_id ?? "default-dev";
      expect({ row: `${row.key}: ${row.tool}`, id: got }).toEqual({ row: `${row.key}: ${row.tool}`, id: row.memoryId });
    }
  });

  test("a recognisable tool's rows get its own id, from its own rules and no earlier tool's", () => {
    for (const row of rows) {
      const tool = findTool(row.key)!;
      if (!tool.recognisable || row.memoryId !== tool.userId) continue;
      const rule = firstRule(headersOf(row));
      expect({ row: row.tool, tool: rule?.tool }).toEqual({ row: row.tool, tool: tool.name });
    }
  });

  test("every rule is grounded in at least one row it matches", () => {
    for (const r of compiled) {
      const grounded = rows.some((row) => {
        const value = headersOf(row).get(r.header);
        return value !== undefined && r.test(value);
      });
      expect({ rule: `${r.header}: ${r.pattern}`, grounded }).toEqual({ rule: `${r.header}: ${r.pattern}`, grounded: true });
    }
  });

  test("a row that no rule matches starts with a generic product, so no id is derived from it", () => {
    for (const row of rows.filter((r) => !firstRule(headersOf(r)))) {
      expect(row.memoryId).toBe("default-dev");
      const product = /^([^\s/;(),]+)/.exec(row.userAgent ?? "")?.[1]?.toLowerCase();
      expect({ row: row.tool, generic: product !== undefined && GENERIC_PRODUCTS.includes(product) }).toEqual({ row: row.tool, generic: true });
    }
  });

  test("templates match their samples and nothing else", () => {
    expect(templateRegex("claude-cli/<v> (external, cli)").test("claude-cli/2.1.332 (external, cli)")).toBe(true);
    expect(templateRegex("claude-cli/<v> (external, cli)").test("claude-cli/2.1.332 (external, sdk-cli)")).toBe(false);
    expect(templateRegex("OpenAI/JS 7.59.0").test("OpenAI/JS 7.59.1")).toBe(false);
    for (const row of rows) if (row.userAgent) expect(templateRegex(row.userAgent).test(sampleOf(row.userAgent))).toBe(true);
  });
});

describe("GENERIC_PRODUCTS", () => {
  test("are lower-case product tokens, unique, and include the libraries the issue names", () => {
    for (const p of GENERIC_PRODUCTS) expect(p).toMatch(/^[a-z0-9._-]+$/);
    expect(new Set(GENERIC_PRODUCTS).size).toBe(GENERIC_PRODUCTS.length);
    for (const p of ["curl", "python-requests", "python-httpx", "node-fetch", "axios", "undici", "node", "okhttp", "go-http-client", "mozilla", "bun", "deno", "wget", "java", "apache-httpclient"]) {
      expect(GENERIC_PRODUCTS).toContain(p);
    }
  });

  test("no known tool's own product is generic", () => {
    for (const row of rows.filter((r) => r.memoryId !== "default-dev" && r.userAgent)) {
      const product = /^([^\s/;(),]+)/.exec(row.userAgent!)![1]!.toLowerCase();
      expect({ row: row.tool, product, generic: GENERIC_PRODUCTS.includes(product) }).toEqual({ row: row.tool, product, generic: false });
    }
  });
});
