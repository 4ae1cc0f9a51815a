// Translates the original design's Python `re.match` patterns into JavaScript regular expressions.

/** A compiled pattern, or why it could not be compiled. */
export type CompiledPattern = { ok: true; regex: RegExp } | { ok: false; error: string };

const LEADING_FLAGS = /^\(\?([aiLmsux]+)\)/;

/**
 * Compiles a pattern with Python `re.match` semantics: anchored at the start of the value, not at
 * the end. Leading inline flags such as `(?i)` are honoured; `(?P<name>…)`, `(?P=name)`, `\A` and
 * `\Z` are translated.
 * @param pattern the pattern as written in the config.
 * @returns the RegExp, or the reason it is invalid.
 */
export function compilePattern(pattern: string): CompiledPattern {
  let body = pattern;
  let flags = "";
  const lead = LEADING_FLAGS.exec(body);
  if (lead) {
    for (const f of lead[1]!) {
      if (f === "i" || f === "m" || f === "s") flags += flags.includes(f) ? "" : f;
      else if (f === "x") return { ok: false, error: "verbose mode (?x) is not supported" };
      // a, L, u: ASCII/locale/unicode matching modes have no JavaScript counterpart that matters here.
    }
    body = body.slice(lead[0].length);
  }
  try {
    return { ok: true, regex: new RegExp(`^(?:${translate(body)})`, flags) };
  } catch (err) {
    return { ok: false, error: (err as Error).message.replace(/^Invalid regular expression: /, "") };
  }
}

/** Rewrites Python-only syntax outside character classes. */
function translate(src: string): string {
  let out = "";
  let inClass = false;
  for (let i = 0; i < src.length; i++) {
    const c = src[i]!;
    if (c === "\\") {
      const next = src[i + 1] ?? "";
      if (!inClass && next === "A") out += "^";
      else if (!inClass && next === "Z") out += "$";
      else out += c + next;
      i++;
      continue;
    }
    if (inClass) {
      if (c === "]") inClass = false;
      out += c;
      continue;
    }
    if (c === "[") {
      inClass = true;
      out += c;
      if (src[i + 1] === "^") out += src[++i];
      if (src[i + 1] === "]") out += "\\" + src[++i]; // a leading ] is literal in Python
      continue;
    }
    if (src.startsWith("(?P<", i)) {
      out += "(?<";
      i += 3;
      continue;
    }
    const backref = /^\(\?P=(\w+)\)/.exec(src.slice(i));
    if (backref) {
      out += `\\k<${backref[1]}>`;
      i += backref[0].length - 1;
      continue;
    }
    out += c;
  }
  return out;
}
