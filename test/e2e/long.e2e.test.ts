// Minutes of silence from the backend, through the compiled binary: longer than Bun's own fetch idle
// timeout (about 5 minutes), which memproxy must lift. Runs in CI (MEMPROXY_LONG_TESTS=1), else skipped:
// it takes about 7 minutes.
import { expect, test } from "bun:test";
import { join } from "node:path";
import { compiledBinary, spawnMemproxy } from "../support/memproxy.ts";

const LONG = process.env.MEMPROXY_LONG_TESTS === "1";
const PAUSE_MS = 400_000; // Bun's fetch cut a silent upstream at about 360 s
if (!LONG) console.warn("test/e2e/long.e2e.test.ts: skipped (about 7 minutes); run with MEMPROXY_LONG_TESTS=1, as CI does");

test.skipIf(!LONG)(
  "a backend silent for 400 s, before its head or mid-stream, is waited for",
  async () => {
    const bin = await compiledBinary();
    await using backend = spawnMemproxy([process.execPath, join(import.meta.dir, "..", "support", "paused-sse-fixture.ts")], {
      env: { PAUSE_MS: String(PAUSE_MS) },
    });
    const backendUrl = await backend.waitForLine("http://");
    await using mp = spawnMemproxy([bin, "--port", "0", "--backend", backendUrl]);
    const url = await mp.listening();
    // The test's own fetch() has the same idle timeout: lift it here too, so only memproxy is on trial.
    const post = { method: "POST", body: "{}", timeout: false } as const;
    const [stream, slowHead] = await Promise.all([
      fetch(url + "/v1/chat/completions", { ...post, headers: { "x-memory-user-id": "thinker" } }).then((r) => r.text()),
      fetch(url + "/slow-head", { ...post, headers: { "x-memory-user-id": "slow" } }).then(async (r) => [r.status, await r.json()]),
    ]);
    expect(stream).toBe('data: {"seen_user":"thinker"}\n\ndata: after-pause\n\n');
    expect(slowHead).toEqual([200, { seen_user: "slow", after_ms: PAUSE_MS }]);
  },
  PAUSE_MS + 120_000,
);
