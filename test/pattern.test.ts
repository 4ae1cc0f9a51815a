// Tests for src/pattern.ts: parity with Python's re (python3 is the oracle), refusals, hostile inputs, the bounded DFA cache.
import { beforeAll, describe, expect, test } from "bun:test";
import { compileAutomaton, compilePattern, compilePatternSet, patternError } from "../src/pattern.ts";
import { runToEnd } from "./support/process.ts";

const matcher = (pattern: string, whole = false) => {
  const c = compilePattern(pattern, { whole });
  if (!c.ok) throw new Error(`${pattern}: ${c.error}`);
  return c.matcher;
};
const matches = (pattern: string, value: string) => matcher(pattern).test(value);
const errorOf = (pattern: string) => {
  const c = compilePattern(pattern);
  return c.ok ? null : c.error;
};

// ------------------------------------------------------------------------------------------ Python oracle
const PYTHON = Bun.which("python3");
const FIXTURE = new URL("./support/pattern-oracle-fixture.py", import.meta.url).pathname;
/** Python's verdict; a timeout is Python's backtracking going exponential on a random pattern. */
type OracleResult = { ok: true; match: boolean[]; full: boolean[] } | { ok: false; error: string } | { ok?: undefined; timeout: true };

/** Runs Python's re over [pattern, values] pairs: what re.compile, re.match and re.fullmatch say. */
async function askPython(queries: [string, string[]][]): Promise<{ version: string; results: OracleResult[] }> {
  if (!PYTHON) throw new Error("python3 is not installed: the Python parity tests need it (it is on CI)");
  const { stdout: out, stderr, code } = await runToEnd([PYTHON, FIXTURE], { stdin: JSON.stringify(queries) });
  if (code !== 0) throw new Error(`python3 ${FIXTURE} exited ${code}: ${stderr}`);
  const nl = out.indexOf("\n");
  return { version: out.slice(0, nl), results: JSON.parse(out.slice(nl + 1)) as OracleResult[] };
}

/** A test that needs python3: skipped with a message where it is missing, failing instead on CI. */
const withPython = (name: string, fn: () => void | Promise<void>) => {
  if (PYTHON || process.env.CI === "true") return test(name, fn);
  console.warn(`skipped (python3 not installed): ${name}`);
  return test.skip(name, fn);
};

