// A backend for the fault suite that takes request headers up to 512 KiB, as memproxy does (the test process's
// own Bun.serve refuses more than 16 KiB): run as `bun --max-http-header-size=524288 <this file>`. It prints
// "listening <port>", then a line "received {path, probe, user_id}" per request (x-probe and x-sm-user-id),
// and holds every answer until a line "release" arrives on its stdin; later requests are answered at once.

export {};

const released = Promise.withResolvers<void>();
const backend = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  idleTimeout: 0,
  async fetch(req) {
    await req.arrayBuffer();
    const url = new URL(req.url);
    if (url.pathname === "/health/liveliness") return Response.json("I'm alive!");
    const line = { path: url.pathname, probe: req.headers.get("x-probe"), user_id: req.headers.get("x-sm-user-id") };
    console.log(`received ${JSON.stringify(line)}`);
    await released.promise;
    return Response.json({ ok: true });
  },
});
console.log(`listening ${backend.port}`);

for await (const line of console) {
  if (line.trim() === "release") released.resolve();
}
