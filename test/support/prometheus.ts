// A strict parser of the Prometheus text exposition format 0.0.4, for tests: it throws on anything a
// scraper could reject or misread, and checks histograms and counters for consistency.

/** One sample: its full name (e.g. x_bucket), labels and value. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** A metric family: the TYPE/HELP header and its samples. */
export interface Family {
  name: string;
  type: "counter" | "gauge" | "histogram" | "summary" | "untyped";
  help: string | undefined;
  samples: Sample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set(["counter", "gauge", "histogram", "summary", "untyped"]);

/**
 * Parses exposition text strictly.
 * @returns the families by name; throws an Error naming the line for any violation.
 */
export function parsePrometheus(text: string): Map<string, Family> {
  if (!text.endsWith("\n")) throw new Error("the text must end with a line feed");
  const families = new Map<string, Family>();
  const seen = new Set<string>();
  const finished = new Set<string>();
  let current: Family | undefined;
  const lines = text.slice(0, -1).split("\n");
  lines.forEach((line, i) => {
    const where = `line ${i + 1} ${JSON.stringify(line)}`;
    const fail = (why: string): never => {
      throw new Error(`${where}: ${why}`);
    };
    if (line === "") return;
    if (line.startsWith("#")) {
      const m = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
      if (!m) return; // a plain comment
      const [, kind, name, rest] = m as unknown as [string, string, string, string];
      if (!NAME.test(name)) fail("invalid metric name");
      let family = families.get(name);
      if (family && family !== current) fail(`${name} appears in two separate groups`);
      if (!family) {
        if (current) finished.add(current.name);
        family = { name, type: "untyped", help: undefined, samples: [] };
        families.set(name, family);
        current = family;
      }
      if (kind === "TYPE") {
        if (!TYPES.has(rest)) fail(`unknown type ${rest}`);
        if (family.samples.length) fail("TYPE after samples");
        if ((family as { typed?: boolean }).typed) fail("second TYPE line");
        (family as { typed?: boolean }).typed = true;
        family.type = rest as Family["type"];
      } else {
        if (family.help !== undefined) fail("second HELP line");
        if (/\\[^\\n]/.test(rest.replace(/\\\\/g, ""))) fail("HELP may only escape \\\\ and \\n");
        family.help = rest;
      }
      return;
    }
    const sample = parseSample(line, fail);
    const family = familyOf(sample.name, current);
    if (!family) fail(`sample ${sample.name} outside its family (no TYPE line for it just before)`);
    const key = sample.name + JSON.stringify(Object.entries(sample.labels).sort());
    if (seen.has(key)) fail("duplicate sample");
    seen.add(key);
    if (finished.has(family!.name)) fail("family continued after another began");
    family!.samples.push(sample);
  });
  for (const f of families.values()) checkFamily(f);
  return families;
}

function familyOf(name: string, current: Family | undefined): Family | undefined {
  if (!current) return undefined;
  if (name === current.name) return current.type === "histogram" ? undefined : current;
  if (current.type === "histogram" && [`${current.name}_bucket`, `${current.name}_sum`, `${current.name}_count`].includes(name)) return current;
  return undefined;
}

function parseSample(line: string, fail: (why: string) => never): Sample {
  const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{)?/.exec(line);
  if (!m) fail("invalid sample name");
  const name = m![1]!;
  let i = name.length;
  const labels: Record<string, string> = {};
  if (m![2]) {
    i++;
    for (;;) {
      if (line[i] === "}") {
        i++;
        break;
      }
      const lm = /^([^=]*)="/.exec(line.slice(i));
      if (!lm) fail("expected label=\"value\"");
      const lname = lm![1]!;
      if (!LABEL_NAME.test(lname)) fail(`invalid label name ${JSON.stringify(lname)}`);
      if (lname in labels) fail(`label ${lname} twice`);
      i += lm![0].length;
      let value = "";
      for (;;) {
        const c = line[i];
        if (c === undefined) fail("unterminated label value");
        if (c === '"') break;
        if (c === "\\") {
          const e = line[i + 1];
          if (e === "\\") value += "\\";
          else if (e === '"') value += '"';
          else if (e === "n") value += "\n";
          else fail(`invalid escape \\${e} in a label value`);
          i += 2;
        } else {
          value += c;
          i++;
        }
      }
      i++;
      labels[lname] = value;
      if (line[i] === ",") i++;
      else if (line[i] !== "}") fail("expected , or } after a label");
    }
  }
  if (line[i] !== " ") fail("expected one space before the value");
  const parts = line.slice(i + 1).split(" ");
  if (parts.length > 2 || parts.some((p) => p === "")) fail("expected a value and an optional timestamp");
  const value = parseValue(parts[0]!);
  if (value === undefined) fail(`invalid value ${JSON.stringify(parts[0])}`);
  if (parts[1] !== undefined && !/^-?\d+$/.test(parts[1])) fail("invalid timestamp");
  return { name, labels, value: value! };
}

function parseValue(s: string): number | undefined {
  if (s === "+Inf" || s === "Inf") return Infinity;
  if (s === "-Inf") return -Infinity;
  if (s === "NaN") return NaN;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(s)) return undefined;
  return Number(s);
}