// ------------------------------------------------------------------------------------------------ tables
/** [pattern, value, re.match found a match, re.fullmatch did]; each row is checked against Python too. */
const CASES: [string, string, boolean, boolean][] = [
  // anchored at the start only; fullmatch needs the whole value
  ["claude-cli/", "claude-cli/2.1.197 (external, cli)", true, false],
  ["cli/", "claude-cli/2.1.197", false, false],
  ["vscode/.*", "vscode/1.95.0", true, true],
  ["OpenAIClientImpl/Java", "OpenAIClientImpl/Java 2.1.0", true, false],
  ["a|b", "xb", false, false],
  ["a|b", "bx", true, false],
  ["a|ab", "ab", true, true],
  ["", "", true, true],
  ["", "abc", true, false],
  ["(?:Async)?OpenAI/Python", "AsyncOpenAI/Python 1.2", true, false],
  ["(?:Async)?OpenAI/Python", "OpenAI/Python 1.2", true, false],
  ["(?:Async)?OpenAI/Python", "SyncOpenAI/Python", false, false],
  ["alice", "alice2", true, false],
  ["alice", "alice", true, true],
  // case
  ["claude-cli", "Claude-CLI/2", false, false],
  ["(?i)claude-cli", "Claude-CLI/2", true, false],
  ["(?i)zed/", "Zed/0.1", true, false],
  ["(?is)a.b", "A\nB", true, true],
  ["(?i:a)b", "Ab", true, true],
  ["(?i:a)b", "AB", false, false],
  ["(?i)a(?-i:b)", "AB", false, false],
  ["(?i)a(?-i:b)", "Ab", true, true],
  ["(?i)k", "\u212a", true, true],
  ["(?ai)k", "\u212a", false, false],
  ["(?i)s", "\u017f", true, true],
  ["(?i)\u017f", "S", true, true],
  ["(?i)[a-z]+", "ABC\u017f\u212a", true, true],
  ["(?ai)[a-z]+", "ABC\u017f", true, false],
  ["(?i)\u00df", "\u1e9e", true, true],
  ["(?i)\u00e9", "\u00c9", true, true],
  ["(?i)[\u00e9]", "\u00c9", true, true],
  ["(?i)[^\u00e9]", "\u00c9", false, false],
  ["(?i)\u03bc", "\u00b5", true, true],
  ["(?i)\u0130", "i", true, true],
  ["(?i)i", "\u0130", true, true],
  ["(?i)i", "\u0131", true, true],
  ["(?i)[^a]", "A", false, false],
  ["(?a)(?i)[^a]", "A", false, false],
  ["(?i)\\w+", "\u00c0b", true, true],
  // dot
  [".", "\n", false, false],
  ["(?s).", "\n", true, true],
  ["a.c", "abc", true, true],
  ["a.c", "a\nc", false, false],
  // classes
  ["[]a]", "]", true, true],
  ["[^]a]", "]", false, false],
  ["[^]a]", "b", true, true],
  ["[a-]", "-", true, true],
  ["[\\d-]+", "1-2", true, true],
  ["[\\w.]+@", "a.b@", true, true],
  ["[\\s]", "\u00a0", true, true],
  ["(?a)[\\s]", "\u00a0", false, false],
  ["\\s", "\x1c", true, true],
  ["\\s", "\ufeff", false, false],
  ["\\d", "\u0663", true, true],
  ["(?a)\\d", "\u0663", false, false],
  ["\\w", "\u00e9", true, true],
  ["(?a)\\w", "\u00e9", false, false],
  ["\\w", "\u0301", false, false],
  ["\\w", "\u00b2", true, true],
  ["\\W", "-", true, true],
  ["[^\\W\\d]", "a", true, true],
  ["[^\\W\\d]", "1", false, false],
  ["[\\]]", "]", true, true],
  ["[\\x41-\\x43]+", "ABC", true, true],
  ["[\\u00e0-\\u00ff]", "\u00e9", true, true],
  ["[\\101]", "A", true, true],
  ["[\\0]", "\0", true, true],
  ["[\\b]", "\b", true, true],
  ["[.]", "a", false, false],
  ["[a-c]", "d", false, false],
  // escapes
  ["\\.", ".", true, true],
  ["\\.", "a", false, false],
  ["a\\tb", "a\tb", true, true],
  ["\\x41\\u0042\\U00000043", "ABC", true, true],
  ["\\101", "A", true, true],
  ["\\0", "\0", true, true],
  ["\\012", "\n", true, true],
  ["\\-", "-", true, true],
  ["\\a\\f\\v", "\x07\x0c\x0b", true, true],
  ["\\U0001F600", "\u{1F600}", true, true],
  ["\\U0001F600+", "\u{1F600}\u{1F600}", true, true],
  ["\u{1F600}", "\u{1F600}x", true, false],
  // groups and comments
  ["(a)(?P<n>b)(?:c)", "abc", true, true],
  ["(?#comment)abc", "abc", true, true],
  ["a(?#c)*", "aaa", true, true],
  ["()", "", true, true],
  ["(|a)b", "b", true, true],
  ["(?P<\u00e9t\u00e9>x)", "x", true, true],
  // quantifiers
  ["a{2}", "aa", true, true],
  ["a{2}", "a", false, false],
  ["a{2,}", "aaaa", true, true],
  ["a{,2}", "aaa", true, false],
  ["a{1,2}?b", "aab", true, true],
  ["a{,}", "aaa", true, true],
  ["a{", "a{", true, true],
  ["a{x}", "a{x}", true, true],
  ["a{1,2", "a{1,2", true, true],
  ["x{}", "x{}", true, true],
  ["a*?", "aaa", true, true],
  ["a+?b", "aaab", true, true],
  ["(?:ab)*c", "ababc", true, true],
  ["(a*)*b", "aaab", true, true],
  ["(a|)+b", "b", true, true],
  ["(?:a{0,3}){2}c", "aaaac", true, true],
  ["(?:a{0,3}){2}c", "aaaaaaac", false, false],
  ["(?:^)*a", "a", true, true],
  // anchors
  ["^abc", "abc", true, true],
  ["a^", "a", false, false],
  ["abc$", "abc", true, true],
  ["abc$", "abc\n", true, false],
  ["abc$\\n", "abc\n", true, true],
  ["abc$", "abc\n\n", false, false],
  ["abc$", "abcd", false, false],
  ["a$$", "a\n", true, false],
  ["a$\\Z", "a\n", false, false],
  ["a\\Z", "a\n", false, false],
  ["a\\Z", "a", true, true],
  ["(?m)a$", "a\nb", true, false],
  ["(?m)a$\\nb$", "a\nb", true, true],
  ["(?m)^b", "a\nb", false, false],
  ["(?m)a\\n^b", "a\nb", true, true],
  ["a\\n^b", "a\nb", false, false],
  ["\\Aa", "a", true, true],
  ["a\\A", "a", false, false],
  ["$", "", true, true],
  ["$", "\n", true, false],
  ["(?m)$", "\n", true, false],
  ["^$", "", true, true],
  ["\\b", "", false, false],
  ["\\B", "", false, false],
  ["\\b", "a", true, false],
  ["\\B", "-", true, false],
  ["a\\b", "a-", true, false],
  ["a\\b", "ab", false, false],
  ["a\\B", "ab", true, false],
  ["\u00e9\\b", "\u00e9a", false, false],
  ["(?a)\u00e9\\b", "\u00e9a", true, false],
  ["-\\b", "-a", true, false],
  ["\\bfoo\\b", "foo bar", true, false],
  // verbose
  ["(?x) a b # comment\n c", "abc", true, true],
  ["(?x)a\\ b", "a b", true, true],
  ["(?x)[ ]", " ", true, true],
  ["(?x)a {2}", "aa", true, true],
  ["(?x:a b)c", "abc", true, true],
  ["(?x)a#b\nc", "ac", true, true],
  // flags
  ["(?i)(?s)A.", "a\n", true, true],
  ["(?u)a", "a", true, true],
  // real user agents
  ["Mozilla/5\\.0 .*Chrome/.*Safari/.*Edg/", "Mozilla/5.0 (Windows NT 10.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36 Edg/120.0", true, false],
  ["(?i).*vscode.*copilot.*chat", "GitHubCopilotChat/0.22 VSCode/1.95 copilot-chat", true, true],
  ["Claude Code/.*", "claude-cli/2.1.197 (external, sdk-cli)", false, false],
];

