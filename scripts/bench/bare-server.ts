// The benchmark's bare Bun server: the least a compiled Bun program listening with Bun.serve takes,
// to compare memproxy's idle memory with. scripts/bench/builds.ts compiles it with exactly the flags
// of scripts/build.ts. PORT (environment) is the port on 127.0.0.1; it answers every request "ok".
Bun.serve({ hostname: "127.0.0.1", port: Number(process.env.PORT ?? 0), fetch: () => new Response("ok") });
