// Stands in for systemctl and launchctl in tests: appends [name, ...args] as a JSON line to $MEMPROXY_FIXTURE_CALLS.
import { appendFileSync } from "node:fs";

const [name, ...args] = process.argv.slice(2);
appendFileSync(process.env.MEMPROXY_FIXTURE_CALLS!, JSON.stringify([name, ...args]) + "\n");
// MEMPROXY_FIXTURE_FAIL=restart,disable makes each call with one of these arguments fail, as
// `systemctl --user` does without a user manager.
const failOn = (process.env.MEMPROXY_FIXTURE_FAIL ?? "").split(",").filter(Boolean);
if (failOn.some((word) => args.includes(word))) {
  process.stderr.write("Failed to connect to bus: No medium found\n");
  process.exit(1);
}
// The service's main PID as the manager reports it (0: not running).
const pid = Number(process.env.MEMPROXY_FIXTURE_MAINPID ?? "4242");
if (name === "systemctl" && args.includes("show")) {
  const state = pid > 0 ? "ActiveState=active\nSubState=running\nResult=success" : "ActiveState=activating\nSubState=auto-restart\nResult=exit-code";
  process.stdout.write(`MainPID=${pid}\n${state}\nNRestarts=${pid > 0 ? 0 : 7}\n`);
}
if (name === "systemctl" && args.includes("status")) {
  process.stdout.write(`● memproxy.service - stand-in\n     Active: ${pid > 0 ? "active (running)" : "activating (auto-restart)"} since now\n`);
}
if (name === "launchctl" && args[0] === "print") {
  const running = pid > 0 ? `\tstate = running\n\tpid = ${pid}\n` : "\tstate = waiting\n";
  process.stdout.write(`${args[1]} = {\n\tactive count = 1\n${running}\tlast exit code = (never exited)\n}\n`);
}
