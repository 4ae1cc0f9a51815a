// Python `re` routing patterns (re.match / re.fullmatch semantics) answered in time linear in the value.
//
// A pattern is parsed as Python 3.11's re parser does (same syntax, same error messages), compiled to a
// Thompson NFA, and run as a lazily built DFA (RE2's design): a DFA state is a set of NFA states; its
// transitions are computed on first use per character class and cached in typed arrays. Once the states
// a value visits are built, each code unit costs one table lookup. Building a state costs O(NFA size).
// The cache is bounded; when it overflows it is flushed, and a value that keeps building states is
// finished by NFA simulation. So a decision never costs more than O(value length x NFA size), and the
// NFA size is bounded (MAX_PATTERN_STATES): no backtracking, hence no exponential or polynomial blow-up.
// Constructs that need backtracking (backreferences, lookaround, conditionals, atomic groups,
// possessive quantifiers) are refused with a message.
//
// Differences from Python, all outside what HTTP header values (Latin-1 in practice) exercise: values are
// read as UTF-16 code units (a character above U+FFFF is two units for `.` and classes; such characters
// are refused inside classes and matched exactly, without case folding, outside); Unicode tables are the
// JavaScript engine's (newer than Python 3.11's Unicode 14: a few recently assigned characters differ);
// \N{name} escapes and the deprecated t flag are refused.

/** Compiled pattern: test() answers in time linear in value.length. */
export interface Matcher {
  test(value: string): boolean;
}

/** A compiled pattern, or why it could not be compiled (a Python-style message with the position). */
export type CompiledPattern =
  | { ok: true; matcher: Matcher }
  | { ok: false; error: string };

/** Most NFA states one pattern may compile to: bounds the cost of one DFA step and of the NFA fallback. */
export const MAX_PATTERN_STATES = 20_000;

/**
 * Compiles a pattern with Python `re.match` semantics: anchored at the start of the value, not at the
 * end (a match of any prefix counts). With `whole`, Python `re.fullmatch`: the entire value must match.
 * @param pattern the pattern as written in the config (Python `re` syntax for str patterns).
 * @returns the matcher, or the reason the pattern is invalid or unsupported.
 */
export function compilePattern(pattern: string, options: { whole?: boolean } = {}): CompiledPattern {
  const parsed = parsePattern(pattern);
  if (!parsed.ok) return parsed;
  const node: Node = options.whole ? { t: "seq", items: [parsed.node, { t: "at", kind: At.EndString }] } : parsed.node;
  const matcher = new Automaton([node], DEFAULT_CACHE_BYTES);
  return { ok: true, matcher };
}

/**
 * Whether a pattern compiles, without compiling it (a config's validation; the router compiles it once).
 * @returns why it cannot (as compilePattern says it), or undefined when it can.
 */
export function patternError(pattern: string): string | undefined {
  const parsed = parsePattern(pattern);
  return parsed.ok ? undefined : parsed.error;
}

/**
 * Several patterns read against the same value, in order (the routing rules on one header): one pass over
 * the value answers which is the FIRST pattern (lowest index) that matches (re.match semantics), or -1.
 * Patterns must have compiled (throws TypeError naming the index otherwise).
 */
export function compilePatternSet(patterns: readonly string[]): { firstMatch(value: string): number } {
  return compileAutomaton(patterns, {});
}

/** What an automaton has had to do so far; tests read it to see the bounded cache at work. */
export interface AutomatonStats {
  /** DFA states built (all flushes included). */
  statesBuilt: number;
  /** Times the DFA cache was full and thrown away. */
  flushes: number;
  /** Values (or rests of values) finished by NFA simulation because building DFA states did not pay. */
  nfaFallbacks: number;
}

/**
 * compilePatternSet with the engine's limits exposed (for tests of the bounded cache and the fallback).
 * @param options whole: re.fullmatch semantics for every pattern; cacheBytes: the DFA cache budget.
 */
export function compileAutomaton(
  patterns: readonly string[],
  options: { whole?: boolean; cacheBytes?: number },
): { firstMatch(value: string): number; test(value: string): boolean; readonly stats: AutomatonStats } {
  const nodes = patterns.map((p, i): Node => {
    const parsed = parsePattern(p);
    if (!parsed.ok) throw new TypeError(`pattern ${i} (${JSON.stringify(p)}): ${parsed.error}`);
    return options.whole ? { t: "seq", items: [parsed.node, { t: "at", kind: At.EndString }] } : parsed.node;
  });
  return new Automaton(nodes, options.cacheBytes ?? DEFAULT_CACHE_BYTES);
}

// ------------------------------------------------------------------------------------------- character sets
// A set of UTF-16 code units is a sorted flat list of inclusive ranges [lo0, hi0, lo1, hi1, ...], disjoint
// and not adjacent. Values are matched code unit by code unit (a surrogate pair is two units).

const MAX_UNIT = 0xffff;
type Ranges = number[];

function normalize(pairs: number[]): Ranges {
  const idx: number[] = [];
  for (let i = 0; i < pairs.length; i += 2) idx.push(i);
  idx.sort((x, y) => pairs[x]! - pairs[y]!);
  const out: Ranges = [];
  for (const i of idx) {
    const lo = pairs[i]!, hi = pairs[i + 1]!;
    if (out.length && lo <= out[out.length - 1]! + 1) out[out.length - 1] = Math.max(out[out.length - 1]!, hi);
    else out.push(lo, hi);
  }
  return out;
}

function complement(r: Ranges): Ranges {
  const out: Ranges = [];
  let next = 0;
  for (let i = 0; i < r.length; i += 2) {
    if (r[i]! > next) out.push(next, r[i]! - 1);
    next = r[i + 1]! + 1;
  }
  if (next <= MAX_UNIT) out.push(next, MAX_UNIT);
  return out;
}

function fromBitmap(bits: Uint8Array): Ranges {
  const out: Ranges = [];
  for (let c = 0; c <= MAX_UNIT; c++) {
    if (!bits[c]) continue;
    const lo = c;
    while (c < MAX_UNIT && bits[c + 1]) c++;
    out.push(lo, c);
  }
  return out;
}

function markRanges(bits: Uint8Array, r: Ranges): void {
  for (let i = 0; i < r.length; i += 2) bits.fill(1, r[i]!, r[i + 1]! + 1);
}

/** The BMP without surrogates, as two strings with the code unit their first character stands for. */
let bmp: [string, number][] | undefined;
function bmpStrings(): [string, number][] {
  const span = (lo: number, hi: number): [string, number] => {
    const units = new Uint16Array(hi - lo + 1);
    for (let i = 0; i < units.length; i++) units[i] = lo + i;
    return [new TextDecoder("utf-16le").decode(units), lo];
  };
  return (bmp ??= [span(0, 0xd7ff), span(0xe000, MAX_UNIT)]);
}

/** The code units (surrogates aside) that a global Unicode RegExp matches, as calls to each(unit, length). */
function scanBmp(re: RegExp, each: (unit: number, length: number) => void): void {
  for (const [text, first] of bmpStrings()) for (const m of text.matchAll(re)) each(first + m.index, m[0].length);
}

const rangesOf = (re: RegExp): Ranges => {
  const pairs: number[] = [];
  scanBmp(re, (u, n) => pairs.push(u, u + n - 1));
  return normalize(pairs);
};

