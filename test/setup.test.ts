// Tests for src/setup.ts: every tool's text names this memproxy's address and custom header, its shell lines
// are valid shell with the values meant, its JSON files parse, and unknown tools get nothing.
import { describe, expect, test } from "bun:test";
import { setupList, setupText } from "../src/setup.ts";
import { KNOWN_TOOLS } from "../src/tools.ts";
import { evaluateExports, setupParts } from "./support/setup-text.ts";

// Not the defaults, so that nothing hard-coded passes.
const ctx = { baseUrl: "http://127.0.0.1:9911", customHeader: "x-team-memory" };


/** What bash makes of the export lines, with LITELLM_API_KEY set: the variables they set. */
const evaluate = (exports: string[]) => evaluateExports(exports, { PATH: process.env.PATH, LITELLM_API_KEY: "sk-test-key" });

describe("setupText", () => {
  test("every tool's text names the given base URL and custom header, and none of the defaults", () => {
    for (const t of KNOWN_TOOLS) {
      const text = setupText(t.key, ctx)!;
      expect({ tool: t.key, url: text.includes(ctx.baseUrl), header: text.includes(ctx.customHeader) }).toEqual({ tool: t.key, url: true, header: true });
      expect(text).not.toContain("8764");
      expect(text).not.toContain("x-memory-user-id");
      expect(text).toContain(t.name);
    }
  });

  test("a recognisable tool's text names its id; others say why they cannot be told apart and show the header", () => {
    for (const t of KNOWN_TOOLS) {
      const first = setupText(t.key, ctx)!.split("\n")[0]!;
      if (t.recognisable) expect(first).toBe(`${t.name}: memory id ${t.userId} (recognised by ${t.rules.map((r) => `${r.header} "${r.pattern}"`).join(" or ")})`);
      else expect(first).toMatch(/cannot be told apart|cannot reach/);
    }
    expect(setupText("cline", ctx)).toContain(`${ctx.customHeader} = cline`);
    expect(setupText("aider", ctx)).toContain(`${ctx.customHeader}: aider`);
    expect(setupText("cursor", ctx)).toContain("Cursor's servers");
  });

  test("unknown tools get undefined", () => {
    expect(setupText("no-such-tool", ctx)).toBeUndefined();
    expect(setupText("", ctx)).toBeUndefined();
  });

  test("a trailing slash on the base URL is not doubled", () => {
    expect(setupText("openai-python", { ...ctx, baseUrl: `${ctx.baseUrl}/` })).toContain(`OPENAI_BASE_URL=${ctx.baseUrl}/v1\n`);
  });

  test("the shell lines are valid bash and set exactly the values meant", async () => {
    expect(await evaluate(setupParts(setupText("claude-code", ctx)!, "base").exports)).toEqual({
      ANTHROPIC_BASE_URL: ctx.baseUrl,
      ANTHROPIC_AUTH_TOKEN: "sk-test-key",
    });
    expect(await evaluate(setupParts(setupText("claude-code", ctx)!, "project").exports)).toEqual({
      ANTHROPIC_CUSTOM_HEADERS: `${ctx.customHeader}: my-project`,
    });
    expect(await evaluate(setupParts(setupText("gemini-cli", ctx)!, "base").exports)).toEqual({
      GOOGLE_GEMINI_BASE_URL: ctx.baseUrl,
      GEMINI_API_KEY: "sk-test-key",
    });
    expect(await evaluate(setupParts(setupText("qwen-code", ctx)!, "base").exports)).toMatchObject({ OPENAI_BASE_URL: `${ctx.baseUrl}/v1`, OPENAI_API_KEY: "sk-test-key" });
    expect(await evaluate(setupParts(setupText("anthropic-js", ctx)!, "base").exports)).toEqual({ ANTHROPIC_BASE_URL: ctx.baseUrl, ANTHROPIC_AUTH_TOKEN: "sk-test-key" });
    for (const t of KNOWN_TOOLS) {
      const text = setupText(t.key, ctx)!;
      for (const part of ["base", "project"] as const) await evaluate(setupParts(text, part).exports);
    }
  });

  test("every JSON file block parses, and the per-project ones carry the custom header", () => {
    let projectFiles = 0;
    for (const t of KNOWN_TOOLS) {
      const text = setupText(t.key, ctx)!;
      for (const part of ["base", "project"] as const) {
        for (const f of setupParts(text, part).files) {
          if (f.path.endsWith(".json")) expect(() => JSON.parse(f.content)).not.toThrow();
          if (part === "project") {
            projectFiles++;
            expect(f.content).toContain(ctx.customHeader);
          }
        }
      }
    }
    expect(projectFiles).toBeGreaterThanOrEqual(3);
  });

  test("Codex gets a provider of its own that sends the header from MEMORY_USER_ID", () => {
    const { files } = setupParts(setupText("codex", ctx)!, "base");
    expect(files.map((f) => f.path)).toEqual(["~/.codex/config.toml"]);
    expect(files[0]!.content).toContain(`base_url = "${ctx.baseUrl}/v1"`);
    expect(files[0]!.content).toContain(`env_http_headers = { "${ctx.customHeader}" = "MEMORY_USER_ID" }`);
    expect(files[0]!.content.split("\n")[0]).toBe('model_provider = "memproxy"');
  });
});

describe("setupList", () => {
  test("lists every tool with its key and id", () => {
    const text = setupList();
    for (const t of KNOWN_TOOLS) expect(text).toMatch(new RegExp(`^  ${t.key} +.*${t.userId}`, "m"));
    expect(text).toContain("memproxy setup <tool>");
  });
});
