// A backend that streams one SSE event, stays silent for PAUSE_MS (a thinking model), then finishes.
// Prints its URL on the first line of stdout.
const pauseMs = Number(process.env.PAUSE_MS ?? "2500");
const enc = new TextEncoder();
const server = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  idleTimeout: 0,
  fetch(req) {
    return new Response(
      new ReadableStream({
        async start(c) {
          c.enqueue(enc.encode(`data: {"seen_user":"${req.headers.get("x-sm-user-id")}"}\n\n`));
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
