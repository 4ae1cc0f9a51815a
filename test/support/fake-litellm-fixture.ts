// A stand-in for the `litellm` executable in supervisor tests: same flags, same health endpoints.
// FAKE_MODE: ok (default) | never-ready | exit-at-start | ignore-sigterm
// FAKE_READY_FILE: when set, readiness answers 200 only once this file exists.
// FAKE_GRANDCHILD=1: starts a grandchild process (like uvicorn workers) and prints its pid.
// FAKE_WORKER=1: starts a worker as uvicorn does (forked, so nothing but its parent stops it), prints its
//   pid, and on SIGTERM stops it before exiting, as uvicorn stops its workers.
// FAKE_FLOOD_BYTES: writes this many bytes to stdout before serving (a child nobody reads would block).
// At start it prints which of memproxy's runtime settings (runtime-env.ts) reached it: "runtime env: none".
import { existsSync } from "node:fs";
import { parseArgs } from "node:util";
import { RUNTIME_ENV_NAMES } from "../../src/runtime-env.ts";

const { values } = parseArgs({
  args: Bun.argv.slice(2),
  options: { config: { type: "string" }, host: { type: "string" }, port: { type: "string" }, num_workers: { type: "string" } },
  strict: false,
});
const mode = process.env.FAKE_MODE ?? "ok";
console.log(`fake litellm starting pid=${process.pid} config=${values.config}`);
console.log(`runtime env: ${RUNTIME_ENV_NAMES.filter((name) => process.env[name] !== undefined).join(",") || "none"}`);

if (mode === "exit-at-start") {
  console.error("ERROR: something is wrong with the config");
  process.exit(3);
}
if (mode === "ignore-sigterm") process.on("SIGTERM", () => console.log("ignoring SIGTERM"));
if (process.env.FAKE_GRANDCHILD === "1") {
  const grandchild = Bun.spawn([process.execPath, "-e", "setInterval(() => {}, 1000)"], { stdio: ["ignore", "ignore", "ignore"] });
  console.log(`grandchild pid=${grandchild.pid}`);
}
if (process.env.FAKE_WORKER === "1") {
  // Started through a shell that exits at once: the worker is no child of this Bun process, so only
  // this process's own SIGTERM handler stops it.
  const sh = Bun.spawnSync(["sh", "-c", "sleep 600 >/dev/null 2>&1 & echo $!"]);
  const worker = Number(sh.stdout.toString().trim());
  console.log(`worker pid=${worker}`);
  process.on("SIGTERM", () => {
    process.kill(worker, "SIGTERM");
    console.log("stopped the worker; exiting");
    process.exit(0);
  });
}
const flood = Number(process.env.FAKE_FLOOD_BYTES ?? 0);
if (flood) {
  const line = "x".repeat(1023) + "\n";
  for (let n = 0; n < flood; n += 1024) process.stdout.write(line);
}

Bun.serve({
  hostname: String(values.host ?? "127.0.0.1"),
  port: Number(values.port ?? 4000),
  fetch(req) {
    const path = new URL(req.url).pathname;
    if (path === "/health/readiness") {
      const ready = mode !== "never-ready" && (!process.env.FAKE_READY_FILE || existsSync(process.env.FAKE_READY_FILE));
      return Response.json({ status: ready ? "healthy" : "starting" }, { status: ready ? 200 : 503 });
    }
    if (path === "/health/liveliness") return Response.json("I'm alive!");
    return Response.json({ fake: "litellm", pid: process.pid, path, user: req.headers.get("x-sm-user-id") });
  },
});
console.log(`fake litellm listening pid=${process.pid}`);
