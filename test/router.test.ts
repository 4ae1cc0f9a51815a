import { describe, expect, test } from "bun:test";
import { parseConfig } from "../src/config.ts";
import { compileRouter } from "../src/router.ts";

const ORIGINAL = `
user_id_mappings:
  custom_header: "x-memory-user-id"
  header_patterns:
    - header: "user-agent"
      pattern: "OpenAIClientImpl/Java"
      user_id: "pycharm-ai"
    - header: "user-agent"
      pattern: "Claude Code/.*"
      user_id: "claude-cli"
    - header: "user-agent"
      pattern: "vscode/.*"
      user_id: "vscode-copilot"
    - header: "x-client"
      pattern: "(?i)tool-"
      user_id: "tool"
  default_user_id: "default-dev"
`;
const route = compileRouter(parseConfig(ORIGINAL, "original.yaml").routing);
const decide = (h: Record<string, string>) => {
  const r = route(new Headers(h));
  if (!r.ok) throw new Error(r.rejection.message);
  return r.decision;
};

describe("router priority", () => {
  test("the custom header wins over every pattern", () => {
    expect(decide({ "x-memory-user-id": "my-project", "user-agent": "OpenAIClientImpl/Java 1.0" })).toEqual({
      user_id: "my-project",
      matched_pattern: null,
      custom_header_present: true,
      is_default: false,
    });
  });

  test("patterns in order, first match wins, and report the rule", () => {
    expect(decide({ "user-agent": "OpenAIClientImpl/Java 2.0" })).toEqual({
      user_id: "pycharm-ai",
      matched_pattern: { header: "user-agent", pattern: "OpenAIClientImpl/Java", user_id: "pycharm-ai" },
      custom_header_present: false,
      is_default: false,
    });
    expect(decide({ "user-agent": "vscode/1.2" }).user_id).toBe("vscode-copilot");
  });

  test("a pattern reads the header it names, case-insensitively by name", () => {
    expect(decide({ "X-Client": "TOOL-x", "user-agent": "curl/8" }).user_id).toBe("tool");
  });

  test("an absent header never matches; the default applies", () => {
    expect(decide({})).toEqual({ user_id: "default-dev", matched_pattern: null, custom_header_present: false, is_default: true });
    expect(decide({ "user-agent": "curl/8.0" }).is_default).toBe(true);
  });

  test("the original \"Claude Code/.*\" rule does not match the real Claude Code (FIELD-NOTES)", () => {
    expect(decide({ "user-agent": "claude-cli/2.1.197 (external, sdk-cli)" }).is_default).toBe(true);
  });
});

describe("custom header validation", () => {
  const reject = (value: string) => {
    const r = route(new Headers({ "x-memory-user-id": value }));
    return r.ok ? null : r.rejection;
  };
  test("accepts 1-128 characters of A-Z a-z 0-9 . _ : @ / -", () => {
    expect(reject("a")).toBeNull();
    expect(reject("team.a_b:c@d/e-f")).toBeNull();
    expect(reject("x".repeat(128))).toBeNull();
  });
  test("rejects anything else with a 400 that does not echo long or binary values", () => {
    expect(reject("")?.status).toBe(400);
    expect(reject("has space")?.message).toContain("x-memory-user-id");
    expect(reject("x".repeat(129))?.message).toContain("129 characters");
    expect(reject("ü")?.status).toBe(400);
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
`,
    "lookups.yaml",
  ).routing;
  const router = compileRouter(config);
  /** Headers that record which names were looked up. */
  const recording = (h: Record<string, string>) => {
    const inner = new Headers(h);
    const asked: string[] = [];
    return { asked, get: (name: string) => (asked.push(name.toLowerCase()), inner.get(name)) };
  };
  const userOf = (r: ReturnType<typeof router>) => (r.ok ? r.decision.user_id : r.rejection.message);

  test("a run of rules on one header (in any case) reads it once; a later rule on it reads it again", () => {
    const h = recording({ "user-agent": "d/1", "x-client": "none" });
    expect(userOf(router(h))).toBe("ua-d");
    expect(h.asked).toEqual(["x-memory-user-id", "user-agent", "x-client", "user-agent"]);
  });

  test("every rule still sees its own header's value", () => {
    expect(userOf(router(recording({ "user-agent": "b/2" })))).toBe("ua-b");
    expect(userOf(router(recording({ "user-agent": "z", "x-client": "c1" })))).toBe("client-c");
    expect(userOf(router(recording({ "x-client": "a/" })))).toBe("fallback");
    expect(userOf(router(recording({})))).toBe("fallback");
  });
});