// Unicode tables, built on first use. Python 3.11 uses Unicode 14; the JavaScript engine's tables are
// newer, so characters assigned since then may differ (16 code points in the BMP for \w, 8 for case).
let uniWord: Ranges | undefined;
let uniDigit: Ranges | undefined;
/** Python str.isspace(), which \s follows (it differs from JavaScript's \s). */
const UNI_SPACE: Ranges = [0x09, 0x0d, 0x1c, 0x20, 0x85, 0x85, 0xa0, 0xa0, 0x1680, 0x1680, 0x2000, 0x200a, 0x2028, 0x2029, 0x202f, 0x202f, 0x205f, 0x205f, 0x3000, 0x3000];
const ASCII_DIGIT: Ranges = [0x30, 0x39];
const ASCII_SPACE: Ranges = [0x09, 0x0d, 0x20, 0x20];
const ASCII_WORD: Ranges = [0x30, 0x39, 0x41, 0x5a, 0x5f, 0x5f, 0x61, 0x7a];
/** Python's \w for str patterns: str.isalnum() or "_" (letters and numbers, not combining marks). */
const wordSet = (ascii: boolean): Ranges => (ascii ? ASCII_WORD : (uniWord ??= rangesOf(/[\p{L}\p{N}_]+/gu)));
const digitSet = (ascii: boolean): Ranges => (ascii ? ASCII_DIGIT : (uniDigit ??= rangesOf(/\p{Nd}+/gu)));
const spaceSet = (ascii: boolean): Ranges => (ascii ? ASCII_SPACE : UNI_SPACE);

// Case folding as Python's sre does for str patterns: simple lower case (the first unit of the full
// mapping, as CPython's _PyUnicode_ToLowercase gives), plus sre's table of extra equivalences.
let lowerTable: Uint16Array | undefined;
let casedTable: Uint8Array | undefined;
let lowerInverse: Map<number, number[]> | undefined;

const firstUnit = (s: string, c: number) => {
  const x = s.codePointAt(0)!;
  return x > MAX_UNIT ? c : x;
};

function lowers(): Uint16Array {
  if (lowerTable) return lowerTable;
  const t = new Uint16Array(MAX_UNIT + 1);
  for (let c = 0; c <= MAX_UNIT; c++) t[c] = c;
  const cased = new Uint8Array(MAX_UNIT + 1);
  const inverse = new Map<number, number[]>();
  // Only characters that change when lower- or upper-cased are cased; the rest map to themselves.
  scanBmp(/[\p{Changes_When_Lowercased}\p{Changes_When_Uppercased}]/gu, (c) => {
    const s = String.fromCharCode(c);
    const lo = firstUnit(s.toLowerCase(), c);
    t[c] = lo;
    if (lo !== c || firstUnit(s.toUpperCase(), c) !== c) cased[c] = 1;
    if (lo !== c) {
      const list = inverse.get(lo);
      if (list) list.push(c);
      else inverse.set(lo, [c]);
    }
  });
  casedTable = cased;
  lowerInverse = inverse;
  return (lowerTable = t);
}

/** sre's _EXTRA_CASES: characters that are case-insensitively equal although their lower cases differ. */
const EXTRA_CASES: number[][] = [
  [0x69, 0x131], [0x73, 0x17f], [0xb5, 0x3bc], [0x345, 0x3b9, 0x1fbe], [0x390, 0x1fd3], [0x3b0, 0x1fe3],
  [0x3b2, 0x3d0], [0x3b5, 0x3f5], [0x3b8, 0x3d1], [0x3ba, 0x3f0], [0x3c0, 0x3d6], [0x3c1, 0x3f1], [0x3c2, 0x3c3],
  [0x3c6, 0x3d5], [0x432, 0x1c80], [0x434, 0x1c81], [0x43e, 0x1c82], [0x441, 0x1c83], [0x442, 0x1c84, 0x1c85],
  [0x44a, 0x1c86], [0x463, 0x1c87], [0x1c88, 0xa64b], [0x1e61, 0x1e9b], [0xfb05, 0xfb06],
];
const FIXES = new Map<number, number[]>();
for (const group of EXTRA_CASES) for (const c of group) FIXES.set(c, group.filter((x) => x !== c));

const asciiLower = (c: number) => (c >= 0x41 && c <= 0x5a ? c + 32 : c);
const isAsciiCased = (c: number) => (c | 32) >= 0x61 && (c | 32) <= 0x7a;
const isCased = (c: number, ascii: boolean) => (ascii ? isAsciiCased(c) : (lowers(), casedTable![c]! === 1));

/** Units u with lower(u) in targets (the units a case-insensitive literal matches). */
function unitsLowering(targets: number[]): Ranges {
  const t = lowers();
  const pairs: number[] = [];
  for (const x of targets) {
    if (t[x] === x) pairs.push(x, x);
    for (const u of lowerInverse!.get(x) ?? []) pairs.push(u, u);
  }
  return normalize(pairs);
}

// ------------------------------------------------------------------------------------------------- syntax
const enum At {
  Begin, // \A, or ^ without m: start of the value
  BeginLine, // ^ with m
  End, // $ without m: end of the value, or before a final \n
  EndLine, // $ with m: end of the value, or before any \n
  EndString, // \Z
  Boundary, // \b (Unicode word characters)
  NonBoundary, // \B
  BoundaryAscii, // \b with the a flag
  NonBoundaryAscii,
}

type Node =
  | { t: "set"; r: Ranges } // one code unit in r
  | { t: "seq"; items: Node[] }
  | { t: "alt"; items: Node[] }
  | { t: "rep"; min: number; max: number; item: Node } // max: Infinity when unbounded
  | { t: "at"; kind: At }
  | { t: "group"; item: Node };

const F_I = 1, F_M = 2, F_S = 4, F_X = 8, F_A = 16, F_U = 32, F_T = 64, F_L = 128;
const FLAG_BITS: Record<string, number> = { i: F_I, L: F_L, m: F_M, s: F_S, x: F_X, a: F_A, t: F_T, u: F_U };
const TYPE_FLAGS = F_A | F_L | F_U;
const MAXREPEAT = 4294967295;
/** Deeper nesting is refused (Python 3.11 fails with RecursionError at about 500). */
const MAX_NESTING = 400;
const SPECIAL = new Set(".\\[{()*+?^$|");
const REPEAT_CHARS = new Set("*+?{");
const DIGITS = new Set("0123456789");
const OCTDIGITS = new Set("01234567");
const HEXDIGITS = new Set("0123456789abcdefABCDEF");
const WHITESPACE = new Set(" \t\n\r\v\f");
const isAsciiLetter = (c: string) => /^[A-Za-z]$/.test(c);
const SIMPLE_ESCAPES: Record<string, number> = { a: 7, b: 8, f: 12, n: 10, r: 13, t: 9, v: 11, "\\": 92 };

class PatternError extends Error {
  constructor(readonly msg: string, readonly pos?: number) {
    super(msg);
  }
}

/** Why a pattern Python accepts is refused here: every one of these needs backtracking. */
const WHY = "memproxy matches patterns in linear time (a stranger chooses the header values), and this construct needs backtracking";

/** Python's repr() of a str, for names in error messages. */
function pyRepr(s: string): string {
  const quote = s.includes("'") && !s.includes('"') ? '"' : "'";
  let out = quote;
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (ch === "\\" || ch === quote) out += "\\" + ch;
    else if (ch === "\n") out += "\\n";
    else if (ch === "\r") out += "\\r";
    else if (ch === "\t") out += "\\t";
    else if (c < 0x20 || (c >= 0x7f && c < 0xa0)) out += "\\x" + c.toString(16).padStart(2, "0");
    else out += ch;
  }
  return out + quote;
}

const cpLen = (tok: string) => (tok[0] === "\\" ? 2 : 1);