/** [pattern, Python's message]: invalid patterns, worded and placed as Python words and places them. */
const ERRORS: [string, string][] = [
  ["(unclosed", "missing ), unterminated subpattern at position 0"],
  ["abc(", "missing ), unterminated subpattern at position 3"],
  ["*", "nothing to repeat at position 0"],
  ["a**", "multiple repeat at position 2"],
  ["^*", "nothing to repeat at position 1"],
  ["\\b+", "nothing to repeat at position 2"],
  ["[z-a]", "bad character range z-a at position 1"],
  ["[\\d-z]", "bad character range \\d-z at position 1"],
  ["[a-", "unterminated character set at position 0"],
  ["(?<x>a)", "unknown extension ?<x at position 1"],
  ["(?x", "missing -, : or ) at position 3"],
  ["a)", "unbalanced parenthesis at position 1"],
  ["\\", "bad escape (end of pattern) at position 0"],
  ["\\q", "bad escape \\q at position 0"],
  ["[\\q]", "bad escape \\q at position 1"],
  ["[\\A]", "bad escape \\A at position 1"],
  ["\\x4", "incomplete escape \\x4 at position 0"],
  ["\\u12", "incomplete escape \\u12 at position 0"],
  ["a{3,2}", "min repeat greater than max repeat at position 2"],
  ["\\2(a)", "invalid group reference 2 at position 1"],
  ["(a\\1)", "cannot refer to an open group at position 2"],
  ["(?P<1a>x)", "bad character in group name '1a' at position 4"],
  ["(?P<a>x)(?P<a>y)", "redefinition of group name 'a' as group 2; was group 1 at position 12"],
  ["(?P=zz)", "unknown group name 'zz' at position 4"],
  ["(?P<>x)", "missing group name at position 4"],
  ["(?P<a", "missing >, unterminated name at position 4"],
  ["a|(?i)b", "global flags not at the start of the expression at position 2"],
  ["(?L)a", "bad inline flags: cannot use 'L' flag with a str pattern at position 3"],
  ["(?au)a", "bad inline flags: flags 'a', 'u' and 'L' are incompatible at position 4"],
  ["(?a)(?u)a", "ASCII and UNICODE flags are incompatible"],
  ["(?-a:x)", "bad inline flags: cannot turn off flags 'a', 'u' and 'L' at position 4"],
  ["(?i-i:x)", "bad inline flags: flag turned on and off at position 5"],
  ["(?t:x)", "bad inline flags: cannot turn on global flag at position 3"],
  ["(?#unterminated", "missing ), unterminated comment at position 0"],
  ["a{4294967295}", "the repetition number is too large"],
  ["[\\400]", "octal escape value \\400 outside of range 0-0o377 at position 1"],
  ["\\400", "octal escape value \\400 outside of range 0-0o377 at position 0"],
  ["(?P", "unexpected end of pattern at position 3"],
  ["(?Px)", "unknown extension ?Px at position 1"],
  ["(?z)", "unknown extension ?z at position 1"],
  ["(?i", "missing -, : or ) at position 3"],
  ["ab\n(", "missing ), unterminated subpattern at position 3 (line 2, column 1)"],
  ["\\U00110000", "bad escape \\U00110000 at position 0"],
  ["(?(1)a|b|c)", "conditional backref with more than two branches at position 8"],
  ["(?(2)a)(b)", "invalid group reference 2 at position 3"],
  ["\u{1F600}*+(", "missing ), unterminated subpattern at position 3"],
];

