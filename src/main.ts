// memproxy's entry point: `bun src/main.ts` in development, the compiled binary in production.
// Long SSE streams hold their backend request for minutes: lift fetch's default of 256 concurrent
// requests (the rest would queue) before the first fetch reads it.
export {};
process.env.BUN_CONFIG_MAX_HTTP_REQUESTS ??= "65336";

const { main } = await import("./cli.ts");
process.exit(await main(process.argv.slice(2)));