/** Python's re._parser.Tokenizer over code points: a token is one character or a backslash and one. */
class Source {
  readonly cps: string[];
  index = 0;
  next: string | null = null;
  private nextLen = 0;
  constructor(pattern: string) {
    this.cps = Array.from(pattern);
    this.advance();
  }
  private advance(): void {
    const i = this.index;
    if (i >= this.cps.length) {
      this.next = null;
      this.nextLen = 0;
      return;
    }
    const ch = this.cps[i]!;
    if (ch === "\\") {
      if (i + 1 >= this.cps.length) throw new PatternError("bad escape (end of pattern)", this.cps.length - 1);
      this.next = ch + this.cps[i + 1]!;
      this.nextLen = 2;
      this.index = i + 2;
    } else {
      this.next = ch;
      this.nextLen = 1;
      this.index = i + 1;
    }
  }
  match(ch: string): boolean {
    if (this.next !== ch) return false;
    this.advance();
    return true;
  }
  get(): string | null {
    const tok = this.next;
    this.advance();
    return tok;
  }
  getwhile(n: number, charset: Set<string>): string {
    let out = "";
    for (let k = 0; k < n; k++) {
      const c = this.next;
      if (c === null || !charset.has(c)) break;
      out += c;
      this.advance();
    }
    return out;
  }
  getuntil(terminator: string, name: string): string {
    let out = "";
    let len = 0;
    for (;;) {
      const c = this.next;
      this.advance();
      if (c === null) {
        if (!out) throw this.error("missing " + name);
        throw this.error(`missing ${terminator}, unterminated name`, len);
      }
      if (c === terminator) {
        if (!out) throw this.error("missing " + name, 1);
        return out;
      }
      out += c;
      len += cpLen(c);
    }
  }
  tell(): number {
    return this.index - this.nextLen;
  }
  seek(index: number): void {
    this.index = index;
    this.advance();
  }
  error(msg: string, offset = 0): PatternError {
    return new PatternError(msg, this.tell() - offset);
  }
  checkgroupname(name: string, offset: number): void {
    if (!/^[\p{XID_Start}_]\p{XID_Continue}*$/u.test(name)) {
      throw this.error(`bad character in group name ${pyRepr(name)}`, Array.from(name).length + offset);
    }
  }
}

/** Parser state shared by a whole pattern (Python's re._parser.State). */
class ParseState {
  flags = 0;
  groups = 1;
  readonly names = new Map<string, number>();
  readonly closed: boolean[] = [true];
  lookbehindgroups: number | null = null;
  readonly grouprefpos = new Map<number, number>();
  /** The first construct Python accepts but this engine refuses; reported once the pattern parsed. */
  unsupported: PatternError | null = null;

  refuse(what: string, pos: number, why = WHY): void {
    this.unsupported ??= new PatternError(`${what} at position ${pos} is not supported: ${why}`);
  }
  opengroup(name: string | null): number {
    const gid = this.groups++;
    this.closed.push(false);
    if (name !== null) {
      const old = this.names.get(name);
      if (old !== undefined) throw new PatternError(`redefinition of group name ${pyRepr(name)} as group ${gid}; was group ${old}`);
      this.names.set(name, gid);
    }
    return gid;
  }
  checkgroup(gid: number): boolean {
    return gid < this.groups && this.closed[gid] === true;
  }
  checklookbehindgroup(gid: number, src: Source): void {
    if (this.lookbehindgroups === null) return;
    if (!this.checkgroup(gid)) throw src.error("cannot refer to an open group");
    if (gid >= this.lookbehindgroups) throw src.error("cannot refer to group defined in the same lookbehind subpattern");
  }
}

/** Parses a pattern as Python 3.11's re does; refuses what needs backtracking or a character above U+FFFF in a class. */
function parsePattern(pattern: string): { ok: true; node: Node } | { ok: false; error: string } {
  const src = (() => {
    try {
      return new Source(pattern);
    } catch (err) {
      return err as PatternError;
    }
  })();
  if (src instanceof PatternError) return { ok: false, error: formatError(src, pattern) };
  const st = new ParseState();
  try {
    const node = parseSub(src, st, false, 0, 0);
    if ((st.flags & F_A) && (st.flags & F_U)) throw new PatternError("ASCII and UNICODE flags are incompatible");
    if (src.next !== null) throw src.error("unbalanced parenthesis");
    for (const [g, pos] of st.grouprefpos) {
      if (g >= st.groups) throw new PatternError(`invalid group reference ${g}`, pos);
    }
    if (st.unsupported) throw st.unsupported;
    const size = nfaSize(node);
    if (size > MAX_PATTERN_STATES) {
      throw new PatternError(
        `pattern too large: it compiles to more than ${MAX_PATTERN_STATES} states (counted repetition copies what it repeats, ` +
          "e.g. (a{1000}){1000}); simplify it or use * or + instead of large counts",
      );
    }
    return { ok: true, node };
  } catch (err) {
    if (err instanceof PatternError) return { ok: false, error: formatError(err, pattern) };
    throw err;
  }
}

/** Python's re.error text: "msg at position N", with line and column when the pattern has several lines. */
function formatError(err: PatternError, pattern: string): string {
  if (err.pos === undefined) return err.msg;
  let msg = `${err.msg} at position ${err.pos}`;
  const cps = Array.from(pattern);
  if (cps.includes("\n")) {
    const before = cps.slice(0, err.pos);
    const line = before.filter((c) => c === "\n").length + 1;
    const col = err.pos - before.lastIndexOf("\n");
    msg += ` (line ${line}, column ${col})`;
  }
  return msg;
}

function parseSub(src: Source, st: ParseState, verbose: boolean, nested: number, flags: number): Node {
  if (nested > 2 * MAX_NESTING) {
    throw new PatternError(`groups nested more than ${MAX_NESTING} deep are not supported: simplify the pattern`);
  }
  const items: Node[] = [];
  for (;;) {
    items.push(parseSeq(src, st, verbose, nested + 1, nested === 0 && items.length === 0, flags));
    if (!src.match("|")) break;
    if (nested === 0) {
      verbose = (st.flags & F_X) !== 0;
      flags = st.flags;
    }
  }
  if (items.length === 1) return items[0]!;
  // a|b|[cd] is one class, as Python's parser makes it: one NFA state instead of a branch per character
  if (items.every((it) => it.t === "set")) return { t: "set", r: normalize(items.flatMap((it) => (it as { r: Ranges }).r)) };
  return { t: "alt", items };
}

function combineFlags(flags: number, add: number, del: number): number {
  if (add & TYPE_FLAGS) flags &= ~TYPE_FLAGS;
  return (flags | add) & ~del;
}

