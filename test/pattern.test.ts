import { describe, expect, test } from "bun:test";
import { compilePattern } from "../src/pattern.ts";

const matches = (pattern: string, value: string) => {
  const c = compilePattern(pattern);
  if (!c.ok) throw new Error(c.error);
  return c.regex.test(value);
};

describe("compilePattern (Python re.match semantics)", () => {
  test("anchors at the start of the value only", () => {
    expect(matches("claude-cli/", "claude-cli/2.1.197 (external, cli)")).toBe(true);
    expect(matches("cli/", "claude-cli/2.1.197")).toBe(false);
    expect(matches("vscode/.*", "vscode/1.95.0")).toBe(true);
    // not anchored at the end
    expect(matches("OpenAIClientImpl/Java", "OpenAIClientImpl/Java 2.1.0")).toBe(true);
  });

  test("alternation stays anchored", () => {
    expect(matches("a|b", "xb")).toBe(false);
    expect(matches("a|b", "bx")).toBe(true);
  });

  test("a leading (?i) makes it case-insensitive, otherwise it is case-sensitive", () => {
    expect(matches("claude-cli", "Claude-CLI/2")).toBe(false);
    expect(matches("(?i)claude-cli", "Claude-CLI/2")).toBe(true);
    expect(matches("(?is)a.b", "A\nB")).toBe(true);
  });

  test("Python-only syntax is translated", () => {
    expect(matches("(?P<name>codex)_(?P=name)", "codex_codex")).toBe(true);
    expect(matches("\\Aabc\\Z", "abc")).toBe(true);
    expect(matches("\\Aabc\\Z", "abcd")).toBe(false);
    expect(matches("[\\Z]", "Z")).toBe(true);
  });

  test("invalid patterns report the reason", () => {
    const bad = compilePattern("(unclosed");
    expect(bad.ok).toBe(false);
    if (!bad.ok) expect(bad.error.length).toBeGreaterThan(0);
    expect(compilePattern("(?x)a b").ok).toBe(false);
    expect(compilePattern("[a-").ok).toBe(false);
  });
});
