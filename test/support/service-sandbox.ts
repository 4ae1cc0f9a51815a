// A machine for `memproxy service` tests: a temporary HOME, and a PATH whose systemctl and launchctl are
// stand-ins that record their calls (service-recorder-fixture.ts), so that no test reaches the real ones.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { serviceCommand, type ServiceEnv } from "../../src/service.ts";

const RECORDER = join(import.meta.dir, "service-recorder-fixture.ts");
/** How the sandboxed service runs memproxy: bun on the source. */
export const PROGRAM = [process.execPath, join(import.meta.dir, "..", "..", "src", "main.ts")];

/**
 * A temporary HOME (its name has a space and a % to exercise quoting), a PATH whose systemctl/launchctl
 * record their calls and whose unshare says whether user namespaces work (MEMPROXY_FIXTURE_USERNS=1: no),
 * and (unless `litellm: false`) a `litellm` on that PATH. Removed when disposed.
 */
export function sandbox(platform: "linux" | "darwin", options: { litellm?: boolean } = {}) {
  const root = mkdtempSync(join(tmpdir(), "memproxy-service-"));
  const home = join(root, "home of %u");
  const bin = join(root, "bin");
  mkdirSync(home);
  mkdirSync(bin);
  const callsFile = join(root, "calls.jsonl");
  for (const name of ["systemctl", "launchctl"]) {
    writeFileSync(join(bin, name), `#!/bin/sh\nexec '${process.execPath}' '${RECORDER}' ${name} "$@"\n`, { mode: 0o755 });
  }
  writeFileSync(
    join(bin, "unshare"),
    `#!/bin/sh\n[ "$MEMPROXY_FIXTURE_USERNS" = 1 ] && { echo "unshare: write failed /proc/self/uid_map: Operation not permitted" >&2; exit 1; }\nexit 0\n`,
    { mode: 0o755 },
  );
  const litellm = join(bin, "litellm");
  if (options.litellm !== false) writeFileSync(litellm, "#!/bin/sh\nexit 0\n", { mode: 0o755 });
  const vars: Record<string, string | undefined> = { PATH: `${bin}:/usr/bin:/bin`, HOME: home, MEMPROXY_FIXTURE_CALLS: callsFile };
  let out = "";
  let err = "";
  const io = { out: (t: string) => void (out += t), err: (t: string) => void (err += t) };
  const env = (): Partial<ServiceEnv> => ({ platform, home, vars, uid: 501, program: PROGRAM, fromSource: false, cwd: root });
  return {
    root,
    home,
    bin,
    litellm,
    vars,
    io,
    run: (...args: string[]) => serviceCommand(args, io, env()),
    /** The systemctl/launchctl calls so far, as [name, ...args]. */
    calls: (): string[][] => (existsSync(callsFile) ? readFileSync(callsFile, "utf8").trim().split("\n").map((l) => JSON.parse(l)) : []),
    get out() {
      return out;
    },
    get err() {
      return err;
    },
    /** Forgets the output and the calls so far. */
    reset() {
      out = err = "";
      rmSync(callsFile, { force: true });
    },
    [Symbol.dispose]() {
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/** Where the systemd service's files go in `home`. */
export function linuxFiles(home: string) {
  const dir = join(home, ".config", "memproxy");
  return { unit: join(home, ".config", "systemd", "user", "memproxy.service"), config: join(dir, "config.yaml"), envFile: join(dir, "memproxy.env") };
}

/** Where the launchd agent's files go in `home`. */
export function macFiles(home: string) {
  const dir = join(home, "Library", "Application Support", "memproxy");
  return {
    plist: join(home, "Library", "LaunchAgents", "local.memproxy.plist"),
    rotatePlist: join(home, "Library", "LaunchAgents", "local.memproxy.logrotate.plist"),
    config: join(dir, "config.yaml"),
    envFile: join(dir, "memproxy.env"),
    logDir: join(home, "Library", "Logs", "memproxy"),
  };
}