/** [pattern, part of our message]: patterns Python accepts that are refused here, each saying why. */
const REFUSED: [string, string][] = [
  ["(a)\\1", "backreference \\1 at position 3 is not supported"],
  ["(?P<n>a)(?P=n)", "backreference (?P=n) at position 8 is not supported"],
  ["a(?=b)", "lookahead (?= at position 1 is not supported"],
  ["a(?!b)", "negative lookahead (?! at position 1 is not supported"],
  ["(?<=a)b", "lookbehind (?<= at position 0 is not supported"],
  ["(?<!a)b", "negative lookbehind (?<! at position 0 is not supported"],
  ["(a)?(?(1)b|c)", "conditional group (?( at position 4 is not supported"],
  ["(?>a+)b", "atomic group (?> at position 0 is not supported"],
  ["a*+", "possessive quantifier *+ at position 1 is not supported"],
  ["a++", "possessive quantifier ++ at position 1 is not supported"],
  ["a?+", "possessive quantifier ?+ at position 1 is not supported"],
  ["a{1,2}+", "possessive quantifier {...}+ at position 1 is not supported"],
  ["(a{1000}){1000}", "pattern too large: it compiles to more than 20000 states"],
  ["a{0,4294967294}", "pattern too large"],
  ["\\N{EM DASH}", "named character escape \\N{...} at position 0 is not supported"],
  ["[\\U0001F600]", "a character above U+FFFF in a character class at position 0 is not supported"],
  ["(?t)a", "the t (TEMPLATE) flag at position 2 is not supported"],
  ["(".repeat(401) + "a" + ")".repeat(401), "groups nested more than 400 deep are not supported"],
];