function parseSeq(src: Source, st: ParseState, verbose: boolean, nested: number, first: boolean, flags: number): Node {
  const items: Node[] = [];
  for (;;) {
    const tok = src.next;
    if (tok === null || tok === "|" || tok === ")") break;
    src.get();
    if (verbose) {
      if (WHITESPACE.has(tok)) continue;
      if (tok === "#") {
        for (;;) {
          const c = src.get();
          if (c === null || c === "\n") break;
        }
        continue;
      }
    }
    if (tok[0] === "\\") {
      items.push(parseEscape(src, tok, st, flags));
    } else if (!SPECIAL.has(tok)) {
      items.push(literalNode(tok.codePointAt(0)!, flags));
    } else if (tok === "[") {
      items.push(parseClass(src, st, flags));
    } else if (REPEAT_CHARS.has(tok)) {
      const here = src.tell();
      let min = 0;
      let max = Infinity;
      if (tok === "?") max = 1;
      else if (tok === "+") min = 1;
      else if (tok === "{") {
        if (src.next === "}") {
          items.push(literalNode(0x7b, flags));
          continue;
        }
        let lo = "";
        let hi = "";
        while (src.next !== null && DIGITS.has(src.next)) lo += src.get();
        if (src.match(",")) {
          while (src.next !== null && DIGITS.has(src.next)) hi += src.get();
        } else hi = lo;
        if (!src.match("}")) {
          items.push(literalNode(0x7b, flags));
          src.seek(here);
          continue;
        }
        if (lo) {
          min = Number(lo);
          if (min >= MAXREPEAT) throw new PatternError("the repetition number is too large");
        }
        if (hi) {
          max = Number(hi);
          if (max >= MAXREPEAT) throw new PatternError("the repetition number is too large");
          if (max < min) throw src.error("min repeat greater than max repeat", src.tell() - here);
        }
      }
      const last = items[items.length - 1];
      if (!last || last.t === "at") throw src.error("nothing to repeat", src.tell() - here + 1);
      if (last.t === "rep") throw src.error("multiple repeat", src.tell() - here + 1);
      const quantifierAt = here - 1;
      if (!src.match("?") && src.match("+")) {
        st.refuse("possessive quantifier " + (tok === "{" ? "{...}" : tok) + "+", quantifierAt);
      }
      items[items.length - 1] = { t: "rep", min, max, item: last };
    } else if (tok === ".") {
      items.push({ t: "set", r: flags & F_S ? [0, MAX_UNIT] : [0, 9, 11, MAX_UNIT] });
    } else if (tok === "(") {
      const start = src.tell() - 1;
      let capture = true;
      let name: string | null = null;
      let add = 0;
      let del = 0;
      if (src.match("?")) {
        const ch = src.get();
        if (ch === null) throw src.error("unexpected end of pattern");
        if (ch === "P") {
          if (src.match("<")) {
            name = src.getuntil(">", "group name");
            src.checkgroupname(name, 1);
          } else if (src.match("=")) {
            const ref = src.getuntil(")", "group name");
            src.checkgroupname(ref, 1);
            const gid = st.names.get(ref);
            const refLen = Array.from(ref).length + 1;
            if (gid === undefined) throw src.error(`unknown group name ${pyRepr(ref)}`, refLen);
            if (!st.checkgroup(gid)) throw src.error("cannot refer to an open group", refLen);
            st.checklookbehindgroup(gid, src);
            st.refuse(`backreference (?P=${ref})`, start);
            items.push({ t: "group", item: { t: "seq", items: [] } });
            continue;
          } else {
            const c2 = src.get();
            if (c2 === null) throw src.error("unexpected end of pattern");
            throw src.error("unknown extension ?P" + c2, cpLen(c2) + 2);
          }
        } else if (ch === ":") {
          capture = false;
        } else if (ch === "#") {
          for (;;) {
            if (src.next === null) throw src.error("missing ), unterminated comment", src.tell() - start);
            if (src.get() === ")") break;
          }
          continue;
        } else if (ch === "=" || ch === "!" || ch === "<") {
          let kind = ch === "=" ? "lookahead (?=" : "negative lookahead (?!";
          let saved: number | null = null;
          let behind = false;
          if (ch === "<") {
            const c2 = src.get();
            if (c2 === null) throw src.error("unexpected end of pattern");
            if (c2 !== "=" && c2 !== "!") throw src.error("unknown extension ?<" + c2, cpLen(c2) + 2);
            kind = c2 === "=" ? "lookbehind (?<=" : "negative lookbehind (?<!";
            behind = true;
            saved = st.lookbehindgroups;
            if (saved === null) st.lookbehindgroups = st.groups;
          }
          parseSub(src, st, verbose, nested + 1, flags);
          if (behind && saved === null) st.lookbehindgroups = null;
          if (!src.match(")")) throw src.error("missing ), unterminated subpattern", src.tell() - start);
          st.refuse(kind, start);
          items.push({ t: "group", item: { t: "seq", items: [] } });
          continue;
        } else if (ch === "(") {
          parseConditional(src, st, verbose, nested, flags, start);
          items.push({ t: "group", item: { t: "seq", items: [] } });
          continue;
        } else if (ch === ">") {
          capture = false;
          st.refuse("atomic group (?>", start);
        } else if (ch in FLAG_BITS || ch === "-") {
          const parsed = parseFlags(src, st, ch);
          if (parsed === null) {
            if (!first || items.length) {
              throw src.error("global flags not at the start of the expression", src.tell() - start);
            }
            verbose = (st.flags & F_X) !== 0;
            flags = st.flags;
            if (st.flags & F_T) st.refuse("the t (TEMPLATE) flag", start + 2, "it is deprecated in Python and not implemented here");
            continue;
          }
          [add, del] = parsed;
          capture = false;
        } else {
          throw src.error("unknown extension ?" + ch, cpLen(ch) + 1);
        }
      }
      let gid: number | null = null;
      if (capture) {
        try {
          gid = st.opengroup(name);
        } catch (err) {
          throw src.error((err as PatternError).msg, Array.from(name ?? "").length + 1);
        }
      }
      const subVerbose = (verbose || (add & F_X) !== 0) && !(del & F_X);
      const item = parseSub(src, st, subVerbose, nested + 1, combineFlags(flags, add, del));
      if (!src.match(")")) throw src.error("missing ), unterminated subpattern", src.tell() - start);
      if (gid !== null) st.closed[gid] = true;
      items.push({ t: "group", item });
    } else if (tok === "^") {
      items.push({ t: "at", kind: flags & F_M ? At.BeginLine : At.Begin });
    } else if (tok === "$") {
      items.push({ t: "at", kind: flags & F_M ? At.EndLine : At.End });
    }
  }
  return items.length === 1 ? items[0]! : { t: "seq", items };
}

function parseConditional(src: Source, st: ParseState, verbose: boolean, nested: number, flags: number, start: number): void {
  const condname = src.getuntil(")", "group name");
  const nameLen = Array.from(condname).length + 1;
  let condgroup: number;
  if (/^[\p{XID_Start}_]\p{XID_Continue}*$/u.test(condname)) {
    const gid = st.names.get(condname);
    if (gid === undefined) throw src.error(`unknown group name ${pyRepr(condname)}`, nameLen);
    condgroup = gid;
  } else {
    if (!/^\s*\+?[0-9]+(_[0-9]+)*\s*$/.test(condname)) {
      throw src.error(`bad character in group name ${pyRepr(condname)}`, nameLen);
    }
    condgroup = Number(condname.replaceAll("_", ""));
    if (!condgroup) throw src.error("bad group number", nameLen);
    if (condgroup >= 0x3fffffff) throw src.error(`invalid group reference ${condgroup}`, nameLen);
    if (!st.grouprefpos.has(condgroup)) st.grouprefpos.set(condgroup, src.tell() - nameLen);
  }
  st.checklookbehindgroup(condgroup, src);
  parseSeq(src, st, verbose, nested + 1, false, flags);
  if (src.match("|")) {
    parseSeq(src, st, verbose, nested + 1, false, flags);
    if (src.next === "|") throw src.error("conditional backref with more than two branches");
  }
  if (!src.match(")")) throw src.error("missing ), unterminated subpattern", src.tell() - start);
  st.refuse("conditional group (?(", start);
}

/** Python's _parse_flags: null for global flags "(?i)", else the flags a scoped group turns on and off. */
function parseFlags(src: Source, st: ParseState, first: string): [number, number] | null {
  let ch: string | null = first;
  let add = 0;
  let del = 0;
  if (ch !== "-") {
    for (;;) {
      const flag: number = FLAG_BITS[ch!]!;
      if (ch === "L") throw src.error("bad inline flags: cannot use 'L' flag with a str pattern");
      add |= flag;
      if (flag & TYPE_FLAGS && (add & TYPE_FLAGS) !== flag) {
        throw src.error("bad inline flags: flags 'a', 'u' and 'L' are incompatible");
      }
      ch = src.get();
      if (ch === null) throw src.error("missing -, : or )");
      if (ch === ")" || ch === "-" || ch === ":") break;
      if (!(ch in FLAG_BITS)) throw src.error(/^\p{L}$/u.test(ch) ? "unknown flag" : "missing -, : or )", cpLen(ch));
    }
  }
  if (ch === ")") {
    st.flags |= add;
    return null;
  }
  if (add & F_T) throw src.error("bad inline flags: cannot turn on global flag", 1);
  if (ch === "-") {
    ch = src.get();
    if (ch === null) throw src.error("missing flag");
    if (!(ch in FLAG_BITS)) throw src.error(/^\p{L}$/u.test(ch) ? "unknown flag" : "missing flag", cpLen(ch));
    for (;;) {
      const flag: number = FLAG_BITS[ch!]!;
      if (flag & TYPE_FLAGS) throw src.error("bad inline flags: cannot turn off flags 'a', 'u' and 'L'");
      del |= flag;
      ch = src.get();
      if (ch === null) throw src.error("missing :");
      if (ch === ":") break;
      if (!(ch in FLAG_BITS)) throw src.error(/^\p{L}$/u.test(ch) ? "unknown flag" : "missing :", cpLen(ch));
    }
  }
  if (del & F_T) throw src.error("bad inline flags: cannot turn off global flag", 1);
  if (add & del) throw src.error("bad inline flags: flag turned on and off", 1);
  return [add, del];
}

