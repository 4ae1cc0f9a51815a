// Reading `memproxy setup`'s text as the real-client suite applies it (its shape is described in src/setup.ts).
import { runToEnd } from "./process.ts";

/**
 * The `export` lines and the files of one part of a setup text: before the "Per-project memory" line
 * ("base"), or from it on ("project").
 */
export function setupParts(text: string, part: "base" | "project"): { exports: string[]; files: { path: string; content: string }[] } {
  const lines = text.split("\n");
  const cut = lines.findIndex((l) => l.startsWith("Per-project memory"));
  const mine = part === "base" ? lines.slice(0, cut < 0 ? lines.length : cut) : cut < 0 ? [] : lines.slice(cut);
  const exports = mine.filter((l) => l.startsWith("  export ")).map((l) => l.slice(2));
  const files: { path: string; content: string }[] = [];
  for (let i = 0; i < mine.length; i++) {
    const m = /^In (\S+)(?: \(.*\))?:$/.exec(mine[i]!);
    if (!m) continue;
    const body: string[] = [];
    while (mine[i + 1]?.startsWith("    ")) body.push(mine[++i]!.slice(4));
    files.push({ path: m[1]!, content: body.join("\n") });
  }
  return { exports, files };
}

/** Runs export lines in bash, as a user's shell would, with `env`; returns the variables they set. */
export async function evaluateExports(exports: string[], env: Record<string, string | undefined>): Promise<Record<string, string>> {
  if (exports.length === 0) return {};
  const names = exports.map((e) => /^export (\w+)=/.exec(e)![1]!);
  const script = [...exports, ...names.map((n) => `printf '%s=%s\\0' ${n} "$${n}"`)].join("\n");
  const { stdout, stderr, code } = await runToEnd(["bash", "-euc", script], { env });
  if (code !== 0) throw new Error(`bash could not run the setup text's lines:\n${script}\n${stderr}`);
  return Object.fromEntries(stdout.split("\0").filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]));
}
