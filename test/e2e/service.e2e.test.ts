// `memproxy service` under a real systemd. The test starts a user manager (systemd --user, as a normal user
// has one) for a throwaway unprivileged uid, in mount and network namespaces of its own, so that nothing of
// the machine's is used or changed: not its service manager, its /home, or its ports. Then, through the
// compiled binary and the real systemctl: install writes the stack, the sandboxed unit runs memproxy, memproxy
// supervises the real LiteLLM, status checks the PIDs, requests are served, and uninstall removes it.
// Needs root (namespaces, cgroups, setpriv), systemd, util-linux, iproute2, python3 and LiteLLM.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, chownSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { parseDocument } from "yaml";
import { formatEnvLine, parseEnvFile } from "../../src/service-env-file.ts";
import { renderLaunchdPlist } from "../../src/service-launchd.ts";
import { compiledBinary, spawnMemproxy, type MemproxyProcess } from "../support/memproxy.ts";
import { runToEnd } from "../support/process.ts";

const ROOT = join(import.meta.dir, "..", "..");
const SUPPORT = join(ROOT, "test", "support");
const SYSTEMD = ["/lib/systemd/systemd", "/usr/lib/systemd/systemd"].find((p) => existsSync(p));
const PINNED = /LITELLM_VERSION="\$\{LITELLM_VERSION:-([^}]+)\}"/.exec(readFileSync(join(ROOT, "scripts", "setup-litellm.sh"), "utf8"))![1]!;
const LITELLM = process.env.MEMPROXY_LITELLM_BIN || join(process.env.MEMPROXY_CACHE_DIR || join(homedir(), ".cache", "memproxy"), `litellm-${PINNED}`, "venv", "bin", "litellm");

const missing = [
  process.getuid?.() === 0 ? "" : "root (for namespaces, cgroups and setpriv)",
  SYSTEMD ? "" : "systemd (apt-get install systemd)",
  ...["unshare", "nsenter", "setpriv", "systemctl", "ip", "python3"].map((t) => (Bun.which(t) ? "" : t)),
  existsSync(LITELLM) ? "" : `LiteLLM at ${LITELLM} (bash scripts/setup-litellm.sh)`,
  // Under a booted systemd, the test would have to use the machine's own manager: it runs where systemd is not PID 1.
  existsSync("/run/systemd/system") ? "a machine not booted with systemd (a container, as in CI)" : "",
].filter(Boolean);
if (missing.length && !process.env.CI) console.warn(`service.e2e.test.ts: skipping the tests under a real systemd; missing: ${missing.join(", ")}`);
test.if(missing.length > 0 && Boolean(process.env.CI))("what the tests under a real systemd need is there (required in CI)", () => {
  throw new Error(`missing: ${missing.join(", ")}`);
});

/** A uid no account has, for this run only. */
const UID = 50000 + (process.pid % 10000);
const HOME = "/home/memproxy-e2e";
const BIN = `${HOME}/.local/bin/memproxy`;
const ENV_FILE = `${HOME}/.config/memproxy/memproxy.env`;
const CONFIG = `${HOME}/.config/memproxy/config.yaml`;
const USER_PATH = `${dirname(LITELLM)}:/usr/local/bin:/usr/bin:/bin`;
/** Values the service must get exactly as written: $, quotes, spaces, backslashes, backticks. */
const TRICKY: Record<string, string> = {
  OPENAI_API_KEY: `sk-e2e $HOME "quoted" it's \\ done`,
  SUPERMEMORY_API_KEY: "sm_e2e with  spaces",
  E2E_SHELL: "$(id) `id` ${HOME} ~/x",
  ANTHROPIC_API_KEY: "",
};

