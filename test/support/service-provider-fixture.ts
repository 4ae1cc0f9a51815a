// The fake OpenAI/Anthropic provider (fake-provider.ts) as a process, for a test that runs it inside another
// network namespace: prints {"port": N}, then one JSON line {path, headers} per request it answers.
import { startFakeProvider } from "./fake-provider.ts";

const provider = startFakeProvider();
process.stdout.write(JSON.stringify({ port: provider.port }) + "\n");
for (let n = 1; ; n++) {
  const r = (await provider.waitFor(n))[n - 1]!;
  process.stdout.write(JSON.stringify({ path: r.path, headers: Object.fromEntries(r.headers) }) + "\n");
}
