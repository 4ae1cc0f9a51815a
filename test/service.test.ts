// `memproxy service`: systemd and launchd units written into a temporary HOME, with stand-ins for systemctl/launchctl.
import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DEFAULT_CONFIG_TEXT } from "../src/config.ts";
import { launchdProgramArgs, serviceCommand, systemdProgramArgs, type ServiceEnv } from "../src/service.ts";
import { compiledBinary, startProxy } from "./support/memproxy.ts";

const ROOT = join(import.meta.dir, "..");
const RECORDER = join(import.meta.dir, "support", "service-recorder-fixture.ts");
const ENV_PRINTER = join(import.meta.dir, "support", "service-env-fixture.ts");
const PROGRAM = [process.execPath, join(ROOT, "src", "main.ts")];
const SYSTEMD_ANALYZE = Bun.which("systemd-analyze");

const roots: string[] = [];
afterAll(() => {
  for (const r of roots) rmSync(r, { recursive: true, force: true });
});

/** A temporary HOME (its name has a space and a % to exercise quoting) and a PATH whose systemctl/launchctl record their calls. */
function sandbox(platform: "linux" | "darwin") {
  const root = mkdtempSync(join(tmpdir(), "memproxy-service-"));
  roots.push(root);
  const home = join(root, "home of %u");
  const bin = join(root, "bin");
  mkdirSync(home);
  mkdirSync(bin);
  const callsFile = join(root, "calls.jsonl");
  for (const name of ["systemctl", "launchctl"]) {
    writeFileSync(join(bin, name), `#!/bin/sh\nexec '${process.execPath}' '${RECORDER}' ${name} "$@"\n`, { mode: 0o755 });
  }
  const vars: Record<string, string | undefined> = { PATH: `${bin}:/usr/bin:/bin`, MEMPROXY_FIXTURE_CALLS: callsFile };
  let out = "";
  let err = "";
  const io = { out: (t: string) => void (out += t), err: (t: string) => void (err += t) };
  const env = (): Partial<ServiceEnv> => ({ platform, home, vars, uid: 501, program: PROGRAM, fromSource: false, cwd: root });
  return {
    root,
    home,
    bin,
    vars,
    io,
    run: (...args: string[]) => serviceCommand(args, io, env()),
    calls: (): string[][] => (existsSync(callsFile) ? readFileSync(callsFile, "utf8").trim().split("\n").map((l) => JSON.parse(l)) : []),
    get out() {
      return out;
    },
    get err() {
      return err;
    },
    reset() {
      out = err = "";
      rmSync(callsFile, { force: true });
    },
  };
}

const linuxFiles = (home: string) => {
  const dir = join(home, ".config", "memproxy");
  return { unit: join(home, ".config", "systemd", "user", "memproxy.service"), config: join(dir, "config.yaml"), envFile: join(dir, "memproxy.env") };
};
const macFiles = (home: string) => {
  const dir = join(home, "Library", "Application Support", "memproxy");
  return {
    plist: join(home, "Library", "LaunchAgents", "local.memproxy.plist"),
    config: join(dir, "config.yaml"),
    envFile: join(dir, "memproxy.env"),
    logDir: join(home, "Library", "Logs", "memproxy"),
  };
};