// Sets up the delegated cgroups, mounts and loopback, then becomes the user's systemd --user. Arguments:
// uid, home, notify socket, systemd, the cgroup.procs files to join, "--", the paths under /root the user needs.
const LAUNCHER = `set -eu
uid=$1 home=$2 notify=$3 systemd=$4; shift 4
while [ "$1" != -- ]; do echo $$ > "$1"; shift; done; shift
ip link set lo up
mkdir -p /run/systemd && mount -t tmpfs tmpfs /run/systemd && mkdir /run/systemd/system
mount -t tmpfs -o mode=755 tmpfs /run/user && mkdir -m 700 /run/user/$uid && chown $uid:$uid /run/user/$uid
mount -t tmpfs -o mode=755 tmpfs /home && mkdir -m 700 "$home" && chown $uid:$uid "$home"
if [ $# -gt 0 ]; then
  stage=$(mktemp -d); i=0
  for p; do mkdir "$stage/$i"; mount --bind "$p" "$stage/$i"; i=$((i+1)); done
  mount -t tmpfs -o mode=755 tmpfs /root
  i=0; for p; do mkdir -p "$p"; mount --move "$stage/$i" "$p"; rmdir "$stage/$i"; i=$((i+1)); done
  rmdir "$stage"
fi
exec setpriv --reuid $uid --regid $uid --clear-groups env -i HOME="$home" XDG_RUNTIME_DIR=/run/user/$uid PATH=/usr/bin:/bin NOTIFY_SOCKET="$notify" "$systemd" --user
`;

