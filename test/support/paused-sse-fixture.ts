// A backend that stays silent for PAUSE_MS, as a thinking model does. Prints its URL on stdout's first line.
//   POST /v1/chat/completions: one SSE event, PAUSE_MS of silence, then the rest of the stream.
//   /slow-head (any method): PAUSE_MS of silence before the response head (a non-streamed call), then JSON.
const pauseMs = Number(process.env.PAUSE_MS ?? "2500");
const enc = new TextEncoder();
const server = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  idleTimeout: 0,
  async fetch(req) {
    const user = req.headers.get("x-sm-user-id");
    if (new URL(req.url).pathname === "/slow-head") {
      await Bun.sleep(pauseMs);
      return Response.json({ seen_user: user, after_ms: pauseMs });
    }
    return new Response(
      new ReadableStream({
        async start(c) {
          c.enqueue(enc.encode(`data: {"seen_user":"${user}"}\n\n`));
          await Bun.sleep(pauseMs);
          c.enqueue(enc.encode("data: after-pause\n\n"));
          c.close();
        },
      }),
      { headers: { "content-type": "text/event-stream" } },
    );
  },
});
console.log(`http://127.0.0.1:${server.port}`);