/** An item of a character class, as Python's parser lists them. */
type ClassItem = { op: "lit"; c: number } | { op: "range"; lo: number; hi: number } | { op: "cat"; cat: string };

/** The escapes that mean a category (\d \D \s \S \w \W), inside or outside a class. */
const CATEGORY_ESCAPES = new Set(["\\d", "\\D", "\\s", "\\S", "\\w", "\\W"]);

/** Python's escapes that are one character: \xhh, \uhhhh, \Uhhhhhhhh, \N{...}, simple ones, non-letters. */
function characterEscape(src: Source, escape: string, st: ParseState, inClass: boolean): number | null {
  const c = escape[1]!;
  if (c in SIMPLE_ESCAPES && !(c === "b" && !inClass)) return SIMPLE_ESCAPES[c]!;
  const start = src.tell() - 2;
  const hex = (n: number) => {
    const digits = src.getwhile(n, HEXDIGITS);
    if (digits.length !== n) throw src.error(`incomplete escape ${escape}${digits}`, 2 + digits.length);
    return digits;
  };
  if (c === "x") return parseInt(hex(2), 16);
  if (c === "u") return parseInt(hex(4), 16);
  if (c === "U") {
    const digits = hex(8);
    const v = parseInt(digits, 16);
    if (v > 0x10ffff) throw src.error(`bad escape ${escape}${digits}`, 10);
    return v;
  }
  if (c === "N") {
    if (!src.match("{")) throw src.error("missing {");
    src.getuntil("}", "character name");
    st.refuse("named character escape \\N{...}", start, "the Unicode name table is not built in; write the character or \\uXXXX instead");
    return 0xfffd;
  }
  return null;
}

function parseEscape(src: Source, escape: string, st: ParseState, flags: number): Node {
  const c = escape[1]!;
  const ascii = (flags & F_A) !== 0;
  if (escape === "\\A") return { t: "at", kind: At.Begin };
  if (escape === "\\Z") return { t: "at", kind: At.EndString };
  if (escape === "\\b") return { t: "at", kind: ascii ? At.BoundaryAscii : At.Boundary };
  if (escape === "\\B") return { t: "at", kind: ascii ? At.NonBoundaryAscii : At.NonBoundary };
  if (CATEGORY_ESCAPES.has(escape)) return { t: "set", r: classSet([{ op: "cat", cat: c }], false, flags) };
  const single = characterEscape(src, escape, st, false);
  if (single !== null) return literalNode(single, flags);
  if (c === "0") return literalNode(parseInt(src.getwhile(2, OCTDIGITS) || "0", 8), flags);
  if (DIGITS.has(c)) {
    const start = src.tell() - 2;
    let digits = escape;
    if (src.next !== null && DIGITS.has(src.next)) {
      digits += src.get();
      if (OCTDIGITS.has(digits[1]!) && OCTDIGITS.has(digits[2]!) && src.next !== null && OCTDIGITS.has(src.next)) {
        digits += src.get();
        const v = parseInt(digits.slice(1), 8);
        if (v > 0o377) throw src.error(`octal escape value ${digits} outside of range 0-0o377`, digits.length);
        return literalNode(v, flags);
      }
    }
    const group = Number(digits.slice(1));
    if (group < st.groups) {
      if (!st.checkgroup(group)) throw src.error("cannot refer to an open group", digits.length);
      st.checklookbehindgroup(group, src);
      st.refuse(`backreference ${digits}`, start);
      return { t: "group", item: { t: "seq", items: [] } };
    }
    throw src.error(`invalid group reference ${group}`, digits.length - 1);
  }
  if (isAsciiLetter(c)) throw src.error(`bad escape ${escape}`, 2);
  return literalNode(escape.codePointAt(1)!, flags);
}

/** Python's _class_escape: an escape inside [...]. */
function classEscape(src: Source, escape: string, st: ParseState): ClassItem {
  const c = escape[1]!;
  if (CATEGORY_ESCAPES.has(escape)) return { op: "cat", cat: c };
  const single = characterEscape(src, escape, st, true);
  if (single !== null) return { op: "lit", c: single };
  if (OCTDIGITS.has(c)) {
    const digits = escape + src.getwhile(2, OCTDIGITS);
    const v = parseInt(digits.slice(1), 8);
    if (v > 0o377) throw src.error(`octal escape value ${digits} outside of range 0-0o377`, digits.length);
    return { op: "lit", c: v };
  }
  if (DIGITS.has(c) || isAsciiLetter(c)) throw src.error(`bad escape ${escape}`, 2);
  return { op: "lit", c: escape.codePointAt(1)! };
}

