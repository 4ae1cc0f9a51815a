// README as a user meets it: its Quick start and service commands run as written in a fresh clone of this
// checkout with an empty HOME, `memproxy` being the compiled binary; its tool table and setup excerpts are what
// `memproxy setup` prints; its links and anchors lead somewhere.
//
// The commands are taken from the fenced blocks marked `<!-- readme-test: quick-start -->` and
// `<!-- readme-test: service -->`, and every one must be known here: run (with what it promises checked), or not
// run with the reason. Two changes from "as written", so that the test touches nothing of the machine's: port 8764
// becomes a free port (`npm start` gets `-- --port N`), and `npm start` forwards to a recording backend (`--backend`)
// instead of whatever LiteLLM may listen on 127.0.0.1:8765.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { KNOWN_TOOLS } from "../../src/tools.ts";
import { startBackend, type RecordingBackend } from "../support/backend.ts";
import { compiledBinary } from "../support/memproxy.ts";
import { freePort, killGroup, LineLog, processGroup, runToEnd, tempDir, waitForExit, type Finished } from "../support/process.ts";

const ROOT = join(import.meta.dir, "..", "..");
const README = readFileSync(join(ROOT, "README.md"), "utf8");
const CI = process.env.CI === "true";

/** A fenced block marked `<!-- readme-test: NAME -->` on the line before it. */
interface Block {
  name: string;
  /** The `## ` heading it is under. */
  section: string;
  lines: string[];
  /** Its line number in README (1-based), for messages. */
  at: number;
}

/** Every fenced block of README with the section it is in and its marker, if any. */
function fencedBlocks(md: string): (Block & { marked: boolean; lang: string })[] {
  const out: (Block & { marked: boolean; lang: string })[] = [];
  const all = md.split("\n");
  let section = "";
  for (let i = 0; i < all.length; i++) {
    const line = all[i]!;
    if (line.startsWith("## ")) section = line.slice(3).trim();
    const open = /^(\s*)```(\w*)\s*$/.exec(line);
    if (!open) continue;
    const indent = open[1]!.length;
    const end = all.findIndex((l, j) => j > i && /^\s*```\s*$/.test(l));
    if (end < 0) throw new Error(`README.md:${i + 1}: a fenced block that does not end`);
    const marker = /^<!-- readme-test: (.+?) -->$/.exec(all[i - 1] ?? "");
    out.push({ name: marker?.[1] ?? "", marked: Boolean(marker), lang: open[2]!, section, lines: all.slice(i + 1, end).map((l) => l.slice(indent)), at: i + 1 });
    i = end;
  }
  return out;
}

const BLOCKS = fencedBlocks(README);
const marked = (name: string) => BLOCKS.filter((b) => b.name === name);

/** One command line of a block: the command, and its trailing `# comment` (what it promises), if any. */
interface Command {
  text: string;
  comment: string;
  at: number;
}
function commandsOf(blocks: Block[]): Command[] {
  return blocks.flatMap((b) =>
    b.lines.flatMap((line, i) => {
      if (!line.trim() || line.trim().startsWith("#")) return [];
      const hash = /\s{2,}# /.exec(line);
      return [{ text: (hash ? line.slice(0, hash.index) : line).trim(), comment: hash ? line.slice(hash.index + hash[0].length).trim() : "", at: b.at + 1 + i }];
    }),
  );
}

/** What a comment promises: `"user_id": "x"` must appear in the command's output. */
function promisedOutput(comment: string): string | undefined {
  return /"user_id": "[^"]+"/.exec(comment)?.[0];
}

// ------------------------------------------------------------------------------------------ what the test needs
const tools = { npm: Bun.which("npm"), node: Bun.which("node"), git: Bun.which("git"), curl: Bun.which("curl"), setsid: Bun.which("setsid"), bash: Bun.which("bash") };
const isRepo = existsSync(join(ROOT, ".git"));
const missing = [...Object.entries(tools).filter(([, p]) => !p).map(([name]) => name), ...(isRepo ? [] : ["a git checkout"])];
if (missing.length && !CI) console.warn(`readme.e2e.test.ts: skipping README's commands: missing ${missing.join(", ")}`);
test.if(missing.length > 0 && CI)("what README's commands need is there (required in CI): Node.js, npm, git, curl, setsid, bash", () => {
  throw new Error(`missing: ${missing.join(", ")}`);
});
const runnable = missing.length === 0;

/** PATH of a fresh machine with Node.js and npm: their folder and the system's. */
const SYSTEM_PATH = [...new Set([tools.node && dirname(tools.node), tools.npm && dirname(tools.npm)].filter(Boolean))].join(":") + ":/usr/local/bin:/usr/bin:/bin";

