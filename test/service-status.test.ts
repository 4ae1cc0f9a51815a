// `memproxy service status`: the PID the service manager reports (a stand-in systemctl/launchctl) against
// the pid memproxy reports in GET /health (a real Bun.serve answering as memproxy would, and a real memproxy).
import { describe, expect, test } from "bun:test";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { startBackend } from "./support/backend.ts";
import { startProxy } from "./support/memproxy.ts";
import { sandbox } from "./support/service-sandbox.ts";

/** A /health endpoint answering `body`, as memproxy (or something else) would. */
function healthServer(body: unknown, status = 200) {
  return startBackend(() => Response.json(body, { status }));
}
const healthy = (pid: number) => ({ status: "healthy", memory_proxy: "up", pid, litellm: { state: "ready", pid: 1, error: null }, backends: [] });

describe("service status", () => {
  /** A Linux sandbox with the unit installed for a config listening on `port`, systemd reporting main PID `pid`. */
  async function installed(port: number, pid: number) {
    const s = sandbox("linux");
    writeFileSync(join(s.root, "c.yaml"), `memproxy:\n  listen:\n    port: ${port}\n`);
    expect(await s.run("install", "--config", "c.yaml")).toBe(0);
    s.vars.MEMPROXY_FIXTURE_MAINPID = String(pid);
    s.reset();
    return s;
  }

  test("not installed: exit 4", async () => {
    using s = sandbox("linux");
    expect(await s.run("status")).toBe(4);
    expect(s.out).toContain("not installed");
  });

  test("the service's own memproxy answers and is healthy: exit 0, with the PID systemd reports", async () => {
    await using health = healthServer(healthy(31337));
    using s = await installed(health.port, 31337);
    expect(await s.run("status")).toBe(0);
    expect(s.out).toContain("systemd:   active (running), main PID 31337");
    expect(s.out).toContain(`answering: http://127.0.0.1:${health.port}: the service's memproxy (pid 31337), healthy`);
    expect(health.received.map((r) => `${r.method} ${r.path}`)).toEqual(["GET /health"]);
    expect(s.calls()).toEqual([["systemctl", "--user", "show", "memproxy.service", "-p", "MainPID", "-p", "ActiveState", "-p", "SubState", "-p", "Result", "-p", "NRestarts"]]);
  });

  test("another memproxy answers while the service is not running: exit 3, naming the process that answers", async () => {
    await using health = healthServer(healthy(process.pid));
    using s = await installed(health.port, 0);
    expect(await s.run("status")).toBe(3);
    expect(s.out).toContain("systemd:   activating (auto-restart), last result: exit-code, restarted 7 times");
    expect(s.out).toContain(`not the service's: another memproxy answers at http://127.0.0.1:${health.port}: pid ${process.pid} (`);
    // Its command line (read from /proc on Linux) says what it is.
    if (existsSync("/proc/self/cmdline")) expect(s.out).toContain(`pid ${process.pid} (${readFileSync("/proc/self/cmdline", "utf8").split("\0")[0]}`);
    expect(s.out).toContain("the service is not running");
    expect(s.out).toContain("Stop that one (it holds the service's address), then: systemctl --user restart memproxy");
    // systemd's own status lines come with it.
    expect(s.out).toContain("Active: activating (auto-restart)");
  });

  test("another memproxy answers while the service runs under another PID: exit 3", async () => {
    await using health = healthServer(healthy(process.pid));
    using s = await installed(health.port, 4242);
    expect(await s.run("status")).toBe(3);
    expect(s.out).toContain(`pid ${process.pid}`);
    expect(s.out).toContain("the service runs (pid 4242)");
  });

  test("the service's memproxy answers but is not ready: exit 3 with LiteLLM's state", async () => {
    await using health = healthServer({ ...healthy(31337), status: "degraded", litellm: { state: "failed", error: "LiteLLM exited during start-up" } });
    using s = await installed(health.port, 31337);
    expect(await s.run("status")).toBe(3);
    expect(s.out).toContain("not ready: memproxy reports degraded; LiteLLM failed: LiteLLM exited during start-up");
  });

  test("a memproxy without a pid, or something that is not memproxy, answers: exit 3", async () => {
    const { pid: _, ...noPid } = healthy(1);
    await using old = healthServer(noPid);
    using s = await installed(old.port, 31337);
    expect(await s.run("status")).toBe(3);
    expect(s.out).toContain("a memproxy that does not report its pid");

    await using other = healthServer({ error: "not found" }, 404);
    using t = await installed(other.port, 31337);
    expect(await t.run("status")).toBe(3);
    expect(t.out).toContain(`not memproxy: something else answers at http://127.0.0.1:${other.port} (GET /health: 404)`);
  });

  test("nothing answers: exit 3, with where it looked and the logs command", async () => {
    const health = healthServer(healthy(1));
    const port = health.port;
    await health.stop();
    using s = await installed(port, 0);
    expect(await s.run("status")).toBe(3);
    expect(s.out).toContain(`not answering: http://127.0.0.1:${port}/health (`);
    expect(s.out).toContain("See the logs: journalctl --user -u memproxy -f");
  });

  test("a real memproxy answers with its own PID (/health reports it), healthy with its backend up, degraded without", async () => {
    await using backend = startBackend();
    await using proxy = startProxy(`litellm_backend_url: ${backend.url}\n`);
    using s = await installed(proxy.port, process.pid);
    expect(await s.run("status")).toBe(0);
    expect(s.out).toContain(`the service's memproxy (pid ${process.pid}), healthy`);

    await backend.stop();
    s.reset();
    expect(await s.run("status")).toBe(3);
    expect(s.out).toContain(`the service's memproxy (pid ${process.pid}), degraded`);
    expect(s.out).toContain(`not ready: memproxy reports degraded; backend down: ${backend.url}`);
  });

  test("on macOS, launchd's pid is compared", async () => {
    await using health = healthServer(healthy(4242));
    using s = sandbox("darwin");
    writeFileSync(join(s.root, "c.yaml"), `memproxy:\n  listen:\n    port: ${health.port}\n`);
    expect(await s.run("install", "--config", "c.yaml")).toBe(0);
    s.reset();
    expect(await s.run("status")).toBe(0);
    expect(s.out).toContain("launchd:   state running, pid 4242, last exit code (never exited)");
    expect(s.out).toContain("the service's memproxy (pid 4242)");
    expect(s.calls()).toEqual([["launchctl", "print", "gui/501/local.memproxy"]]);

    s.vars.MEMPROXY_FIXTURE_MAINPID = "0";
    s.reset();
    expect(await s.run("status")).toBe(3);
    expect(s.out).toContain("launchd:   state waiting");
    expect(s.out).toContain("the service is not running");
  });
});
