// Stands in for memproxy under the launchd wrapper: prints the arguments and the API key it was started with.
process.stdout.write(JSON.stringify({ args: process.argv.slice(2), key: process.env.OPENAI_API_KEY ?? null }) + "\n");
