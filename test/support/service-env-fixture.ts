// Stands in for memproxy under the launchd wrapper: prints its arguments and the variables named in
// $MEMPROXY_FIXTURE_PRINT (comma-separated) as it was started with them.
const names = (process.env.MEMPROXY_FIXTURE_PRINT ?? "OPENAI_API_KEY").split(",");
const env = Object.fromEntries(names.map((n) => [n, process.env[n] ?? null]));
process.stdout.write(JSON.stringify({ args: process.argv.slice(2), env }) + "\n");
