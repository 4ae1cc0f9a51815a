// src/main.ts through the compiled binary: the self re-exec with the runtime settings, and what happens when it fails.
import { beforeAll, describe, expect, test } from "bun:test";
import { startBackend } from "./support/backend.ts";
import { compiledBinary, spawnMemproxy } from "./support/memproxy.ts";
import { runToEnd } from "./support/process.ts";

let bin: string;
beforeAll(async () => {
  bin = await compiledBinary();
});

/**
 * An environment whose BUN_OPTIONS is just under Linux's limit for one environment string (MAX_ARG_STRLEN,
 * 32 pages of 4 KiB): memproxy starts with it, but the re-exec, which appends the header-size flag to it, gets
 * E2BIG from execve. (Under QEMU user emulation the re-exec fails with ENOEXEC: test/e2e/release.e2e.test.ts.)
 */
function reexecFails(): Record<string, string | undefined> {
  const room = 32 * 4096 - "BUN_OPTIONS=".length - 1;
  const options = "--smol ".repeat(Math.ceil(room / 7)).slice(0, room - 20).trim();
  return { BUN_OPTIONS: options, BUN_CONFIG_MAX_HTTP_REQUESTS: undefined, BUN_JSC_numberOfGCMarkers: undefined };
}

describe.skipIf(process.platform !== "linux")("a failed self re-exec", () => {
  test("memproxy serves without the settings, after one warning line: no experimental-feature warning, stack or source", async () => {
    await using backend = startBackend();
    await using mp = spawnMemproxy([bin, "--port", "0", "--backend", backend.url], { env: reexecFails() });
    const url = await mp.listening();
    const res = await fetch(`${url}/v1/messages`, { method: "POST", body: "{}", headers: { "user-agent": "claude-cli/2.1.197 (external, cli)" } });
    expect(res.status).toBe(200);
    const [arrived] = await backend.waitFor(1);
    expect(arrived!.headers.get("x-sm-user-id")).toBe("claude-cli");

    const warnings = mp.lines.filter((l) => l.includes("warning"));
    expect(warnings).toEqual([expect.stringMatching(/^memproxy: warning: cannot re-execute itself with its runtime settings \(E2BIG\), so it runs without them: /)]);
    expect(warnings[0]).toEndWith("start it with BUN_CONFIG_MAX_HTTP_REQUESTS=65535 BUN_JSC_numberOfGCMarkers=1 --max-http-header-size=524288 added to BUN_OPTIONS");
    const output = mp.lines.join("\n");
    for (const noise of ["ExperimentalWarning", "experimental", "process.execve", "errno", "Bun v"]) expect(output).not.toContain(noise);
    expect(output).not.toMatch(/^\s+at \S/m);
  });

  test("--version still answers, on stdout, with the warning on stderr", async () => {
    const { stdout, stderr, code } = await runToEnd([bin, "--version"], { env: { ...process.env, ...reexecFails() } });
    expect(code).toBe(0);
    expect(stdout).toContain("0.");
    expect(stderr.trimEnd().split("\n")).toEqual([expect.stringContaining("memproxy: warning: cannot re-execute itself")]);
  });

  test("with the settings already in its environment there is nothing to re-execute, and no warning", async () => {
    const { stderr, code } = await runToEnd([bin, "--version"], {
      env: { ...process.env, BUN_OPTIONS: "--max-http-header-size=524288", BUN_CONFIG_MAX_HTTP_REQUESTS: "65535", BUN_JSC_numberOfGCMarkers: "1" },
    });
    expect({ stderr, code }).toEqual({ stderr: "", code: 0 });
  });
});
