// Builds the self-contained executable: `bun scripts/build.ts [--target bun-linux-x64] [--outfile dist/memproxy]
// [--commit C] [--date YYYY-MM-DD]`. The commit and date it was built from are embedded for `memproxy --version`.
import { parseArgs } from "node:util";

const root = new URL("..", import.meta.url).pathname;

/** What a build embeds: the short commit ("-dirty" with uncommitted changes, "unknown" outside git) and the UTC day. */
export interface BuildInfo {
  commit: string;
  date: string;
}

/**
 * The commit and date of a build made now from `dir`. The date honours SOURCE_DATE_EPOCH (reproducible
 * builds) when it is set.
 */
export function buildInfo(dir: string = root, env: Record<string, string | undefined> = process.env): BuildInfo {
  const git = (...args: string[]) => Bun.spawnSync(["git", "-C", dir, ...args], { stdout: "pipe", stderr: "ignore", env: { ...env, GIT_OPTIONAL_LOCKS: "0" } });
  let commit = "unknown";
  try {
    const head = git("rev-parse", "--short=7", "HEAD");
    if (head.exitCode === 0) {
      // Like `git describe --dirty`: changes to tracked files only; exit 1 means there are some.
      const dirty = git("diff", "--quiet", "HEAD", "--").exitCode === 1;
      commit = `${head.stdout.toString().trim()}${dirty ? "-dirty" : ""}`;
    }
  } catch {
    // no git on this machine
  }
  const epoch = Number(env.SOURCE_DATE_EPOCH);
  const when = env.SOURCE_DATE_EPOCH && Number.isFinite(epoch) ? new Date(epoch * 1000) : new Date();
  return { commit, date: when.toISOString().slice(0, 10) };
}

/**
 * JavaScriptCore's tier-up thresholds while memproxy starts, as a multiple of the normal ones. Start-up code
 * (the YAML and config parsers, the pattern compiler) runs once: compiling it costs more than it saves, and
 * the compilers' own pages stay in memory. src/cli.ts returns to the normal policy once memproxy listens.
 */
export const START_JIT_POLICY = 8;

/** The `bun build` command line for one executable. */
export function buildCommand(options: { target?: string; outfile: string; minify: boolean; info: BuildInfo }): string[] {
  return [
    process.execPath,
    "build",
    "--compile",
    // Precompiled bytecode: the program loads in about half the time (npm run bench: start-up).
    "--bytecode",
    `--compile-jit-policy=${START_JIT_POLICY}`,
    // The program in a chunk of its own: src/main.ts re-executes itself before it imports the program, so the
    // first of the two processes loads only the entry.
    "--splitting",
    "--format=esm",
    // A service's working directory must not change the binary's behaviour.
    "--no-compile-autoload-dotenv",
    "--no-compile-autoload-bunfig",
    // Not --no-orphans: it makes memproxy itself exit (SIGKILL) when whatever started it exits, e.g. the
    // shell of `nohup memproxy &`. Only LiteLLM must die with memproxy, and the supervisor arranges that.
    `--define=MEMPROXY_BUILD_COMMIT=${JSON.stringify(options.info.commit)}`,
    `--define=MEMPROXY_BUILD_DATE=${JSON.stringify(options.info.date)}`,
    ...(options.minify ? ["--minify", "--sourcemap=none"] : []),
    ...(options.target ? [`--target=${options.target}`] : []),
    "--outfile",
    options.outfile,
    "src/main.ts",
  ];
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Bun.argv.slice(2),
    options: {
      target: { type: "string" },
      outfile: { type: "string", default: "dist/memproxy" },
      minify: { type: "boolean", default: true },
      commit: { type: "string" },
      date: { type: "string" },
    },
  });
  const info = buildInfo();
  const cmd = buildCommand({
    target: values.target,
    outfile: values.outfile!,
    minify: values.minify!,
    info: { commit: values.commit ?? info.commit, date: values.date ?? info.date },
  });
  const proc = Bun.spawn(cmd, { cwd: root, stdout: "inherit", stderr: "inherit" });
  process.exit(await proc.exited);
}