/** Parses a property list with the platform's own parser (plutil on macOS, else Python's plistlib). */
async function parsePlist(path: string): Promise<any> {
  const cmd = Bun.which("plutil")
    ? ["plutil", "-convert", "json", "-o", "-", path]
    : ["python3", "-c", "import json, plistlib, sys; print(json.dumps(plistlib.load(open(sys.argv[1], 'rb'))))", path];
  const proc = Bun.spawn(cmd, { stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([proc.stdout.text(), proc.stderr.text(), proc.exited]);
  if (code !== 0) throw new Error(`${cmd[0]} rejected ${path}:\n${stderr}`);
  return JSON.parse(stdout);
}

/** Runs `systemd-analyze verify --user` on a unit; returns its complaints ("" when none). */
async function systemdVerify(unit: string, root: string): Promise<string> {
  const runtime = join(root, "runtime");
  mkdirSync(runtime, { recursive: true, mode: 0o700 });
  const proc = Bun.spawn([SYSTEMD_ANALYZE!, "verify", "--user", unit], {
    env: { ...process.env, XDG_RUNTIME_DIR: runtime },
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr, code] = await Promise.all([proc.stdout.text(), proc.stderr.text(), proc.exited]);
  // verify reports some problems (an unknown Restart= value, say) only as warnings, with exit code 0.
  return code === 0 && !stderr.trim() ? "" : `exit ${code}\n${stdout}${stderr}`;
}

describe("service install on Linux (systemd user unit)", () => {
  test("a first install writes the default config, a private env file and the unit, then enables and starts it", async () => {
    const s = sandbox("linux");
    s.vars.OPENAI_API_KEY = "sk-from-the-shell-never-in-a-unit";
    expect(await s.run("install")).toBe(0);
    const f = linuxFiles(s.home);

    expect(readFileSync(f.config, "utf8").endsWith(DEFAULT_CONFIG_TEXT)).toBe(true);
    expect(s.out).toContain(f.config);
    expect(statSync(f.envFile).mode & 0o777).toBe(0o600);

    const unit = readFileSync(f.unit, "utf8");
    expect(systemdProgramArgs(unit)).toEqual([...PROGRAM, "--config", f.config]);
    expect(unit).toContain(`EnvironmentFile=-${f.envFile.replace(/%/g, "%%")}\n`);
    expect(unit).toMatch(/^Restart=on-failure$/m);
    expect(unit).toMatch(/^WantedBy=default\.target$/m);
    expect(unit).not.toContain("sk-from-the-shell");
    expect(unit).not.toContain("{{");

    expect(s.calls()).toEqual([
      ["systemctl", "--user", "daemon-reload"],
      ["systemctl", "--user", "enable", "memproxy.service"],
      ["systemctl", "--user", "restart", "memproxy.service"],
    ]);
    expect(s.out).toContain("journalctl --user -u memproxy");
  });

  test.skipIf(!SYSTEMD_ANALYZE)("the unit passes systemd-analyze verify", async () => {
    const s = sandbox("linux");
    expect(await s.run("install")).toBe(0);
    expect(await systemdVerify(linuxFiles(s.home).unit, s.root)).toBe("");
  });

  test("a reinstall keeps an edited config and env file, rewrites the unit and restarts", async () => {
    const s = sandbox("linux");
    expect(await s.run("install")).toBe(0);
    const f = linuxFiles(s.home);
    writeFileSync(f.config, "memproxy:\n  listen:\n    port: 9999\n");
    writeFileSync(f.envFile, "OPENAI_API_KEY=sk-kept\n");
    writeFileSync(f.unit, "stale");
    s.reset();

    expect(await s.run("install")).toBe(0);
    expect(readFileSync(f.config, "utf8")).toBe("memproxy:\n  listen:\n    port: 9999\n");
    expect(readFileSync(f.envFile, "utf8")).toBe("OPENAI_API_KEY=sk-kept\n");
    expect(systemdProgramArgs(readFileSync(f.unit, "utf8"))).toEqual([...PROGRAM, "--config", f.config]);
    expect(s.out).toContain("http://127.0.0.1:9999");
    expect(s.calls().map((c) => c[2])).toEqual(["daemon-reload", "enable", "restart"]);
  });

  test("an env file others can read gets a warning with the chmod to run", async () => {
    const s = sandbox("linux");
    const f = linuxFiles(s.home);
    mkdirSync(join(s.home, ".config", "memproxy"), { recursive: true });
    writeFileSync(f.envFile, "OPENAI_API_KEY=sk-x\n");
    chmodSync(f.envFile, 0o644);
    expect(await s.run("install")).toBe(0);
    expect(s.err).toContain("others can read it (mode 644)");
    expect(s.err).toContain("chmod 600");
  });

  test("XDG_CONFIG_HOME places the config and the unit", async () => {
    const s = sandbox("linux");
    const xdg = join(s.root, "xdg");
    s.vars.XDG_CONFIG_HOME = xdg;
    expect(await s.run("install")).toBe(0);
    expect(existsSync(join(xdg, "memproxy", "config.yaml"))).toBe(true);
    expect(existsSync(join(xdg, "systemd", "user", "memproxy.service"))).toBe(true);
    expect(existsSync(join(s.home, ".config"))).toBe(false);
  });

  test("--config FILE is resolved, validated with the env file's variables, and referenced, not copied", async () => {
    const s = sandbox("linux");
    const f = linuxFiles(s.home);
    mkdirSync(join(s.home, ".config", "memproxy"), { recursive: true });
    writeFileSync(f.envFile, "MEMPROXY_PORT=8999\n", { mode: 0o600 });
    writeFileSync(join(s.root, "team.yaml"), "memproxy:\n  listen:\n    port: ${MEMPROXY_PORT}\n");
    expect(await s.run("install", "--config", "team.yaml")).toBe(0);
    expect(systemdProgramArgs(readFileSync(f.unit, "utf8"))).toEqual([...PROGRAM, "--config", join(s.root, "team.yaml")]);
    expect(existsSync(f.config)).toBe(false);
    expect(s.out).toContain("http://127.0.0.1:8999");
  });

  test("an invalid or missing --config installs nothing and says why", async () => {
    const s = sandbox("linux");
    writeFileSync(join(s.root, "bad.yaml"), "memproxy:\n  listen:\n    port: 70000\n");
    expect(await s.run("install", "--config", "bad.yaml")).toBe(1);
    expect(s.err).toContain(`${join(s.root, "bad.yaml")}: memproxy.listen.port: must be at most 65535`);
    expect(s.err).toContain("the service was not installed");

    // The service will not see the shell's variables, only the env file's.
    s.vars.ONLY_IN_THE_SHELL = "8999";
    writeFileSync(join(s.root, "shell.yaml"), "memproxy:\n  listen:\n    port: ${ONLY_IN_THE_SHELL}\n");
    expect(await s.run("install", "--config", "shell.yaml")).toBe(1);
    expect(s.err).toContain("environment variable ONLY_IN_THE_SHELL is not set");
    expect(s.err).toContain(`put them in ${linuxFiles(s.home).envFile}`);

    expect(await s.run("install", "--config", "missing.yaml")).toBe(1);
    expect(s.err).toContain(`${join(s.root, "missing.yaml")}: cannot read config: file not found`);
    expect(existsSync(join(s.home, ".config"))).toBe(false);
    expect(s.calls()).toEqual([]);
  });

  test("--dry-run prints the unit and the commands, and writes and runs nothing", async () => {
    const s = sandbox("linux");
    expect(await s.run("install", "--dry-run")).toBe(0);
    const f = linuxFiles(s.home);
    expect(s.out).toContain(`would write the default config: ${f.config}`);
    expect(s.out).toContain("    ExecStart=");
    expect(s.out).toContain("would run: systemctl --user enable memproxy.service");
    expect(existsSync(join(s.home, ".config"))).toBe(false);
    expect(s.calls()).toEqual([]);
  });

  test("without systemctl on PATH nothing is written, and the message says how to run memproxy instead", async () => {
    const s = sandbox("linux");
    s.vars.PATH = join(s.root, "empty");
    expect(await s.run("install")).toBe(1);
    expect(s.err).toContain("systemctl was not found on PATH");
    expect(s.err).toContain("--config");
    expect(existsSync(join(s.home, ".config"))).toBe(false);
  });

  test("a failing systemctl is reported with its own message and what to do", async () => {
    const s = sandbox("linux");
    s.vars.MEMPROXY_FIXTURE_FAIL = "restart";
    expect(await s.run("install")).toBe(1);
    expect(s.err).toContain("'systemctl --user restart memproxy.service' failed (exit 1): Failed to connect to bus");
    expect(s.err).toContain("loginctl enable-linger");
  });
});

describe("service install on macOS (launchd agent)", () => {
  test("writes a property list that parses, with restart on failure, logs in ~/Library/Logs and no keys in it", async () => {
    const s = sandbox("darwin");
    s.vars.OPENAI_API_KEY = "sk-from-the-shell-never-in-a-plist";
    expect(await s.run("install")).toBe(0);
    const f = macFiles(s.home);
    expect(readFileSync(f.config, "utf8").endsWith(DEFAULT_CONFIG_TEXT)).toBe(true);
    expect(statSync(f.envFile).mode & 0o777).toBe(0o600);
    expect(statSync(f.logDir).isDirectory()).toBe(true);

    const plist = await parsePlist(f.plist);
    expect(plist.Label).toBe("local.memproxy");
    expect(plist.ProgramArguments.slice(0, 2)).toEqual(["/bin/sh", "-c"]);
    expect(plist.ProgramArguments.slice(3)).toEqual([f.envFile, ...PROGRAM, "--config", f.config]);
    expect(launchdProgramArgs(readFileSync(f.plist, "utf8"))).toEqual([...PROGRAM, "--config", f.config]);
    expect(plist.KeepAlive).toEqual({ SuccessfulExit: false });
    expect(plist.RunAtLoad).toBe(true);
    expect(plist.StandardOutPath).toBe(join(f.logDir, "memproxy.log"));
    expect(plist.StandardErrorPath).toBe(join(f.logDir, "memproxy.error.log"));
    expect(Object.keys(plist.EnvironmentVariables)).toEqual(["PATH"]);
    expect(readFileSync(f.plist, "utf8")).not.toContain("sk-from-the-shell");

    expect(s.calls()).toEqual([
      ["launchctl", "enable", "gui/501/local.memproxy"],
      ["launchctl", "bootstrap", "gui/501", f.plist],
    ]);
    s.reset();
    expect(await s.run("install")).toBe(0);
    expect(s.calls()[0]).toEqual(["launchctl", "bootout", "gui/501/local.memproxy"]);
  });

  test("the agent's command loads the API keys from the env file and runs memproxy with the config", async () => {
    const s = sandbox("darwin");
    const f = macFiles(s.home);
    mkdirSync(join(s.home, "Library", "Application Support", "memproxy"), { recursive: true });
    writeFileSync(f.envFile, "# keys\nOPENAI_API_KEY=sk-loaded-from-env-file\n", { mode: 0o600 });
    const env = { platform: "darwin", home: s.home, vars: s.vars, uid: 501, program: [process.execPath, ENV_PRINTER], cwd: s.root };
    expect(await serviceCommand(["install"], s.io, env)).toBe(0);

    // Run exactly what launchd would run.
    const { ProgramArguments } = await parsePlist(f.plist);
    const proc = Bun.spawn(ProgramArguments, { env: { PATH: "/usr/bin:/bin" }, stdout: "pipe", stderr: "pipe" });
    const [stdout, stderr, code] = await Promise.all([proc.stdout.text(), proc.stderr.text(), proc.exited]);
    expect(stderr).toBe("");
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toEqual({ args: ["--config", f.config], key: "sk-loaded-from-env-file" });
  });
});

describe("service status and uninstall", () => {
  test("status says not installed (exit 4), then answering (0) while memproxy runs, then not answering (3)", async () => {
    const s = sandbox("linux");
    expect(await s.run("status")).toBe(4);
    expect(s.out).toContain("not installed");

    await using proxy = startProxy("");
    writeFileSync(join(s.root, "c.yaml"), `memproxy:\n  listen:\n    port: ${proxy.port}\n`);
    expect(await s.run("install", "--config", "c.yaml")).toBe(0);
    s.reset();
    expect(await s.run("status")).toBe(0);
    expect(s.out).toContain("Active: active (running)");
    expect(s.out).toContain(`answering: http://127.0.0.1:${proxy.port}`);
    expect(s.calls()).toEqual([["systemctl", "--user", "status", "memproxy.service", "--no-pager", "--lines=5"]]);

    await proxy.stop(0);
    s.reset();
    expect(await s.run("status")).toBe(3);
    expect(s.out).toContain(`not answering: http://127.0.0.1:${proxy.port}/health/liveliness`);
  });

  test("status on macOS shows launchd's state lines", async () => {
    const s = sandbox("darwin");
    expect(await s.run("install")).toBe(0);
    s.reset();
    await s.run("status");
    expect(s.out).toContain("state = running");
    expect(s.out).toContain("pid = 4242");
    expect(s.out).not.toContain("active count");
  });

  test("uninstall stops and removes the unit and keeps the config and the env file", async () => {
    const s = sandbox("linux");
    expect(await s.run("install")).toBe(0);
    const f = linuxFiles(s.home);
    s.reset();
    expect(await s.run("uninstall", "--dry-run")).toBe(0);
    expect(existsSync(f.unit)).toBe(true);
    expect(s.calls()).toEqual([]);

    expect(await s.run("uninstall")).toBe(0);
    expect(existsSync(f.unit)).toBe(false);
    expect(existsSync(f.config) && existsSync(f.envFile)).toBe(true);
    expect(s.calls()).toEqual([
      ["systemctl", "--user", "disable", "--now", "memproxy.service"],
      ["systemctl", "--user", "daemon-reload"],
    ]);
    s.reset();
    expect(await s.run("uninstall")).toBe(0);
    expect(s.out).toContain("not installed");
  });

  test("uninstall on macOS boots the agent out and removes the plist", async () => {
    const s = sandbox("darwin");
    expect(await s.run("install")).toBe(0);
    s.reset();
    expect(await s.run("uninstall")).toBe(0);
    expect(existsSync(macFiles(s.home).plist)).toBe(false);
    expect(s.calls()).toEqual([["launchctl", "bootout", "gui/501/local.memproxy"]]);
  });

  test("usage errors and unsupported platforms", async () => {
    const s = sandbox("linux");
    expect(await s.run()).toBe(2);
    expect(await s.run("restart")).toBe(2);
    expect(s.err).toContain("unknown service command 'restart'");
    expect(await s.run("status", "--config", "x.yaml")).toBe(2);
    expect(await serviceCommand(["install"], s.io, { platform: "win32", home: s.home, vars: s.vars, program: PROGRAM })).toBe(1);
    expect(s.err).toContain("supports Linux (systemd) and macOS (launchd), not win32");
  });
});

describe("service through the compiled binary (needs `service` wired in src/cli.ts)", () => {
  test("install writes a unit whose ExecStart is the binary itself", async () => {
    const binary = await compiledBinary();
    const s = sandbox("linux");
    const proc = Bun.spawn([binary, "service", "install"], {
      cwd: s.root,
      env: { PATH: s.vars.PATH, HOME: s.home, MEMPROXY_FIXTURE_CALLS: s.vars.MEMPROXY_FIXTURE_CALLS },
      stdout: "pipe",
      stderr: "pipe",
    });
    const [stdout, stderr, code] = await Promise.all([proc.stdout.text(), proc.stderr.text(), proc.exited]);
    expect(stderr).toBe("");
    expect(code).toBe(0);
    const f = linuxFiles(s.home);
    expect(stdout).toContain(f.config);
    expect(stdout).not.toContain("from source");
    const unit = readFileSync(f.unit, "utf8");
    expect(systemdProgramArgs(unit)).toEqual([binary, "--config", f.config]);
    expect(s.calls().map((c) => c[2])).toEqual(["daemon-reload", "enable", "restart"]);
    if (SYSTEMD_ANALYZE) expect(await systemdVerify(f.unit, s.root)).toBe("");
  });
});