// --------------------------------------------------------------------------------------------------- fuzz
/** mulberry32: a small seeded generator, so the fuzz set is the same on every run. */
function rng(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Random small patterns over a small alphabet, with every construct, the refused ones sometimes. */
function fuzzPatterns(count: number, seed: number): string[] {
  const r = rng(seed);
  const pick = <T,>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const ATOMS = ["a", "b", "A", "a", "b", ".", "\\n", " ", "[ab]", "[^a]", "[a-c]", "[\\w]", "[^\\W\\d]", "[A-Z]", "[]a]",
    "\\w", "\\W", "\\d", "\\s", "\\S", "\\b", "\\B", "\\A", "\\Z", "^", "$", "\\x41", "[\\s-]", "_", "1", "\u00e9", "\u212a",
    "\\.", "[^\\n]", "(?#c)", "x{}", "{", "[\\d-]", "\\0", "(|a)", "(a|)", "[a-]", "\\-", "[\\x41-\\x5a]"];
  const QUANT = ["", "", "", "*", "+", "?", "{2}", "{1,2}", "{,2}", "{1,}", "*?", "+?", "??", "{0,1}?"];
  const RARE = ["(?=a)", "(?!b)", "(?<=a)", "\\1", "(?>a)", "a*+", "(?(1)a|b)", "(?P=g)"];
  const FLAGS = ["", "", "", "", "(?i)", "(?m)", "(?s)", "(?a)", "(?x)", "(?im)", "(?ai)", "(?ms)"];
  const re = (depth: number): string => {
    const branches = 1 + (r() < 0.25 ? Math.floor(r() * 2) + 1 : 0);
    const out: string[] = [];
    for (let b = 0; b < branches; b++) {
      let seq = "";
      const n = 1 + Math.floor(r() * 4);
      for (let i = 0; i < n; i++) {
        let atom: string;
        const x = r();
        if (x < 0.03) atom = pick(RARE);
        else if (x < 0.2 && depth < 3) atom = pick(["(", "(?:", "(?i:", "(?-i:", "(?P<g>", "(?m:", "(?s:", "(?a:", "(?x:", "(?u:", "(?-s:"]) + re(depth + 1) + ")";
        else atom = pick(ATOMS);
        seq += atom + pick(QUANT);
      }
      out.push(seq);
    }
    return out.join("|");
  };
  return Array.from({ length: count }, () => pick(FLAGS) + re(0));
}

function fuzzValues(r: () => number, count: number): string[] {
  const CHARS = ["a", "a", "b", "b", "A", "B", "\n", " ", "_", "1", "\u00e9", "\u212a", "-"];
  return Array.from({ length: count }, () => {
    const n = Math.floor(r() * 8);
    let s = "";
    for (let i = 0; i < n; i++) s += CHARS[Math.floor(r() * CHARS.length)];
    return s;
  });
}

const FUZZ_PATTERNS = fuzzPatterns(3000, 20);
const valueRng = rng(7);
const FUZZ_VALUES = FUZZ_PATTERNS.map(() => fuzzValues(valueRng, 8));

/** Unicode classes and case folding checked unit by unit over Latin-1, Latin Extended-A/B and known tricky ones. */
const UNICODE_PATTERNS = ["\\w", "\\d", "\\s", "(?a)\\w", "(?a)\\s", "\\b", "(?i)k", "(?i)[k-m]", "(?i)[^k]", "(?i)s", "(?i)\\xb5",
  "(?i)[\\xb5]", "(?i)\u00df", "(?i)[\u00df]", "(?i)i", "(?i)\u0130", "(?i)[\\u0100-\\u017f]", "(?ai)[a-z]", "(?i)[\\W]", "(?i)\u03c3", "(?i)[\u03c2]", "."];
const UNICODE_UNITS = [...Array.from({ length: 0x250 }, (_, c) => String.fromCharCode(c)),
  ..."\u0345\u0390\u03a3\u03b9\u03c2\u03c3\u1e9e\u1fbe\u1fd3\u212a\u212b\u2126\u0660\u0969\uff10\u3000\u2028\u1680\u00a0"];

let python: { version: string; results: OracleResult[] } | undefined;
const TABLE_QUERIES: [string, string[]][] = CASES.map(([p, v]) => [p, [v]]);
const QUERIES: [string, string[]][] = [
  ...TABLE_QUERIES,
  ...ERRORS.map(([p]): [string, string[]] => [p, []]),
  ...REFUSED.map(([p]): [string, string[]] => [p, [""]]),
  ...FUZZ_PATTERNS.map((p, i): [string, string[]] => [p, FUZZ_VALUES[i]!]),
  ...UNICODE_PATTERNS.map((p): [string, string[]] => [p, UNICODE_UNITS]),
];
const at = {
  cases: 0,
  errors: CASES.length,
  refused: CASES.length + ERRORS.length,
  fuzz: CASES.length + ERRORS.length + REFUSED.length,
  unicode: CASES.length + ERRORS.length + REFUSED.length + FUZZ_PATTERNS.length,
};

beforeAll(async () => {
  if (PYTHON) python = await askPython(QUERIES);
}, { timeout: 120_000 });
const oracle = (i: number) => {
  if (!python) throw new Error("python3 is not installed: the Python parity tests need it (it is on CI)");
  return python.results[i]!;
};

// ---------------------------------------------------------------------------------------------- the tests
describe("compilePattern: Python re.match / re.fullmatch semantics", () => {
  test("the table's expected answers", () => {
    const wrong = CASES.filter(([p, v, m, f]) => matcher(p).test(v) !== m || matcher(p, true).test(v) !== f);
    expect(wrong).toEqual([]);
  });

  withPython("the table's expected answers are Python's", () => {
    const wrong = CASES.filter(([p, , m, f], i) => {
      const r = oracle(at.cases + i);
      return !r.ok || r.match[0] !== m || r.full[0] !== f;
    });
    expect(wrong).toEqual([]);
  });

  test("the router's patterns keep their meaning", () => {
    expect(matches("claude-cli/", "claude-cli/2.1.197 (external, cli)")).toBe(true);
    expect(matches("(?P<name>codex)_(?P<v>\\d+)", "codex_12")).toBe(true);
    expect(matches("\\Aabc\\Z", "abc")).toBe(true);
    expect(matches("\\Aabc\\Z", "abcd")).toBe(false);
    expect(errorOf("[\\Z]")).toBe("bad escape \\Z at position 1"); // as in Python (a JavaScript RegExp took it)
  });

  test("one matcher answers many values (its DFA cache is reused)", () => {
    const m = matcher("(?i)[a-z]+/\\d+\\.\\d+");
    const values = ["curl/8.5", "CURL/8.5", "curl/8", "/1.2", "a/1.2x", "Zz/10.20"];
    const once = values.map((v) => m.test(v));
    expect(values.map((v) => m.test(v))).toEqual(once);
    expect(once).toEqual([true, true, false, false, true, true]);
  });
});

describe("invalid and refused patterns", () => {
  test("invalid patterns get Python's message and position", () => {
    expect(ERRORS.map(([p]) => [p, errorOf(p)])).toEqual(ERRORS);
  });

  withPython("those are Python's messages", () => {
    expect(ERRORS.map(([p], i) => {
      const r = oracle(at.errors + i);
      return [p, r.ok === false ? r.error : "(accepted)"];
    })).toEqual(ERRORS);
  });

  test("constructs that need backtracking are refused, naming the construct and why", () => {
    for (const [p, message] of REFUSED) {
      const error = errorOf(p);
      expect(error).toContain(message);
      if (!/too large|TEMPLATE|\\N|U\+FFFF|nested/.test(message)) expect(error).toContain("linear time");
    }
  });

  withPython("Python accepts every refused pattern (they are refusals, not errors)", () => {
    expect(REFUSED.filter((_, i) => !oracle(at.refused + i).ok)).toEqual([]);
  });

  test("a syntax error is reported before a refusal, as Python would report it", () => {
    expect(errorOf("(?=a)(")).toBe("missing ), unterminated subpattern at position 5");
    expect(errorOf("\\1(a)")).toBe("invalid group reference 1 at position 1");
  });

  test("patternError, the config's check, gives compilePattern's verdict without compiling", () => {
    for (const [p] of [...ERRORS, ...REFUSED]) expect(patternError(p) ?? null).toBe(errorOf(p));
    for (const p of ["claude-cli/", "(?i)vscode/.*", "(?:codex[_-]|Codex )", "a{3,5}b?"]) expect(patternError(p)).toBeUndefined();
  });

  test("compilePatternSet names the pattern that did not compile", () => {
    expect(() => compilePatternSet(["a", "(b"])).toThrow(TypeError);
    expect(() => compilePatternSet(["a", "(b"])).toThrow(/pattern 1 .*missing \), unterminated subpattern at position 0/);
  });
});