function parseClass(src: Source, st: ParseState, flags: number): Node {
  const here = src.tell() - 1;
  const items: ClassItem[] = [];
  const negate = src.match("^");
  for (;;) {
    const tok = src.get();
    if (tok === null) throw src.error("unterminated character set", src.tell() - here);
    if (tok === "]" && items.length) break;
    const code1: ClassItem = tok[0] === "\\" ? classEscape(src, tok, st) : { op: "lit", c: tok.codePointAt(0)! };
    if (src.match("-")) {
      const that = src.get();
      if (that === null) throw src.error("unterminated character set", src.tell() - here);
      if (that === "]") {
        items.push(code1, { op: "lit", c: 0x2d });
        break;
      }
      const code2: ClassItem = that[0] === "\\" ? classEscape(src, that, st) : { op: "lit", c: that.codePointAt(0)! };
      if (code1.op !== "lit" || code2.op !== "lit" || code2.c < code1.c) {
        throw src.error(`bad character range ${tok}-${that}`, cpLen(tok) + 1 + cpLen(that));
      }
      items.push({ op: "range", lo: code1.c, hi: code2.c });
    } else {
      items.push(code1);
    }
  }
  const seen = new Set<string>();
  const unique = items.filter((it) => {
    const key = it.op === "lit" ? `l${it.c}` : it.op === "range" ? `r${it.lo}-${it.hi}` : `c${it.cat}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  for (const it of unique) {
    if ((it.op === "lit" && it.c > MAX_UNIT) || (it.op === "range" && it.hi > MAX_UNIT)) {
      st.refuse(
        "a character above U+FFFF in a character class",
        here,
        "values are matched as UTF-16 code units; write such a character outside a class",
      );
      return { t: "set", r: [] };
    }
  }
  if (unique.length === 1 && unique[0]!.op === "lit") return { t: "set", r: literalSet(unique[0]!.c, negate, flags) };
  return { t: "set", r: classSet(unique, negate, flags) };
}

function categorySet(cat: string, ascii: boolean): Ranges {
  const lower = cat.toLowerCase();
  const base = lower === "d" ? digitSet(ascii) : lower === "s" ? spaceSet(ascii) : wordSet(ascii);
  return cat === lower ? base : complement(base);
}

/** The units one literal matches (sre's LITERAL / NOT_LITERAL with its IGNORECASE variants). */
function literalSet(c: number, negate: boolean, flags: number): Ranges {
  const ascii = (flags & F_A) !== 0;
  let r: Ranges;
  if (!(flags & F_I) || !isCased(c, ascii)) r = [c, c];
  else if (ascii) r = normalize([asciiLower(c), asciiLower(c), asciiLower(c) - 32, asciiLower(c) - 32]);
  else {
    const lo = lowers()[c]!;
    r = unitsLowering([lo, ...(FIXES.get(lo) ?? [])]);
  }
  return negate ? complement(r) : r;
}

/** The units a class matches (sre's IN / IN_IGNORE / IN_UNI_IGNORE: with i, the lower case is looked up). */
function classSet(items: ClassItem[], negate: boolean, flags: number): Ranges {
  const ascii = (flags & F_A) !== 0;
  let hascased = false;
  if (flags & F_I) {
    for (const it of items) {
      if (it.op === "lit") hascased ||= isCased(it.c, ascii);
      else if (it.op === "range") for (let c = it.lo; c <= it.hi && !hascased; c++) hascased = isCased(c, ascii);
    }
  }
  if (!hascased) {
    const pairs: number[] = [];
    for (const it of items) {
      if (it.op === "lit") pairs.push(it.c, it.c);
      else if (it.op === "range") pairs.push(it.lo, it.hi);
      else pairs.push(...categorySet(it.cat, ascii));
    }
    const r = normalize(pairs);
    return negate ? complement(r) : r;
  }
  const lower = ascii ? null : lowers();
  const fold = (c: number) => (lower ? lower[c]! : asciiLower(c));
  const units = items.reduce((n, it) => n + (it.op === "lit" ? 1 : it.op === "range" ? it.hi - it.lo + 1 : Infinity), 0);
  if (units <= 4096) {
    // Few units and no category: the units whose lower case is one of theirs (or an equivalent).
    const targets = new Set<number>();
    for (const it of items) {
      const [lo, hi] = it.op === "lit" ? [it.c, it.c] : it.op === "range" ? [it.lo, it.hi] : [0, -1];
      for (let c = lo; c <= hi; c++) {
        const f = fold(c);
        targets.add(f);
        if (lower) for (const k of FIXES.get(f) ?? []) targets.add(k);
      }
    }
    const pairs: number[] = [];
    if (lower) pairs.push(...unitsLowering([...targets]));
    else for (const f of targets) pairs.push(f, f, ...(f >= 0x61 && f <= 0x7a ? [f - 32, f - 32] : []));
    const r = normalize(pairs);
    return negate ? complement(r) : r;
  }
  const folded = new Uint8Array(MAX_UNIT + 1);
  const mark = (c: number) => {
    const lo = fold(c);
    folded[lo] = 1;
    if (lower) for (const k of FIXES.get(lo) ?? []) folded[k] = 1;
  };
  for (const it of items) {
    if (it.op === "lit") mark(it.c);
    else if (it.op === "range") for (let c = it.lo; c <= it.hi; c++) mark(c);
    else markRanges(folded, categorySet(it.cat, ascii));
  }
  const bits = new Uint8Array(MAX_UNIT + 1);
  for (let c = 0; c <= MAX_UNIT; c++) bits[c] = folded[fold(c)]! ^ (negate ? 1 : 0);
  return fromBitmap(bits);
}

/** A literal outside a class: one unit, or a surrogate pair for a character above U+FFFF (matched exactly). */
function literalNode(c: number, flags: number): Node {
  if (c <= MAX_UNIT) return { t: "set", r: literalSet(c, false, flags) };
  const hi = 0xd800 + ((c - 0x10000) >> 10);
  const lo = 0xdc00 + ((c - 0x10000) & 0x3ff);
  return { t: "group", item: { t: "seq", items: [{ t: "set", r: [hi, hi] }, { t: "set", r: [lo, lo] }] } };
}

// --------------------------------------------------------------------------------------------------- NFA
const OP_CHAR = 0, OP_SPLIT = 1, OP_ASSERT = 2, OP_MATCH = 3;

/** How many NFA instructions a node compiles to (saturating just above the limit). */
function nfaSize(node: Node): number {
  const cap = MAX_PATTERN_STATES + 1;
  switch (node.t) {
    case "set":
    case "at":
      return 1;
    case "group":
      return nfaSize(node.item);
    case "seq":
      return Math.min(cap, node.items.reduce((n, it) => n + nfaSize(it), 0));
    case "alt":
      return Math.min(cap, node.items.reduce((n, it) => n + nfaSize(it), 0) + node.items.length - 1);
    case "rep": {
      const s = nfaSize(node.item);
      if (node.max === Infinity) return Math.min(cap, node.min === 0 ? s + 1 : node.min * s + 1);
      return Math.min(cap, node.min * s + (node.max - node.min) * (s + 1));
    }
  }
}

/** A Thompson NFA for several patterns, in flat arrays; built back to front (each node knows what follows). */
class NfaBuilder {
  readonly op: number[] = [];
  readonly x: number[] = []; // CHAR, ASSERT: next; SPLIT: first branch; MATCH: pattern index
  readonly y: number[] = []; // CHAR: set id; ASSERT: kind; SPLIT: second branch
  readonly pattern: number[] = [];
  readonly sets: Ranges[] = [];
  private readonly setIds = new Map<string, number>();
  readonly kinds = new Set<At>();
  current = 0;

  private add(op: number, x: number, y: number): number {
    this.op.push(op);
    this.x.push(x);
    this.y.push(y);
    this.pattern.push(this.current);
    return this.op.length - 1;
  }
  setId(r: Ranges): number {
    const key = r.join(",");
    let id = this.setIds.get(key);
    if (id === undefined) {
      id = this.sets.length;
      this.sets.push(r);
      this.setIds.set(key, id);
    }
    return id;
  }
  matchOf(p: number): number {
    this.current = p;
    return this.add(OP_MATCH, p, 0);
  }
  /** Emits node followed by next; returns the node's entry. */
  emit(node: Node, next: number): number {
    switch (node.t) {
      case "set":
        return this.add(OP_CHAR, next, this.setId(node.r));
      case "at":
        this.kinds.add(node.kind);
        return this.add(OP_ASSERT, next, node.kind);
      case "group":
        return this.emit(node.item, next);
      case "seq":
        for (let i = node.items.length - 1; i >= 0; i--) next = this.emit(node.items[i]!, next);
        return next;
      case "alt": {
        const entries = node.items.map((it) => this.emit(it, next));
        let entry = entries[entries.length - 1]!;
        for (let i = entries.length - 2; i >= 0; i--) entry = this.add(OP_SPLIT, entries[i]!, entry);
        return entry;
      }
      case "rep": {
        const { min, max, item } = node;
        let entry = next;
        if (max === Infinity) {
          const loop = this.add(OP_SPLIT, -1, next);
          const body = this.emit(item, loop);
          this.x[loop] = body;
          entry = min === 0 ? loop : body;
          for (let i = 1; i < min; i++) entry = this.emit(item, entry);
          return entry;
        }
        for (let i = min; i < max; i++) entry = this.add(OP_SPLIT, this.emit(item, entry), next);
        for (let i = 0; i < min; i++) entry = this.emit(item, entry);
        return entry;
      }
    }
  }
}

// --------------------------------------------------------------------------------------------------- DFA
// Context bits: what the previous unit was (START: none yet). The same bits describe a class.
const CTX_START = 1, CTX_NL = 2, CTX_WORD = 4, CTX_WORD_ASCII = 8;
const PASS = 0, FAIL = 1, TAINT = 2;
/** Default DFA cache budget per compiled pattern or set (state tables, thread lists, keys). */
const DEFAULT_CACHE_BYTES = 2 << 20;
const NO_MATCH = 0x7fffffff;
/** States built per check of whether the DFA is worth it for the value being read. */
const STATES_WINDOW = 512;

/**
 * The automaton. DFA state = (sorted NFA thread ids, context of the previous unit, pattern matched just
 * before the unit that led here). A thread id >= n is "tainted": it went through `$` before a \n and
 * lives only if that \n is the value's last unit. Matches are seen one unit late (RE2's delayed match),
 * because assertions such as \b and $ need the next unit; the END column handles the end of the value.
 */
class Automaton {
  private readonly n: number;
  private readonly op: Int32Array;
  private readonly x: Int32Array;
  private readonly y: Int32Array;
  private readonly patternOf: Int32Array;
  private readonly starts: Int32Array;
  // alphabet
  private readonly low = new Uint16Array(256);
  private readonly hiStart: Int32Array;
  private readonly hiClass: Uint16Array;
  private readonly classes: number;
  private readonly endClass: number;
  private readonly stride: number;
  private readonly classFlags: Uint8Array;
  private readonly member: Uint8Array; // set id * classes + class
  private readonly ctxMask: number;
  // cache
  private readonly budget: number;
  private capacity = 0;
  private count = 0;
  private bytes = 0;
  private trans = new Int32Array(0);
  private info = new Int32Array(0); // bit 0: dead (no threads); bits 1..: matched pattern + 1
  private ctxOf = new Uint8Array(0);
  private threads: Int32Array[] = [];
  private readonly ids = new Map<string, number>();
  private start = -1;
  private flushedStates = 0;
  // scratch for one step
  private readonly stack: Int32Array;
  private readonly seen: Uint32Array;
  private readonly outSeen: Uint32Array;
  private out: Int32Array;
  private spare: Int32Array;
  private gen = 0;
  private outLen = 0;
  private matchMin = NO_MATCH;
  readonly stats: AutomatonStats = { statesBuilt: 0, flushes: 0, nfaFallbacks: 0 };

  constructor(nodes: Node[], budget: number) {
    const b = new NfaBuilder();
    const starts: number[] = [];
    nodes.forEach((node, p) => starts.push(b.emit(node, b.matchOf(p))));
    this.n = b.op.length;
    this.op = Int32Array.from(b.op);
    this.x = Int32Array.from(b.x);
    this.y = Int32Array.from(b.y);
    this.patternOf = Int32Array.from(b.pattern);
    this.starts = Int32Array.from(starts);
    this.budget = budget;

    const k = b.kinds;
    const needNl = k.has(At.BeginLine) || k.has(At.EndLine) || k.has(At.End);
    const needWord = k.has(At.Boundary) || k.has(At.NonBoundary);
    const needAsciiWord = k.has(At.BoundaryAscii) || k.has(At.NonBoundaryAscii);
    this.ctxMask =
      (k.has(At.Begin) || k.has(At.BeginLine) || k.has(At.NonBoundary) || k.has(At.NonBoundaryAscii) ? CTX_START : 0) |
      (k.has(At.BeginLine) ? CTX_NL : 0) |
      (needWord ? CTX_WORD : 0) |
      (needAsciiWord ? CTX_WORD_ASCII : 0);

    // Classes: code units that every set (and the context facts in use) treat alike.
    const partition: Ranges[] = [...b.sets];
    const nlSet = needNl ? partition.push([10, 10]) - 1 : -1;
    const wordSetId = needWord ? partition.push(wordSet(false)) - 1 : -1;
    const asciiWordSetId = needAsciiWord ? partition.push(ASCII_WORD) - 1 : -1;
    const cuts = new Set<number>([0]);
    for (const r of partition) for (let i = 0; i < r.length; i += 2) cuts.add(r[i]!).add(r[i + 1]! + 1);
    cuts.delete(MAX_UNIT + 1);
    const points = [...cuts].sort((p, q) => p - q);
    const index = new Map(points.map((p, i) => [p, i]));
    const sigs: number[][] = points.map(() => []);
    partition.forEach((r, s) => {
      for (let i = 0; i < r.length; i += 2) {
        for (let j = index.get(r[i]!)!; j < points.length && points[j]! <= r[i + 1]!; j++) sigs[j]!.push(s);
      }
    });
    const classOfSig = new Map<string, number>();
    const classOfPoint = sigs.map((sig) => {
      const key = sig.join(",");
      let c = classOfSig.get(key);
      if (c === undefined) classOfSig.set(key, (c = classOfSig.size));
      return c;
    });
    this.classes = classOfSig.size;
    this.endClass = this.classes;
    this.stride = this.classes + 1;
    const hiStart: number[] = [];
    const hiClass: number[] = [];
    points.forEach((p, i) => {
      const c = classOfPoint[i]!;
      const end = i + 1 < points.length ? points[i + 1]! : MAX_UNIT + 1;
      for (let u = p; u < Math.min(end, 256); u++) this.low[u] = c;
      if (end > 256 && (hiClass.length === 0 || hiClass[hiClass.length - 1] !== c)) {
        hiStart.push(Math.max(p, 256));
        hiClass.push(c);
      }
    });
    this.hiStart = Int32Array.from(hiStart);
    this.hiClass = Uint16Array.from(hiClass);
    this.member = new Uint8Array(b.sets.length * this.classes);
    this.classFlags = new Uint8Array(this.stride);
    const seenClass = new Uint8Array(this.classes);
    sigs.forEach((sig, i) => {
      const c = classOfPoint[i]!;
      if (seenClass[c]) return;
      seenClass[c] = 1;
      for (const s of sig) {
        if (s < b.sets.length) this.member[s * this.classes + c] = 1;
        else if (s === nlSet) this.classFlags[c]! |= CTX_NL;
        else if (s === wordSetId) this.classFlags[c]! |= CTX_WORD;
        else if (s === asciiWordSetId) this.classFlags[c]! |= CTX_WORD_ASCII;
      }
    });

    const size = 2 * this.n;
    this.stack = new Int32Array(size + 1);
    this.seen = new Uint32Array(size);
    this.outSeen = new Uint32Array(size);
    this.out = new Int32Array(size);
    this.spare = new Int32Array(size);
  }

  test(value: string): boolean {
    return this.firstMatch(value) >= 0;
  }

  /** The lowest index of a pattern that matches a prefix of value (the whole value with whole), or -1. */
  firstMatch(value: string): number {
    // A transition entry is 0 while unknown, row + 1 for a plain target state, -(row + 1) for a target
    // that matched or is dead (row = state id x stride): the common step is one load and one branch.
    let row = (this.start >= 0 ? this.start : this.startState()) * this.stride;
    let best = -1;
    const low = this.low;
    const stride = this.stride;
    const n = value.length;
    let trans = this.trans;
    let flushes = this.stats.flushes;
    let lastFlushAt = -Infinity;
    let built = 0;
    let windowAt = 0;
    for (let i = 0; i < n; i++) {
      const c = value.charCodeAt(i);
      const k = c < 256 ? low[c]! : this.highClass(c);
      let e = trans[row + k]!;
      if (e > 0) {
        row = e - 1;
        continue;
      }
      if (e === 0) {
        e = this.build(row / stride, k);
        trans = this.trans;
        if (++built % STATES_WINDOW === 0 && this.stats.flushes > 0) {
          // A DFA pays when its states are reused. Once its cache has overflowed, one that builds a state
          // every few units is slower than the NFA it caches: RE2's "bail when slow", checked per window
          // of states rather than per cache fill, so that a thrashing automaton costs little per value.
          if (i - windowAt < 10 * STATES_WINDOW) return this.finishWithNfa((Math.abs(e) - 1) / stride, value, i + 1, best);
          windowAt = i;
        }
        if (this.stats.flushes !== flushes) {
          // The cache filled up. Go on with the DFA while it pays; a value that fills it twice within
          // ten units per state built is finished by the NFA, which builds nothing.
          flushes = this.stats.flushes;
          if (i - lastFlushAt < 10 * this.flushedStates) return this.finishWithNfa((Math.abs(e) - 1) / stride, value, i + 1, best);
          lastFlushAt = i;
        }
        if (e > 0) {
          row = e - 1;
          continue;
        }
      }
      row = -e - 1;
      const f = this.info[row / stride]!;
      if (f > 1) best = (f >> 1) - 1;
      if (f & 1) return best;
    }
    let e = trans[row + this.endClass]!;
    if (e === 0) e = this.build(row / stride, this.endClass);
    const f = e < 0 ? this.info[(-e - 1) / stride]! : 0;
    return f > 1 ? (f >> 1) - 1 : best;
  }

  private highClass(c: number): number {
    const starts = this.hiStart;
    let lo = 0;
    let hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (starts[mid]! <= c) lo = mid;
      else hi = mid - 1;
    }
    return this.hiClass[lo]!;
  }

  private startState(): number {
    this.outLen = 0;
    for (const s of this.starts) this.out[this.outLen++] = s;
    this.out.subarray(0, this.outLen).sort();
    this.matchMin = NO_MATCH;
    return (this.start = this.intern(CTX_START & this.ctxMask));
  }

  /** Computes, interns and caches the transition of state s on class k; returns its entry. */
  private build(s: number, k: number): number {
    const from = this.threads[s]!;
    this.step(from, from.length, this.ctxOf[s]!, k, true);
    const before = this.stats.flushes;
    const t = this.intern(this.classFlags[k]! & this.ctxMask);
    const e = this.info[t] === 0 ? t * this.stride + 1 : -(t * this.stride + 1);
    if (this.stats.flushes === before) this.trans[s * this.stride + k] = e;
    return e;
  }

  /** Finds or adds the state made of the last step's output; flushes the cache when it is full. */
  private intern(ctx: number): number {
    const match = this.matchMin === NO_MATCH ? -1 : this.matchMin;
    const list = this.out.subarray(0, this.outLen);
    let key = `${ctx},${match}:`;
    for (let i = 0; i < list.length; i++) key += list[i] + ",";
    const known = this.ids.get(key);
    if (known !== undefined) return known;
    const cost = this.stride * 4 + list.length * 4 + key.length * 2 + 96;
    if (this.count > 0 && this.bytes + cost > this.budget) this.flush();
    if (this.count >= this.capacity) this.grow();
    const id = this.count++;
    this.bytes += cost;
    this.stats.statesBuilt++;
    this.ids.set(key, id);
    this.threads[id] = list.slice();
    this.ctxOf[id] = ctx;
    this.info[id] = (list.length === 0 ? 1 : 0) | ((match + 1) << 1);
    this.trans.fill(0, id * this.stride, (id + 1) * this.stride);
    return id;
  }

  private grow(): void {
    const capacity = Math.max(16, this.capacity * 2);
    const trans = new Int32Array(capacity * this.stride);
    trans.set(this.trans);
    const info = new Int32Array(capacity);
    info.set(this.info);
    const ctxOf = new Uint8Array(capacity);
    ctxOf.set(this.ctxOf);
    this.trans = trans;
    this.info = info;
    this.ctxOf = ctxOf;
    this.capacity = capacity;
  }

  private flush(): void {
    this.stats.flushes++;
    this.flushedStates = this.count;
    this.ids.clear();
    this.threads = [];
    this.count = 0;
    this.bytes = 0;
    this.start = -1;
  }

  /** Runs the rest of value (from position i, in state s) by NFA simulation: O(NFA size) per unit, no memory. */
  private finishWithNfa(s: number, value: string, i: number, best: number): number {
    this.stats.nfaFallbacks++;
    const f = this.info[s]!;
    if (f > 1) best = (f >> 1) - 1;
    if (f & 1) return best;
    const threads = this.threads[s]!;
    let cur = this.spare;
    cur.set(threads);
    let curLen = threads.length;
    let ctx = this.ctxOf[s]!;
    for (; ; i++) {
      const atEnd = i >= value.length;
      const c = atEnd ? 0 : value.charCodeAt(i);
      const k = atEnd ? this.endClass : c < 256 ? this.low[c]! : this.highClass(c);
      this.step(cur, curLen, ctx, k, false);
      if (this.matchMin !== NO_MATCH) best = this.matchMin;
      if (atEnd || this.outLen === 0) break;
      // the step's output becomes the next input: swap the buffers
      const next = this.out;
      this.out = cur;
      cur = next;
      curLen = this.outLen;
      ctx = this.classFlags[k]! & this.ctxMask;
    }
    this.spare = cur; // the buffer that is not this.out
    return best;
  }

  /** Whether assertion kind holds between the previous unit (ctx) and the next one (class flags, or the end). */
  private check(kind: At, ctx: number, next: number, atEnd: boolean): number {
    switch (kind) {
      case At.Begin:
        return ctx & CTX_START ? PASS : FAIL;
      case At.BeginLine:
        return ctx & (CTX_START | CTX_NL) ? PASS : FAIL;
      case At.EndString:
        return atEnd ? PASS : FAIL;
      case At.EndLine:
        return atEnd || next & CTX_NL ? PASS : FAIL;
      case At.End:
        return atEnd ? PASS : next & CTX_NL ? TAINT : FAIL;
      case At.Boundary:
        return (ctx & CTX_WORD) !== (next & CTX_WORD) ? PASS : FAIL;
      case At.BoundaryAscii:
        return (ctx & CTX_WORD_ASCII) !== (next & CTX_WORD_ASCII) ? PASS : FAIL;
      case At.NonBoundary: // sre: \B does not match the empty value
        return !(ctx & CTX_START && atEnd) && (ctx & CTX_WORD) === (next & CTX_WORD) ? PASS : FAIL;
      case At.NonBoundaryAscii:
        return !(ctx & CTX_START && atEnd) && (ctx & CTX_WORD_ASCII) === (next & CTX_WORD_ASCII) ? PASS : FAIL;
    }
  }

  /**
   * One step: from threads cur (before their empty-width moves) with the previous unit's context, reads
   * class k (or the end). Leaves the next threads in out[0..outLen) (sorted if canonical) and the lowest pattern that
   * matched before the unit in matchMin; drops threads of patterns that can no longer win.
   */
  private step(cur: Int32Array, curLen: number, ctx: number, k: number, canonical: boolean): void {
    const n = this.n;
    const { op, x, y, stack, seen, outSeen, out, member } = this;
    if (++this.gen === 0xffffffff) {
      seen.fill(0);
      outSeen.fill(0);
      this.gen = 1;
    }
    const gen = this.gen;
    const atEnd = k === this.endClass;
    const next = atEnd ? 0 : this.classFlags[k]!;
    const classes = this.classes;
    let outLen = 0;
    let matchMin = NO_MATCH;
    for (let j = 0; j < curLen; j++) {
      let id = cur[j]!;
      if (id >= n) {
        if (!atEnd) continue; // went through $ before a \n that was not the last unit
        id -= n;
      }
      if (seen[id] === gen) continue;
      seen[id] = gen;
      if (op[id] === OP_CHAR) {
        // most threads wait on a character: no closure to follow
        if (!atEnd && member[y[id]! * classes + k]) {
          const w = x[id]!;
          if (outSeen[w] !== gen) {
            outSeen[w] = gen;
            out[outLen++] = w;
          }
        }
        continue;
      }
      let sp = 0;
      stack[sp++] = id;
      while (sp > 0) {
        const v = stack[--sp]!;
        const taint = v >= n ? n : 0;
        const i = v - taint;
        switch (op[i]) {
          case OP_CHAR:
            if (!atEnd && member[y[i]! * classes + k]) {
              const w = x[i]! + taint;
              if (outSeen[w] !== gen) {
                outSeen[w] = gen;
                out[outLen++] = w;
              }
            }
            break;
          case OP_SPLIT: {
            const a = y[i]! + taint;
            if (seen[a] !== gen) {
              seen[a] = gen;
              stack[sp++] = a;
            }
            const b = x[i]! + taint;
            if (seen[b] !== gen) {
              seen[b] = gen;
              stack[sp++] = b;
            }
            break;
          }
          case OP_ASSERT: {
            const r = this.check(y[i]! as At, ctx, next, atEnd);
            const a = r === PASS ? x[i]! + taint : r === TAINT ? x[i]! + n : -1;
            if (a >= 0 && seen[a] !== gen) {
              seen[a] = gen;
              stack[sp++] = a;
            }
            break;
          }
          case OP_MATCH:
            if (taint) {
              if (outSeen[v] !== gen) {
                outSeen[v] = gen;
                out[outLen++] = v; // matches if the end follows the \n
              }
            } else if (x[i]! < matchMin) matchMin = x[i]!;
            break;
        }
      }
    }
    if (matchMin !== NO_MATCH) {
      // Threads of the pattern that matched, and of every later one, cannot change the answer.
      let w = 0;
      for (let r = 0; r < outLen; r++) {
        const v = out[r]!;
        if (this.patternOf[v >= n ? v - n : v]! < matchMin) out[w++] = v;
      }
      outLen = w;
    }
    // A DFA state's threads are sorted (its key); the NFA fallback takes them in any order.
    if (canonical) out.subarray(0, outLen).sort();
    // A tainted thread is redundant next to the same thread untainted.
    let w = 0;
    for (let r = 0; r < outLen; r++) {
      const v = out[r]!;
      if (v >= n && outSeen[v - n] === gen) continue;
      out[w++] = v;
    }
    this.outLen = w;
    this.matchMin = matchMin;
  }
}
