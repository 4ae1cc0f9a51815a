// memproxy's entry point: `bun src/main.ts` in development, the compiled binary in production.
import { COMPILED } from "./compiled.ts";
import { runtimeSettingsWarning, withRuntimeSettings } from "./runtime-env.ts";

// Some settings of Bun's are read from the environment at process start only (runtime-env.ts), so this
// same process re-executes itself (same PID, for service managers) with them set. A failed re-exec (e.g.
// ENOEXEC under QEMU user emulation, which cannot exec a foreign binary without binfmt_misc) must not stop
// memproxy: it carries on without them and says so in one line.
const env = withRuntimeSettings(process.env);
if (env) {
  try {
    if (typeof process.execve !== "function") throw new Error("this Bun has no process.execve");
    const args = COMPILED ? process.argv.slice(2) : process.argv.slice(1);
    withoutExecveWarning();
    process.execve(process.execPath, [process.execPath, ...args], env);
  } catch (err) {
    process.stderr.write(`${runtimeSettingsWarning(process.env, env, err)}\n`);
  }
}

/**
 * Bun emits "process.execve is an experimental feature" (once, on the next tick) at the first call; it
 * reaches the screen only when the call fails and the process carries on. The printer is an ordinary
 * 'warning' listener, as in Node: it is set aside until that one warning has passed, every other
 * warning still reaches it.
 */
function withoutExecveWarning(): void {
  const printers = process.listeners("warning");
  process.removeAllListeners("warning");
  const filter = (warning: Error) => {
    if (warning.name === "ExperimentalWarning" && warning.message.startsWith("process.execve ")) {
      process.off("warning", filter);
      for (const printer of printers) process.on("warning", printer);
      return;
    }
    for (const printer of printers) printer.call(process, warning);
  };
  process.on("warning", filter);
}

// Loaded only now: before a re-exec, loading the whole program would be paid twice.
const { main } = await import("./cli.ts");
process.exit(await main(process.argv.slice(2)));
