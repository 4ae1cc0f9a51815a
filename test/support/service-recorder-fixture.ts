// Stands in for systemctl and launchctl in tests: appends [name, ...args] as a JSON line to $MEMPROXY_FIXTURE_CALLS.
import { appendFileSync } from "node:fs";

const [name, ...args] = process.argv.slice(2);
appendFileSync(process.env.MEMPROXY_FIXTURE_CALLS!, JSON.stringify([name, ...args]) + "\n");
// MEMPROXY_FIXTURE_FAIL=restart makes `systemctl --user restart ...` fail as it does without a user manager.
const failOn = process.env.MEMPROXY_FIXTURE_FAIL;
if (failOn && args.includes(failOn)) {
  process.stderr.write("Failed to connect to bus: No medium found\n");
  process.exit(1);
}
if (name === "systemctl" && args.includes("status")) {
  process.stdout.write("● memproxy.service - stand-in\n     Active: active (running) since now\n");
}
if (name === "launchctl" && args[0] === "print") {
  process.stdout.write(`${args[1]} = {\n\tactive count = 1\n\tstate = running\n\tpid = 4242\n\tlast exit code = (never exited)\n}\n`);
}