describe.skipIf(missing.length > 0)("memproxy service under a real systemd user manager", () => {
  let dir: string;
  let cgroups: string[] = [];
  let manager: MemproxyProcess;
  let fsRoot: string;
  let masterKey: string;
  /** The service's output (there is no journald here): a FIFO the unit writes to and this test reads. */
  let serviceLog: MemproxyProcess;

  /** Runs `argv` as the user, inside the manager's namespaces. */
  async function asUser(argv: string[], path = USER_PATH): Promise<{ code: number; stdout: string; stderr: string }> {
    const env = [`HOME=${HOME}`, `XDG_RUNTIME_DIR=/run/user/${UID}`, `PATH=${path}`];
    return runToEnd(["nsenter", "-t", String(manager.proc.pid), "-m", "-n", "--wd", "--", "setpriv", "--reuid", String(UID), "--regid", String(UID), "--clear-groups", "env", "-i", ...env, ...argv]);
  }
  /** One request from inside the network namespace (memproxy listens on its 127.0.0.1). */
  async function request(url: string, init: object = {}): Promise<{ status: number; body: string }> {
    const r = await runToEnd(["nsenter", "-t", String(manager.proc.pid), "-n", "--", process.execPath, join(SUPPORT, "service-fetch-fixture.ts"), url, JSON.stringify(init)]);
    if (r.code !== 0) throw new Error(`request to ${url} failed: ${r.stderr}`);
    return JSON.parse(r.stdout);
  }
  /** A path of the namespaces' file system (/home is theirs), as seen from here. */
  const inside = (path: string) => `${fsRoot}${path}`;
  /** Writes a file into the user's home, owned by the user, creating its folders. */
  function writeAsUser(path: string, text: string, mode = 0o644): void {
    mkdirSync(inside(dirname(path)), { recursive: true, mode: 0o755 });
    for (let d = dirname(path); d.startsWith(HOME); d = dirname(d)) chownSync(inside(d), UID, UID);
    writeFileSync(inside(path), text, { mode });
    chmodSync(inside(path), mode);
    chownSync(inside(path), UID, UID);
  }
  async function mainPid(): Promise<number> {
    const r = await asUser(["systemctl", "--user", "show", "-p", "MainPID", "--value", "memproxy.service"]);
    return Number(r.stdout.trim());
  }
  /**
   * Resolves with the first line of the service's output from line `from` on that has `needle`; rejects
   * when memproxy or LiteLLM fails first.
   */
  function inLog(needle: string, from: number): Promise<string> {
    const failed = serviceLog.waitForLine(/LiteLLM exited|could not start|address.*in use/i, from).then((line) => {
      throw new Error(`the service failed: ${line}\nits output:\n${serviceLog.lines.slice(from).join("\n")}`);
    });
    return Promise.race([serviceLog.waitForLine(needle, from), failed]);
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "memproxy-service-e2e-"));
    chmodSync(dir, 0o755);
    cgroups = delegateCgroups(`memproxy-e2e-${process.pid}`, UID);
    const notifyPath = join(dir, "notify.sock");
    const notify = spawnMemproxy(["python3", join(SUPPORT, "service-notify-fixture.py"), notifyPath]);
    await notify.waitForLine("listening");
    manager = spawnMemproxy(
      ["unshare", "--mount", "--net", "--propagation", "private", "sh", "-c", LAUNCHER, "sh", String(UID), HOME, notifyPath, SYSTEMD!, ...cgroups.map((c) => join(c, "cgroup.procs")), "--", ...pathsUnderRoot(LITELLM)],
      { env: {} },
    );
    await Promise.race([notify.waitForLine("READY=1"), manager.exited.then((code) => Promise.reject(new Error(`systemd --user exited ${code}:\n${manager.lines.join("\n")}`)))]);
    fsRoot = `/proc/${manager.proc.pid}/root`;

    writeAsUser(BIN, "", 0o755);
    copyFileSync(await compiledBinary(), inside(BIN));
    // An env file the user wrote: values that need quoting, no LITELLM_MASTER_KEY yet.
    writeAsUser(ENV_FILE, Object.entries(TRICKY).map(([k, v]) => formatEnvLine(k, v)).join("\n") + "\n", 0o600);
    // There is no journald here: the service's output goes to a file (a drop-in; the unit is install's).
    // In this test's folder, which the manager sees too (/tmp is shared with it). The reader holds the FIFO
    // open for writing as well, so that it never reads an end of file when the service restarts.
    const fifo = join(dir, "service.log");
    expect((await runToEnd(["mkfifo", "-m", "600", fifo])).code).toBe(0);
    chownSync(fifo, UID, UID);
    serviceLog = spawnMemproxy(["sh", "-c", 'exec <>"$0"; exec cat', fifo]);
    writeAsUser(`${HOME}/.config/systemd/user/memproxy.service.d/e2e-log.conf`, `[Service]\nStandardOutput=file:${fifo}\nStandardError=inherit\n`);
  });

  afterAll(async () => {
    if (manager) {
      manager.proc.kill("SIGTERM");
      await manager.exited;
    }
    if (serviceLog) {
      serviceLog.proc.kill();
      await serviceLog.exited;
    }
    for (const c of cgroups) removeCgroup(c);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test("install writes the stack, the unit starts memproxy and memproxy LiteLLM, and status finds the service's own memproxy", async () => {
    const from = serviceLog.lines.length;
    const install = await asUser([BIN, "service", "install"]);
    expect(install.stderr).toBe("");
    expect(install.code).toBe(0);
    expect(install.stdout).toContain(`LiteLLM:  ${LITELLM} (on PATH), started by memproxy`);
    expect(install.stdout).toContain("LITELLM_MASTER_KEY generated now");
    expect(install.stdout).toContain(`Still empty in ${ENV_FILE}: ANTHROPIC_API_KEY.`);
    masterKey = parseEnvFile(readFileSync(inside(ENV_FILE), "utf8")).vars.LITELLM_MASTER_KEY!;
    expect(masterKey).toMatch(/^sk-[0-9a-f]{64}$/);

    await inLog("LiteLLM is ready", from);
    const status = await asUser([BIN, "service", "status"]);
    const pid = await mainPid();
    expect(pid).toBeGreaterThan(0);
    expect(status.stdout).toContain(`systemd:   active (running), main PID ${pid}`);
    expect(status.stdout).toContain(`answering: http://127.0.0.1:8764: the service's memproxy (pid ${pid}), healthy`);
    expect(status.code).toBe(0);

    // The generated config through memproxy to LiteLLM: its models, behind the generated master key.
    const models = await request("http://127.0.0.1:8764/v1/models", { headers: { authorization: `Bearer ${masterKey}` } });
    expect(models.status).toBe(200);
    // (LiteLLM lists the wildcard claude-* model by no name.)
    expect(JSON.parse(models.body).data.map((m: { id: string }) => m.id)).toContain("gpt-4o");
    expect((await request("http://127.0.0.1:8764/v1/models")).status).toBe(401);
  });

  test("memproxy and the LiteLLM it started both run sandboxed", async () => {
    const pid = await mainPid();
    const health = JSON.parse((await request("http://127.0.0.1:8764/health")).body);
    const litellm = health.litellm.pid as number;
    expect(readFileSync(`/proc/${litellm}/cgroup`, "utf8")).toContain("memproxy.service");
    for (const p of [pid, litellm]) {
      const status = readFileSync(`/proc/${p}/status`, "utf8");
      expect(status).toMatch(/^NoNewPrivs:\s+1$/m);
      expect(status).toMatch(/^Seccomp:\s+2$/m);
      expect(status).toMatch(/^CapBnd:\s+0+$/m);
      // PrivateUsers=true: a user namespace with only the user itself in it.
      expect(readFileSync(`/proc/${p}/uid_map`, "utf8").trim().split(/\s+/)).toEqual([String(UID), String(UID), "1"]);
      const mounts = readFileSync(`/proc/${p}/mountinfo`, "utf8").trim().split("\n").map((l) => l.split(" "));
      const at = (point: string) => mounts.filter((m) => m[4] === point).at(-1)!;
      expect(at("/")[5]!.split(",")).toContain("ro"); // ProtectSystem=strict
      expect(at("/home")[5]!.split(",")).toContain("ro"); // ProtectHome=read-only
      expect(at("/tmp")[3]).toMatch(/systemd-private-.*-memproxy\.service-/); // PrivateTmp=true
    }
  });

  test("systemd read the env file as /bin/sh (the launchd wrapper) and memproxy's parser do", async () => {
    const pid = await mainPid();
    const environ = Object.fromEntries(
      readFileSync(`/proc/${pid}/environ`, "utf8")
        .split("\0")
        .filter(Boolean)
        .map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]),
    );
    const expected = { ...TRICKY, LITELLM_MASTER_KEY: masterKey };
    const names = Object.keys(expected);
    const pick = (o: Record<string, string | null | undefined>) => Object.fromEntries(names.map((n) => [n, o[n]]));
    expect(pick(environ)).toEqual(expected);
    expect(pick(parseEnvFile(readFileSync(inside(ENV_FILE), "utf8")).vars)).toEqual(expected);
    const wrapper = /<string>-c<\/string>\s*<string>([^<]*)<\/string>/.exec(renderLaunchdPlist({ argv: ["x"], path: "/bin", envFile: "/e", userNamespaces: false }, "/l"))![1]!;
    const sh = await runToEnd(["/bin/sh", "-c", wrapper, inside(ENV_FILE), process.execPath, join(SUPPORT, "service-env-fixture.ts")], { env: { PATH: "/usr/bin:/bin", MEMPROXY_FIXTURE_PRINT: names.join(",") } });
    expect(JSON.parse(sh.stdout).env).toEqual(expected);
    // Only the unit's PATH: memproxy's folder, LiteLLM's, the system's.
    expect(environ.PATH).toBe(`${dirname(BIN)}:${dirname(LITELLM)}:/usr/local/bin:/usr/bin:/bin`);
  });

  test("lines install refuses are ones systemd really reads otherwise than /bin/sh", async () => {
    const file = `${HOME}/refused.env`;
    writeAsUser(file, 'A=a b\nB="$HOME/x"\nC= c\n', 0o600);
    writeAsUser(`${HOME}/.config/systemd/user/envdump.service`, `[Service]\nType=oneshot\nEnvironmentFile=${file}\nExecStart=/usr/bin/env\nStandardOutput=file:${HOME}/envdump.out\n`);
    expect((await asUser(["systemctl", "--user", "daemon-reload"])).code).toBe(0);
    const started = await asUser(["systemctl", "--user", "start", "envdump.service"]);
    expect(started.stderr).toBe("");
    const systemd = Object.fromEntries(readFileSync(inside(`${HOME}/envdump.out`), "utf8").trim().split("\n").map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]));
    expect({ A: systemd.A, B: systemd.B, C: systemd.C }).toEqual({ A: "a b", B: "$HOME/x", C: "c" });
    const sh = await runToEnd(["/bin/sh", "-c", `set -a; . "$0" 2>/dev/null; printf '%s|%s|%s' "$A" "$B" "$C"`, inside(file)], { env: { PATH: "/usr/bin:/bin", HOME: "/h" } });
    expect(sh.stdout).toBe("|/h/x|");
    expect(parseEnvFile(readFileSync(inside(file), "utf8")).problems.map((p) => p.line)).toEqual([1, 2, 3]);
  });

  test("a completion goes through memproxy, LiteLLM and a provider under the sandbox; the id and the env file's key arrive as written", async () => {
    const provider = spawnMemproxy(["nsenter", "-t", String(manager.proc.pid), "-n", "--", process.execPath, join(SUPPORT, "service-provider-fixture.ts")]);
    try {
      const { port } = JSON.parse(await provider.waitForLine('"port"'));
      // The generated config, plus one model served by the provider inside the namespace.
      const doc = parseDocument(readFileSync(inside(CONFIG), "utf8"));
      doc.addIn(["model_list"], doc.createNode({ model_name: "e2e-model", litellm_params: { model: "openai/e2e-model", api_base: `http://127.0.0.1:${port}/v1`, api_key: "os.environ/OPENAI_API_KEY" } }));
      writeAsUser(CONFIG, doc.toString());
      const from = serviceLog.lines.length;
      expect((await asUser(["systemctl", "--user", "restart", "memproxy.service"])).code).toBe(0);
      await inLog("LiteLLM is ready", from);

      const res = await request("http://127.0.0.1:8764/v1/chat/completions", {
        method: "POST",
        headers: { authorization: `Bearer ${masterKey}`, "content-type": "application/json", "user-agent": "claude-cli/2.1.197 (external, cli)" },
        body: JSON.stringify({ model: "e2e-model", messages: [{ role: "user", content: "hello from the sandbox" }] }),
      });
      expect(res.status).toBe(200);
      const arrived = JSON.parse(await provider.waitForLine('"/v1/chat/completions"'));
      expect(arrived.headers["x-sm-user-id"]).toBe("claude-cli");
      expect(arrived.headers.authorization).toBe(`Bearer ${TRICKY.OPENAI_API_KEY}`);
    } finally {
      provider.proc.kill();
      await provider.exited;
    }
  });

  test("uninstall stops the service and removes its unit", async () => {
    const r = await asUser([BIN, "service", "uninstall"]);
    expect(r.code).toBe(0);
    expect(existsSync(inside(`${HOME}/.config/systemd/user/memproxy.service`))).toBe(false);
    expect(existsSync(inside(CONFIG)) && existsSync(inside(ENV_FILE))).toBe(true);
    expect(await mainPid()).toBe(0);
    const status = await asUser([BIN, "service", "status"]);
    expect(status.code).toBe(4);
  });

  test("where user namespaces are not available, install writes the unit with its system-call filters only, and it runs", async () => {
    // A user whose unshare fails, as on Ubuntu 24.04 (kernel.apparmor_restrict_unprivileged_userns=1).
    writeAsUser(`${HOME}/no-userns/unshare`, "#!/bin/sh\necho 'unshare: write failed /proc/self/uid_map: Operation not permitted' >&2\nexit 1\n", 0o755);
    writeAsUser(`${HOME}/plain.yaml`, "litellm_backend_url: http://127.0.0.1:9\n");
    const install = await asUser([BIN, "service", "install", "--config", `${HOME}/plain.yaml`], `${HOME}/no-userns:${USER_PATH}`);
    expect(install.code).toBe(0);
    expect(install.stderr).toContain("your user cannot create user namespaces here");
    const status = await asUser([BIN, "service", "status"]);
    const pid = await mainPid();
    expect(status.stdout).toContain(`the service's memproxy (pid ${pid})`);
    const proc = readFileSync(`/proc/${pid}/status`, "utf8");
    expect(proc).toMatch(/^NoNewPrivs:\s+1$/m);
    expect(proc).toMatch(/^Seccomp:\s+2$/m);
    // No user namespace, and the file system as it is.
    expect(readFileSync(`/proc/${pid}/uid_map`, "utf8").trim().split(/\s+/)).toEqual(["0", "0", "4294967295"]);
    expect(await asUser([BIN, "service", "uninstall"])).toMatchObject({ code: 0 });
  });
});