describe("fuzz: random patterns and values against Python", () => {
  withPython(`${FUZZ_PATTERNS.length} patterns x 8 values: same compile verdict and the same answers`, () => {
    const mismatches: unknown[] = [];
    let accepted = 0;
    let refused = 0;
    let timeouts = 0;
    FUZZ_PATTERNS.forEach((p, i) => {
      const r = oracle(at.fuzz + i);
      const ours = compilePattern(p);
      if (r.ok === undefined) {
        timeouts++;
        return;
      }
      if (!r.ok) {
        if (ours.ok || ours.error !== r.error) mismatches.push({ p, python: r.error, ours: ours.ok ? "(accepted)" : ours.error });
        return;
      }
      if (!ours.ok) {
        refused++;
        if (!/ not supported: |pattern too large/.test(ours.error)) mismatches.push({ p, python: "(accepted)", ours: ours.error });
        return;
      }
      accepted++;
      const whole = matcher(p, true);
      FUZZ_VALUES[i]!.forEach((v, j) => {
        if (ours.matcher.test(v) !== r.match[j] || whole.test(v) !== r.full[j]) {
          mismatches.push({ p, v, python: [r.match[j], r.full[j]], ours: [ours.matcher.test(v), whole.test(v)] });
        }
      });
    });
    expect(mismatches.slice(0, 10)).toEqual([]);
    expect(accepted).toBeGreaterThan(FUZZ_PATTERNS.length / 3);
    expect(refused).toBeGreaterThan(10); // the refused kinds were generated, and only they were refused
    expect(timeouts).toBeLessThan(FUZZ_PATTERNS.length / 100);
  });

  withPython("pattern sets answer the first pattern that Python matches", () => {
    // Groups of 5 accepted patterns; each value Python was asked about for a pattern of the group is read by
    // the set, which must answer the lowest pattern whose own matcher (checked against Python above) matches.
    const usable = FUZZ_PATTERNS.flatMap((p, i) => {
      const c = compilePattern(p);
      return oracle(at.fuzz + i).ok === true && c.ok ? [{ p, i, m: c.matcher }] : [];
    });
    const mismatches: unknown[] = [];
    for (let g = 0; g + 5 <= usable.length; g += 5) {
      const group = usable.slice(g, g + 5);
      const set = compilePatternSet(group.map(({ p }) => p));
      group.forEach(({ i }, own) => {
        const python = oracle(at.fuzz + i) as { match: boolean[] };
        FUZZ_VALUES[i]!.forEach((v, j) => {
          const expected = group.findIndex(({ m }) => m.test(v));
          const first = set.firstMatch(v);
          if (first !== expected || (python.match[j] && expected > own)) {
            mismatches.push({ patterns: group.map(({ p }) => p), v, expected, first });
          }
        });
      });
    }
    expect(mismatches.slice(0, 10)).toEqual([]);
  });

  withPython("Unicode classes, word boundaries and case folding, unit by unit", () => {
    const mismatches: unknown[] = [];
    UNICODE_PATTERNS.forEach((p, i) => {
      const r = oracle(at.unicode + i);
      if (r.ok !== true) throw new Error(`python did not answer for ${p}: ${JSON.stringify(r)}`);
      const m = matcher(p);
      UNICODE_UNITS.forEach((u, j) => {
        if (m.test(u) !== r.match[j]) mismatches.push({ p, unit: u.charCodeAt(0).toString(16), python: r.match[j] });
      });
    });
    expect(mismatches.slice(0, 10)).toEqual([]);
  });
});

