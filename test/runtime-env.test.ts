// src/runtime-env.ts: the settings memproxy re-executes itself with, and the warning when it cannot.
import { describe, expect, test } from "bun:test";
import { RUNTIME_ENV_NAMES, runtimeSettingsWarning, withRuntimeSettings } from "../src/runtime-env.ts";

describe("withRuntimeSettings", () => {
  test("adds every setting that is missing, and keeps the rest of the environment", () => {
    expect(withRuntimeSettings({ HOME: "/h", PATH: "/bin" })).toEqual({
      HOME: "/h",
      PATH: "/bin",
      BUN_CONFIG_MAX_HTTP_REQUESTS: "65535",
      BUN_JSC_numberOfGCMarkers: "1",
      BUN_OPTIONS: "--max-http-header-size=524288",
    });
  });

  test("keeps what the user set, and adds the header limit to their own Bun options", () => {
    const env = withRuntimeSettings({ BUN_CONFIG_MAX_HTTP_REQUESTS: "4096", BUN_JSC_numberOfGCMarkers: "2", BUN_OPTIONS: "--smol" });
    expect(env).toEqual({ BUN_CONFIG_MAX_HTTP_REQUESTS: "4096", BUN_JSC_numberOfGCMarkers: "2", BUN_OPTIONS: "--smol --max-http-header-size=524288" });
  });

  test("nothing to do once every setting is there (so the re-executed process does not loop)", () => {
    const once = withRuntimeSettings({})!;
    expect(withRuntimeSettings(once)).toBeUndefined();
    expect(withRuntimeSettings({ ...once, BUN_JSC_numberOfGCMarkers: undefined })).toEqual(once);
  });

  test("names every variable it sets (the supervisor strips them for LiteLLM)", () => {
    expect(Object.keys(withRuntimeSettings({})!).sort()).toEqual([...RUNTIME_ENV_NAMES].sort());
  });
});

describe("runtimeSettingsWarning", () => {
  const error = Object.assign(new Error("ENOEXEC, Exec format error '/usr/local/bin/memproxy'"), { code: "ENOEXEC" });

  test("one line: the failure, what memproxy runs without and what that means, and how to start it with them", () => {
    const env = { HOME: "/h" };
    const line = runtimeSettingsWarning(env, withRuntimeSettings(env)!, error);
    expect(line).toBe(
      "memproxy: warning: cannot re-execute itself with its runtime settings (ENOEXEC), so it runs without them: " +
        "at most 256 backend requests at once (more queue), longer GC pauses on a busy machine, request headers over 16 KiB get a bare 431. " +
        "To avoid this, start it with BUN_CONFIG_MAX_HTTP_REQUESTS=65535 BUN_JSC_numberOfGCMarkers=1 BUN_OPTIONS=--max-http-header-size=524288",
    );
  });

  test("names only what is missing, and does not repeat the user's own Bun options", () => {
    const env = { BUN_CONFIG_MAX_HTTP_REQUESTS: "4096", BUN_OPTIONS: `--smol ${"x".repeat(1000)}` };
    const line = runtimeSettingsWarning(env, withRuntimeSettings(env)!, error);
    expect(line).not.toContain("256 backend requests");
    expect(line).not.toContain("xxx");
    expect(line).toContain("longer GC pauses");
    expect(line).toEndWith("start it with BUN_JSC_numberOfGCMarkers=1 --max-http-header-size=524288 added to BUN_OPTIONS");
  });

  test("an error without a code is shown by its message, on the same line", () => {
    const line = runtimeSettingsWarning({}, withRuntimeSettings({})!, new Error("no\nexecve here"));
    expect(line).toContain("(no execve here)");
    expect(line).not.toContain("\n");
  });
});