// ------------------------------------------------------------------------------------------ the README's text
describe("README's text", () => {
  test("the Quick start and service sections have no shell block the test does not run", () => {
    for (const [section, name] of [
      ["Quick start", "quick-start"],
      ["Running as a service", "service"],
    ] as const) {
      const blocks = BLOCKS.filter((b) => b.section === section && (b.lang === "sh" || b.lang === "bash" || b.lang === ""));
      expect(blocks.length).toBeGreaterThan(0);
      expect(blocks.map((b) => [b.at, b.name])).toEqual(blocks.map((b) => [b.at, name]));
    }
  });

  test("every relative link leads to a file of the repository, every #anchor to a heading", () => {
    const slugs = new Map<string, number>();
    const anchors = new Set<string>();
    const inBlock = (i: number) => BLOCKS.some((b) => i + 1 >= b.at && i + 1 <= b.at + b.lines.length + 1);
    for (const h of README.split("\n").filter((l, i) => /^#{1,6} /.test(l) && !inBlock(i))) {
      const base = h
        .replace(/^#+ /, "")
        .trim()
        .toLowerCase()
        .replace(/[^\p{L}\p{N}\s_-]/gu, "")
        .replace(/\s/g, "-");
      const n = slugs.get(base) ?? 0;
      slugs.set(base, n + 1);
      anchors.add(n ? `${base}-${n}` : base);
    }
    // Links outside fenced blocks: [text](target) and ![alt](target).
    const prose = README.split("\n")
      .filter((_, i) => !inBlock(i))
      .join("\n");
    const targets = [...prose.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1]!);
    expect(targets.length).toBeGreaterThan(10);
    const broken: string[] = [];
    for (const target of targets) {
      if (/^https?:\/\//.test(target)) continue;
      const [path, anchor] = target.split("#") as [string, string | undefined];
      if (path && !existsSync(join(ROOT, path))) broken.push(`${target}: no file ${path}`);
      if (!path && anchor !== undefined && !anchors.has(anchor)) broken.push(`${target}: no heading with this anchor`);
    }
    expect(broken).toEqual([]);
  });

  test("the tool table lists every tool `memproxy setup` knows, its memory id, its real-client mark, and only text that `memproxy setup <tool>` prints", async () => {
    const bin = await compiledBinary();
    const list = await runToEnd([bin, "setup"], { env: { PATH: SYSTEM_PATH, HOME: "/nonexistent" } });
    expect(list.code).toBe(0);
    const keys = list.stdout
      .split("\n")
      .map((l) => /^  ([a-z0-9-]+)\s{2,}/.exec(l)?.[1])
      .filter((k): k is string => Boolean(k) && k !== "tool");
    expect(keys.sort()).toEqual(KNOWN_TOOLS.map((t) => t.key).sort());

    const start = README.indexOf("<!-- readme-test: tools -->");
    expect(start).toBeGreaterThan(0);
    const rows = README.slice(start)
      .split("\n")
      .slice(1)
      .filter((_, i, all) => all.slice(0, i + 1).every((l) => l.startsWith("|")))
      .slice(2)
      .map((row) => row.split("|").slice(1, -1).map((c) => c.trim()));
    const problems: string[] = [];
    for (const tool of KNOWN_TOOLS) {
      const row = rows.find((r) => r[0]!.includes(`(\`${tool.key}\`)`));
      if (!row) {
        problems.push(`${tool.key}: no row`);
        continue;
      }
      const [, id, tested, how] = row as [string, string, string, string];
      if (!id.startsWith(`\`${tool.userId}\``)) problems.push(`${tool.key}: memory id ${id}, expected \`${tool.userId}\``);
      if (tool.recognisable === id.includes("with the header")) problems.push(`${tool.key}: 'with the header' must mark exactly the tools that cannot be told apart`);
      if ((tested === "✔") !== Boolean(tool.verifiedBy)) problems.push(`${tool.key}: tested '${tested}', verifiedBy ${tool.verifiedBy ?? "none"}`);
      const setup = await runToEnd([bin, "setup", tool.key], { env: { PATH: SYSTEM_PATH, HOME: "/nonexistent" } });
      expect(setup.code).toBe(0);
      const spans = [...how.matchAll(/`([^`]+)`/g)].map((m) => m[1]!);
      if (!spans.length) problems.push(`${tool.key}: no text from memproxy setup in its row`);
      for (const span of spans) if (!setup.stdout.includes(span)) problems.push(`${tool.key}: \`${span}\` is not in 'memproxy setup ${tool.key}'`);
    }
    expect(rows.length).toBe(KNOWN_TOOLS.length);
    expect(problems).toEqual([]);
  }, 120_000);

  test("each setup excerpt is a run of lines exactly as `memproxy setup <tool>` prints them", async () => {
    const bin = await compiledBinary();
    const excerpts = BLOCKS.filter((b) => b.name.startsWith("setup "));
    expect(excerpts.length).toBeGreaterThan(0);
    for (const block of excerpts) {
      const key = block.name.slice("setup ".length);
      const setup = await runToEnd([bin, "setup", key], { env: { PATH: SYSTEM_PATH, HOME: "/nonexistent" } });
      expect(setup.code).toBe(0);
      const printed = setup.stdout.split("\n");
      const from = printed.indexOf(block.lines[0]!);
      expect({ key, lines: printed.slice(from, from + block.lines.length) }).toEqual({ key, lines: block.lines });
    }
  }, 120_000);
});

// ------------------------------------------------------------------------------------------ the commands
/** A fresh clone of this checkout with the working tree's files on top (README as it is now), and an empty HOME. */
let clone: ReturnType<typeof tempDir> | undefined;
let repo = "";
let home = "";
let backend: RecordingBackend | undefined;
let started: { proc: ReturnType<typeof Bun.spawn>; log: LineLog; exited: Promise<number> } | undefined;
const port = freePort();
/** The commands the test does not run, and why; each must still be in README. */
const notRun: { text: string; why: string }[] = [];

beforeAll(async () => {
  if (!runnable) return;
  clone = tempDir("readme");
  repo = join(clone.path, "memproxy");
  home = join(clone.path, "home");
  mkdirSync(home);
  const cloned = await runToEnd(["git", "clone", "--quiet", "--no-hardlinks", ROOT, repo]);
  if (cloned.code !== 0) throw new Error(`git clone failed: ${cloned.stderr}`);
  // The working tree's files as they are now (tracked, and new ones not ignored), so that README and the code
  // under test are this checkout's, committed or not.
  const files = await runToEnd(["git", "-C", ROOT, "ls-files", "-z", "--cached", "--others", "--exclude-standard"]);
  for (const file of files.stdout.split("\0").filter(Boolean)) {
    if (!existsSync(join(ROOT, file))) continue; // deleted in the working tree
    mkdirSync(dirname(join(repo, file)), { recursive: true });
    copyFileSync(join(ROOT, file), join(repo, file));
  }
  backend = startBackend();
}, 120_000);

afterAll(async () => {
  if (started && started.proc.exitCode === null) {
    killGroup(started.proc.pid, "SIGKILL");
    await started.exited;
  }
  await backend?.stop();
  clone?.[Symbol.dispose]();
});

/** The environment of a fresh machine: only PATH and HOME (and the terminal's type). */
function freshEnv(extra: Record<string, string> = {}): Record<string, string> {
  return { PATH: SYSTEM_PATH, HOME: home, TERM: "dumb", ...extra };
}

/** Runs a command line as a user's shell would, in the clone. */
function sh(text: string, env = freshEnv()): Promise<Finished> {
  return runToEnd([tools.bash!, "-c", text], { cwd: repo, env });
}

function described(r: Finished): string {
  return `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
}

/** Starts `npm start` (with the test's port and backend) in a session of its own, as a terminal would run it. */
async function startInBackground(): Promise<void> {
  const proc = Bun.spawn([tools.setsid!, "npm", "start", "--", "--port", String(port), "--backend", backend!.url], {
    cwd: repo,
    env: freshEnv(),
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const { log, exited } = LineLog.of(proc);
  started = { proc, log, exited };
  await log.waitFor(`listening on http://127.0.0.1:${port}`);
}

/** Ctrl-C in the terminal: SIGINT to the whole foreground group (npm, its shell, memproxy); all of it ends. */
async function stopLikeCtrlC(): Promise<void> {
  const s = started!;
  // npm, its shell, memproxy.
  const members = processGroup(s.proc.pid);
  expect(members.length).toBeGreaterThanOrEqual(2);
  killGroup(s.proc.pid, "SIGINT");
  await s.log.waitFor('"msg":"stopped"');
  await s.exited;
  await Promise.all(members.map(waitForExit));
}

describe.if(runnable)("README's Quick start, as written, in a fresh clone with an empty HOME", () => {
  const commands = commandsOf(marked("quick-start"));

  test("every command is run or has a reason not to be", () => {
    expect(commands.length).toBeGreaterThan(5);
    const unknown = commands.filter((c) => !QUICK_START.some((step) => step.match.test(c.text)));
    expect(unknown.map((c) => `README.md:${c.at}: ${c.text}`)).toEqual([]);
  });

  /** What the test does with each Quick start command; they run in README's order, sharing the clone. */
  const QUICK_START: { match: RegExp; run?: (c: Command) => Promise<void>; why?: string }[] = [
    {
      match: /^npm install && npm start$/,
      run: async () => {
        const install = await sh("npm install");
        expect(install.code, described(install)).toBe(0);
        // Quiet: bun's install script is allowed (package.json allowScripts), so npm does not warn about it.
        expect(install.stderr).not.toMatch(/npm warn.*\bbun\b/i);
        await startInBackground();
        // "its start line says whether anything answers there"
        await started!.log.waitFor(`backend ${backend!.url} answers`);
        expect(backend!.probes.length).toBeGreaterThanOrEqual(1);
        // "Open http://127.0.0.1:8764/ for the status page"
        const page = await fetch(`http://127.0.0.1:${port}/`);
        expect(page.status).toBe(200);
        expect(page.headers.get("content-type")).toContain("text/html");
        expect(await page.text()).toContain("memproxy");
      },
    },
    {
      match: /^curl -s http:\/\/127\.0\.0\.1:8764\/memory-routing\/info /,
      run: async (c) => {
        const r = await sh(c.text.replaceAll("127.0.0.1:8764", `127.0.0.1:${port}`));
        expect(r.code, described(r)).toBe(0);
        expect(r.stdout).toContain(promisedOutput(c.comment)!);
        expect(JSON.parse(r.stdout).decided_by).toBe("builtin");
      },
    },
    {
      match: /^npm run memproxy -- explain /,
      run: async (c) => {
        const r = await sh(c.text);
        expect(r.code, described(r)).toBe(0);
        expect(promisedOutput(c.comment)).toBeDefined();
        expect(r.stdout).toContain(promisedOutput(c.comment)!);
      },
    },
    {
      match: /^cp config\.example\.yaml config\.yaml$/,
      run: async (c) => {
        // README: "then stop memproxy with Ctrl-C", before this.
        await stopLikeCtrlC();
        const r = await sh(c.text);
        expect(r.code, described(r)).toBe(0);
        expect(readFileSync(join(repo, "config.yaml"), "utf8")).toBe(readFileSync(join(repo, "config.example.yaml"), "utf8"));
      },
    },
    {
      match: /^(npm run memproxy --|\.\/dist\/memproxy) check --config config\.yaml$/,
      run: async (c) => {
        const r = await sh(c.text);
        expect(r.code, described(r)).toBe(0);
        expect(r.stdout).toContain("config.yaml: OK");
        expect(r.stdout).toContain("memory id forwarding: on");
      },
    },
    {
      match: /^bash scripts\/setup-litellm\.sh$/,
      why: "installs LiteLLM from PyPI into ~/.cache/memproxy (Python, about a minute); CI runs it, and test/e2e/litellm.e2e.test.ts runs config.example.yaml with that LiteLLM",
    },
    {
      match: /^export LITELLM_MASTER_KEY=.* OPENAI_API_KEY=.* ANTHROPIC_API_KEY=.* SUPERMEMORY_API_KEY=/,
      why: "needs the user's real provider and Supermemory keys",
    },
    {
      match: /^npm start -- --config config\.yaml --spawn-litellm --litellm-command "\$\(bash scripts\/setup-litellm\.sh \| tail -n1\)"$/,
      why: "serves real models with real keys through Supermemory; test/e2e/litellm.e2e.test.ts runs this stack with a fake router and provider",
    },
    {
      match: /^npm run build$/,
      run: async (c) => {
        const r = await sh(c.text);
        expect(r.code, described(r)).toBe(0);
        expect(existsSync(join(repo, "dist", "memproxy"))).toBe(true);
      },
    },
    {
      match: /^\.\/dist\/memproxy --version$/,
      run: async (c) => {
        const r = await sh(c.text);
        expect(r.code, described(r)).toBe(0);
        // README: `memproxy 0.1.0 (commit abc1234, built 2026-11-28, bun 1.4.5)`
        const version = JSON.parse(readFileSync(join(repo, "package.json"), "utf8")).version;
        expect(r.stdout.trim()).toMatch(new RegExp(`^memproxy ${version.replaceAll(".", "\\.")} \\(commit [0-9a-f]{7}(-dirty)?, built \\d{4}-\\d\\d-\\d\\d, bun \\d+\\.\\d+\\.\\d+\\)$`));
        // README shows the same form, on one line.
        const shown = /`memproxy \d+\.\d+\.\d+ \(commit [0-9a-f]{7}, built \d{4}-\d\d-\d\d, bun \d+\.\d+\.\d+\)`/.test(README);
        expect(shown).toBe(true);
      },
    },
  ];

  test("each command does what README says", async () => {
    for (const c of commands) {
      const step = QUICK_START.find((s) => s.match.test(c.text))!;
      if (!step.run) {
        notRun.push({ text: c.text, why: step.why! });
        continue;
      }
      try {
        await step.run(c);
      } catch (err) {
        throw new Error(`README.md:${c.at}: ${c.text}\n${(err as Error).message}`);
      }
    }
    // memproxy was started and stopped by the commands above; nothing of it runs on.
    // (npm itself ends by the SIGINT; memproxy drained and logged "stopped".)
    expect(started?.proc.exitCode ?? started?.proc.signalCode).not.toBeNull();
    for (const n of notRun) console.warn(`readme.e2e.test.ts: not run: ${n.text}\n  why: ${n.why}`);
  }, 300_000);
});

describe.if(runnable)("README's service commands, against the compiled binary, with an empty HOME", () => {
  const commands = commandsOf(marked("service"));
  let bin = "";
  let serviceHome = "";
  beforeAll(async () => {
    bin = await compiledBinary();
    serviceHome = join(clone!.path, "service-home");
    mkdirSync(serviceHome);
  }, 120_000);
  /** `memproxy` is the compiled binary, first on PATH. `systemPath`: false for commands that must not reach systemctl. */
  const env = (systemPath: boolean) => ({ PATH: systemPath ? `${dirname(bin)}:${SYSTEM_PATH}` : dirname(bin), HOME: serviceHome, TERM: "dumb" });

  const SERVICE: { match: RegExp; run?: (c: Command) => Promise<void>; why?: string }[] = [
    {
      match: /^memproxy service install --dry-run$/,
      run: async (c) => {
        const r = await runToEnd([tools.bash!, "-c", c.text], { cwd: serviceHome, env: env(true) });
        expect(r.code, described(r)).toBe(0);
        const config = join(serviceHome, ".config", "memproxy", "config.yaml");
        expect(r.stdout).toContain("nothing is written or started");
        expect(r.stdout).toContain(`would write the config (memproxy and LiteLLM): ${config}`);
        expect(r.stdout).toContain("LITELLM_MASTER_KEY=<generated>");
        expect(r.stdout).toContain(`ExecStart=${bin} --config ${config}`);
        expect(r.stdout).toContain("would run: systemctl --user enable memproxy.service");
        // README: "change nothing"
        expect(readdirSync(serviceHome)).toEqual([]);
      },
    },
    {
      match: /^memproxy service install$/,
      why: "would enable and start a systemd user unit of this machine's user; test/e2e/service.e2e.test.ts installs it under a systemd --user of its own",
    },
    {
      match: /^memproxy service status$/,
      run: async (c) => {
        const r = await runToEnd([tools.bash!, "-c", c.text], { cwd: serviceHome, env: env(false) });
        expect(r.code, described(r)).toBe(4); // README: 4 when not installed
        expect(r.stdout).toContain("memproxy service is not installed");
      },
    },
    {
      match: /^memproxy service uninstall$/,
      run: async (c) => {
        const r = await runToEnd([tools.bash!, "-c", c.text], { cwd: serviceHome, env: env(false) });
        expect(r.code, described(r)).toBe(0);
        expect(r.stdout).toContain("memproxy service is not installed");
        expect(readdirSync(serviceHome)).toEqual([]);
      },
    },
  ];

  test.if(process.platform === "linux")("every command is run (nothing installed, systemctl out of reach) or has a reason not to be", async () => {
    expect(commands.length).toBe(4);
    const unknown = commands.filter((c) => !SERVICE.some((s) => s.match.test(c.text)));
    expect(unknown.map((c) => `README.md:${c.at}: ${c.text}`)).toEqual([]);
    for (const c of commands) {
      const step = SERVICE.find((s) => s.match.test(c.text))!;
      if (!step.run) {
        console.warn(`readme.e2e.test.ts: not run: ${c.text}\n  why: ${step.why}`);
        continue;
      }
      try {
        await step.run(c);
      } catch (err) {
        throw new Error(`README.md:${c.at}: ${c.text}\n${(err as Error).message}`);
      }
    }
  }, 60_000);
});