describe("hostile patterns and values (the issue's cases) answer correctly", () => {
  const KIB = 1024;
  const commas = "a,".repeat(128 * KIB); // 256 KiB
  test(".*a.*a.*a.*b on 5,000 and 128 Ki 'a,'", () => {
    expect(matches(".*a.*a.*a.*b", "a,".repeat(5000))).toBe(false);
    expect(matches(".*a.*a.*a.*b", commas)).toBe(false);
    expect(matches(".*a.*a.*a.*b", commas + "b")).toBe(true);
    expect(matcher(".*a.*a.*a.*b", true).test(commas + "b")).toBe(true);
    expect(matcher(".*a.*a.*a.*b", true).test(commas + "b,")).toBe(false);
  });

  test("browser-like patterns on 60 KB and 256 KiB user agents", () => {
    const ua = "Mozilla/5.0 " + "Chrome/ Safari/ vscode copilot ".repeat(2000); // ~60 KB
    expect(ua.length).toBeGreaterThan(60_000);
    expect(matches("(?i).*vscode.*copilot.*chat", ua)).toBe(false);
    expect(matches("(?i).*vscode.*copilot.*chat", ua + "CHAT")).toBe(true);
    expect(matches("Mozilla/5\\.0 .*Chrome/.*Safari/.*Edg/", ua)).toBe(false);
    expect(matches("Mozilla/5\\.0 .*Chrome/.*Safari/.*Edg/", ua + "Edg/1")).toBe(true);
    const huge = "Mozilla/5.0 " + "Chrome/Safari/".repeat(18_800);
    expect(huge.length).toBeGreaterThan(256 * KIB);
    expect(matches("Mozilla/5\\.0 .*Chrome/.*Safari/.*Edg/", huge)).toBe(false);
  });

  test("(a+)+$ and friends", () => {
    expect(matches("(a+)+$", "a".repeat(256 * KIB) + "!")).toBe(false);
    expect(matches("(a+)+$", "a".repeat(256 * KIB))).toBe(true);
    expect(matches("(a+)+$", "a".repeat(256 * KIB) + "\n")).toBe(true);
    expect(matches("(a|aa)+$", "a".repeat(50_000) + "b")).toBe(false);
    expect(matches("(\\w+\\s?)+$", "word ".repeat(20_000) + "!")).toBe(false);
    expect(matches("(?:a*)*b", "a".repeat(100_000))).toBe(false);
  });

  test("a rule set holding the hostile patterns, on hostile values", () => {
    const set = compilePatternSet(["claude-cli/", "(?i).*vscode.*copilot.*chat", "Mozilla/5\\.0 .*Chrome/.*Safari/.*Edg/", ".*a.*a.*a.*b", "(a+)+$"]);
    expect(set.firstMatch(commas)).toBe(-1);
    expect(set.firstMatch(commas + "b")).toBe(3);
    expect(set.firstMatch("a".repeat(100_000))).toBe(4);
    expect(set.firstMatch("Mozilla/5.0 Chrome/ Safari/ vscode copilot chat Edg/")).toBe(1);
    expect(set.firstMatch("Mozilla/5.0 Chrome/ Safari/ Edg/ vscode")).toBe(2);
    expect(set.firstMatch("claude-cli/1 vscode copilot chat")).toBe(0);
  });
});

