import { describe, expect, test } from "bun:test";
import { RUNTIME_ENV_NAMES, withRuntimeSettings } from "../src/runtime-env.ts";

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
