// Many concurrent SSE streams through one compiled memproxy: none lost, none corrupted, none reordered.
import { expect, test } from "bun:test";
import { join } from "node:path";
import { startBackend } from "../support/backend.ts";
import { compiledBinary, spawnMemproxy } from "../support/memproxy.ts";
import { runToEnd } from "../support/process.ts";

const STREAMS = 500;
const EVENTS = 20;

test(`${STREAMS} concurrent SSE streams all complete with every event in order`, async () => {
  const bin = await compiledBinary();
  let openStreams = 0;
  let releaseAll!: () => void;
  const allOpen = new Promise<void>((r) => (releaseAll = r));
  const enc = new TextEncoder();
  await using backend = startBackend(async (_req, r) => {
    const { id } = JSON.parse(new TextDecoder().decode(r.body)) as { id: number };
    return new Response(
      new ReadableStream({
        async start(c) {
          c.enqueue(enc.encode(`data: {"s":${id},"i":0}\n\n`));
          // No stream finishes before all of them are open at once: a proxy that can hold fewer deadlocks here.
          if (++openStreams === STREAMS) releaseAll();
          await allOpen;
          for (let i = 1; i < EVENTS; i++) c.enqueue(enc.encode(`data: {"s":${id},"i":${i}}\n\n`));
          c.enqueue(enc.encode("data: [DONE]\n\n"));
          c.close();
        },
      }),
      { headers: { "content-type": "text/event-stream" } },
    );
  });
  // memproxy must raise fetch()'s concurrency limit itself: do not hand it the variable.
  const env = { ...process.env, BUN_CONFIG_MAX_HTTP_REQUESTS: undefined };
  await using mp = spawnMemproxy([bin, "--port", "0", "--backend", backend.url], { env });
  const url = await mp.listening();
  const { stdout: out, stderr: err, code } = await runToEnd([process.execPath, join(import.meta.dir, "..", "support", "sse-client-fixture.ts")], {
    env: { ...process.env, URL: url + "/v1/chat/completions", STREAMS: String(STREAMS), EVENTS: String(EVENTS), BUN_CONFIG_MAX_HTTP_REQUESTS: "4096" },
  });
  expect(err).toBe("");
  expect(code).toBe(0);
  expect(JSON.parse(out)).toEqual({ streams: STREAMS, ok: STREAMS, errors: [] });
  expect(openStreams).toBe(STREAMS);
  mp.proc.kill("SIGTERM");
  expect(await mp.exited).toBe(0);
});