/**
 * Creates cgroup `name` under this process's own cgroup in each hierarchy systemd uses (cgroup2, and the
 * named v1 "systemd" one on hybrid machines), owned by `uid`: a user manager runs in a delegated subtree.
 */
function delegateCgroups(name: string, uid: number): string[] {
  const own = readFileSync("/proc/self/cgroup", "utf8").trim().split("\n").map((l) => l.split(":"));
  const mounts = readFileSync("/proc/self/mountinfo", "utf8")
    .trim()
    .split("\n")
    .map((l) => {
      const [pre, post] = l.split(" - ");
      const [type, , options] = post!.split(" ");
      return { point: pre!.split(" ")[4]!, type, options: options!.split(",") };
    });
  const dirs: string[] = [];
  const v2 = mounts.find((m) => m.type === "cgroup2");
  const v2path = own.find((c) => c[0] === "0")?.[2];
  if (v2 && v2path !== undefined) dirs.push(join(v2.point, v2path, name));
  const v1 = mounts.find((m) => m.type === "cgroup" && m.options.includes("name=systemd"));
  const v1path = own.find((c) => c[1] === "name=systemd")?.[2];
  if (v1 && v1path !== undefined) dirs.push(join(v1.point, v1path, name));
  for (const d of dirs) {
    mkdirSync(d);
    for (const f of ["", ...readdirSync(d)]) chownSync(join(d, f), uid, uid);
  }
  return dirs;
}

/** Removes a cgroup and the ones the manager made in it, deepest first (they are empty once it exited). */
function removeCgroup(dir: string): void {
  for (const entry of readdirSync(dir, { withFileTypes: true })) if (entry.isDirectory()) removeCgroup(join(dir, entry.name));
  try {
    rmdirSync(dir);
  } catch (err) {
    console.warn(`service.e2e.test.ts: could not remove cgroup ${dir}: ${(err as Error).message}`);
  }
}

/** The folders under /root that running `litellm` needs (its venv, its Python), when others cannot enter /root. */
function pathsUnderRoot(litellm: string): string[] {
  if (statSync("/root").mode & 0o001) return [];
  // Either may be there without the other: a cache elsewhere (CI's /var/cache) still has a venv made from a
  // Python under /root (pyenv).
  const venv = dirname(dirname(litellm));
  const home = /^home\s*=\s*(.+)$/m.exec(readFileSync(join(venv, "pyvenv.cfg"), "utf8"))?.[1]?.trim();
  const python = home ? dirname(home) : undefined;
  return [venv, python].filter((p): p is string => p !== undefined && p.startsWith("/root/"));
}