function checkFamily(f: Family): void {
  const fail = (why: string): never => {
    throw new Error(`${f.name}: ${why}`);
  };
  if (f.type === "counter") {
    for (const s of f.samples) if (!(s.value >= 0)) fail(`counter value ${s.value} is negative or NaN`);
  }
  if (f.type !== "histogram") return;
  const groups = new Map<string, { buckets: [number, number][]; sum?: number; count?: number }>();
  for (const s of f.samples) {
    const { le, ...rest } = s.labels;
    const key = JSON.stringify(Object.entries(rest).sort());
    const g = groups.get(key) ?? { buckets: [] };
    groups.set(key, g);
    if (s.name.endsWith("_bucket")) {
      if (le === undefined) fail("a bucket without le");
      const bound = parseValue(le!);
      if (bound === undefined || Number.isNaN(bound)) fail(`invalid le ${le}`);
      g.buckets.push([bound!, s.value]);
    } else if (le !== undefined) fail(`${s.name} with an le label`);
    else if (s.name.endsWith("_sum")) g.sum = s.value;
    else g.count = s.value;
  }
  for (const [key, g] of groups) {
    if (!g.buckets.length) fail(`${key}: no buckets`);
    for (let i = 1; i < g.buckets.length; i++) {
      if (!(g.buckets[i]![0] > g.buckets[i - 1]![0])) fail(`${key}: le not increasing`);
      if (g.buckets[i]![1] < g.buckets[i - 1]![1]) fail(`${key}: bucket counts not cumulative`);
    }
    const last = g.buckets.at(-1)!;
    if (last[0] !== Infinity) fail(`${key}: no le="+Inf" bucket`);
    if (g.count === undefined || g.sum === undefined) fail(`${key}: _sum or _count missing`);
    if (g.count !== last[1]) fail(`${key}: _count ${g.count} differs from the +Inf bucket ${last[1]}`);
  }
}

/** The value of the sample `name` with exactly these labels; 0 when absent (a counter not yet moved). */
export function sampleValue(families: Map<string, Family>, name: string, labels: Record<string, string> = {}): number {
  const want = JSON.stringify(Object.entries(labels).sort());
  const found = samples(families, name).find((s) => JSON.stringify(Object.entries(s.labels).sort()) === want);
  return found?.value ?? 0;
}

/** The sum of the samples `name` whose labels include `labels`. */
export function sampleSum(families: Map<string, Family>, name: string, labels: Record<string, string> = {}): number {
  return samples(families, name)
    .filter((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((a, s) => a + s.value, 0);
}

/** Every sample named `name`. */
export function samples(families: Map<string, Family>, name: string): Sample[] {
  return [...families.values()].flatMap((f) => f.samples.filter((s) => s.name === name));
}