describe("pattern sets", () => {
  const RULES = ["claude-cli/", "Claude Code/.*", "OpenAIClientImpl/Java", "vscode/.*", "codex_cli_rs/", "(?:Async)?OpenAI/Python",
    "OpenAI/JS", "(?:Async)?Anthropic/Python", "Anthropic/JS", "(?i)zed/", ".*Firefox/"];
  const set = compilePatternSet(RULES);
  test("the first matching rule wins, as the router reads them in order", () => {
    expect(set.firstMatch("claude-cli/2.1.197 (external, cli)")).toBe(0);
    expect(set.firstMatch("AsyncOpenAI/Python 1.50.0")).toBe(5);
    expect(set.firstMatch("OpenAI/JS 6.49.0")).toBe(6);
    expect(set.firstMatch("ZED/0.150")).toBe(9);
    expect(set.firstMatch("Mozilla/5.0 (X11) Gecko/20100101 Firefox/130.0")).toBe(10);
    expect(set.firstMatch("curl/8.5.0")).toBe(-1);
    expect(set.firstMatch("")).toBe(-1);
    expect(compilePatternSet(["b", "a.*", "a"]).firstMatch("a")).toBe(1);
    expect(compilePatternSet(["a$", "a"]).firstMatch("a\n")).toBe(0);
    expect(compilePatternSet(["a$", "a\\n"]).firstMatch("a\nb")).toBe(1);
    expect(compilePatternSet([]).firstMatch("anything")).toBe(-1);
  });

  test("a set agrees with its patterns one by one", () => {
    const values = ["claude-cli/", "Claude Code/1", "vscode/", "zed/", "Zed/", "AsyncAnthropic/Python", "x Firefox/", "OpenAI/Python"];
    for (const v of values) expect([v, set.firstMatch(v)]).toEqual([v, RULES.findIndex((p) => matches(p, v))]);
  });
});

describe("the bounded DFA cache", () => {
  // [ab]*a[ab]{12} as a whole match asks for an "a" 13 units from the end: its DFA has 2^13 states.
  const PATTERN = "[ab]*a[ab]{12}";
  const r = rng(99);
  const values = Array.from({ length: 6 }, () => Array.from({ length: 20_000 }, () => (r() < 0.5 ? "a" : "b")).join(""));
  const expected = values.map((v) => v[v.length - 13] === "a");

  test("a tiny cache is flushed and the value finished by NFA simulation, with the same answers", () => {
    const tiny = compileAutomaton([PATTERN], { whole: true, cacheBytes: 4096 });
    expect(values.map((v) => tiny.test(v))).toEqual(expected);
    expect(values.map((v) => tiny.test(v))).toEqual(expected); // again, after flushes
    expect(tiny.stats.flushes).toBeGreaterThan(0);
    expect(tiny.stats.nfaFallbacks).toBeGreaterThan(0);
  });

  test("the default cache gives the same answers", () => {
    const big = compileAutomaton([PATTERN], { whole: true });
    expect(values.map((v) => big.test(v))).toEqual(expected);
  });

  test("once its cache has overflowed, an automaton that keeps building states hands values to the NFA early", () => {
    const set = compileAutomaton([PATTERN + "$", "[ab]*b[ab]{14}c"], { cacheBytes: 256 << 10 });
    const want = values.map((v) => (v[v.length - 13] === "a" ? 0 : -1));
    expect(values.map((v) => set.firstMatch(v))).toEqual(want);
    expect(values.map((v) => set.firstMatch(v))).toEqual(want);
    expect(set.stats.flushes).toBeGreaterThan(0);
    // a fallback on overflow needs two flushes in one value; more fallbacks than flushes came per window
    expect(set.stats.nfaFallbacks).toBeGreaterThan(set.stats.flushes);
  });

  test("a flushed set keeps answering first matches, prefix semantics included", () => {
    const patterns = ["[ab]*a[ab]{10}c", "[ab]*b[ab]{10}c", "[ab]*d"];
    const tiny = compileAutomaton(patterns, { cacheBytes: 2048 });
    const big = compilePatternSet(patterns);
    for (const v of values) {
      for (const tail of ["c", "d", "", "cd"]) {
        const value = v.slice(0, 3000) + tail;
        const want = patterns.findIndex((p) => matches(p, value));
        expect(tiny.firstMatch(value)).toBe(want);
        expect(big.firstMatch(value)).toBe(want);
      }
    }
    expect(tiny.stats.flushes).toBeGreaterThan(0);
  });
});
