// memproxy's entry point: `bun src/main.ts` in development, the compiled binary in production.
import { withRuntimeSettings } from "./runtime-env.ts";

// Some settings of Bun's are read from the environment at process start only (runtime-env.ts), so this
// same process re-executes itself (same PID, for service managers) with them set.
const env = withRuntimeSettings(process.env);
if (env && typeof process.execve === "function") {
  const compiled = import.meta.path.startsWith("/$bunfs/") || import.meta.path.startsWith("B:/~BUN/");
  const args = compiled ? process.argv.slice(2) : process.argv.slice(1);
  process.execve(process.execPath, [process.execPath, ...args], env);
}

// Loaded only now: before a re-exec, loading the whole program would be paid twice.
const { main } = await import("./cli.ts");
process.exit(await main(process.argv.slice(2)));
