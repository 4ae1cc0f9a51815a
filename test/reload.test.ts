// Hot reload of the config file (watch and SIGHUP) in the compiled binary, while traffic flows.
import { beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, renameSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseConfig, type Config } from "../src/config.ts";
import { createLogger } from "../src/log.ts";
import { ConfigReloader } from "../src/reload.ts";
import { echo, manualStream, readJson, startBackend, type RecordingBackend } from "./support/backend.ts";
import { compiledBinary, spawnMemproxy, type MemproxyProcess } from "./support/memproxy.ts";
import { aliasBomb, replaceFile, STACK_LINE } from "./support/files.ts";
import { tempDir } from "./support/process.ts";
import { parsePrometheus, sampleValue } from "./support/prometheus.ts";

let bin: string;
beforeAll(async () => {
  bin = await compiledBinary();
});

const configText = (backend: string, userId: string, extra = "") =>
  `litellm_backend_url: ${backend}\nuser_id_mappings:\n  header_patterns:\n    - {pattern: "tool/", user_id: ${userId}}\nmemproxy:\n  listen: {port: 0}\n${extra}`;

/** Sends requests in a loop until stopped; counts answers that were not 200. */
function traffic(url: string) {
  let running = true;
  let sent = 0;
  const failures: string[] = [];
  const loop = (async () => {
    while (running) {
      const res = await fetch(url + "/v1/chat/completions", { method: "POST", body: '{"model":"m"}', headers: { "user-agent": "tool/1" } }).catch(
        (e) => e as Error,
      );
      sent++;
      if (!(res instanceof Response)) failures.push(String(res));
      else if (res.status !== 200) failures.push(`${res.status} ${await res.text()}`);
      else await res.arrayBuffer();
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return { sent, failures };
    },
  };
}

let probe = 0;
/** The user id memproxy injects now, for a "tool/" client (found by a unique marker among concurrent traffic). */
async function userIdNow(url: string, backend: RecordingBackend): Promise<string | null> {
  const marker = `probe-${++probe}`;
  await (await fetch(url + "/v1/models", { headers: { "user-agent": "tool/2", "x-probe": marker } })).arrayBuffer();
  return backend.received.find((r) => r.headers.get("x-probe") === marker)!.headers.get("x-sm-user-id");
}

describe("config hot reload", () => {
  test("a file change is applied while traffic flows; an invalid one is rejected and the running config stays", async () => {
    await using backend = startBackend();
    using tmp = tempDir("reload");
    const dir = tmp.path;
    const path = join(dir, "config.yaml");
    writeFileSync(path, configText(backend.url, "alpha"));
    await using mp: MemproxyProcess = spawnMemproxy([bin, "--config", path]);
    const url = await mp.listening();
    expect(await userIdNow(url, backend)).toBe("alpha");
    const load = traffic(url);

    let mark = mp.lines.length;
    replaceFile(path, configText(backend.url, "beta"));
    await mp.waitForLine("config reloaded", mark);
    expect(await userIdNow(url, backend)).toBe("beta");

    replaceFile(path, configText(backend.url, "gamma") + "  bogus_setting: 1\n");
    const failed = await mp.waitForLine("config reload failed");
    expect(failed).toContain(`${path}: memproxy.bogus_setting: unknown setting`);
    expect(await userIdNow(url, backend)).toBe("beta");
    const health = await readJson(await fetch(url + "/health"));
    expect(health.status).toBe("degraded");
    expect(health.config.last_reload.ok).toBe(false);
    expect(health.config.last_reload.problems[0]).toContain("memproxy.bogus_setting");
    const metrics = await (await fetch(url + "/metrics")).text();
    expect(metrics).toContain('memproxy_config_reloads_total{result="rejected"} 1\n');
    expect(metrics).toMatch(/memproxy_config_reloads_total\{result="applied"\} [1-9]/);

    mark = mp.lines.length;
    replaceFile(path, configText(backend.url, "delta"));
    await mp.waitForLine("config reloaded", mark);
    expect(await userIdNow(url, backend)).toBe("delta");
    expect((await readJson(await fetch(url + "/health"))).config.last_reload.ok).toBe(true);

    const { sent, failures } = await load.stop();
    expect(failures).toEqual([]);
    expect(sent).toBeGreaterThan(0);
    mp.proc.kill("SIGTERM");
    expect(await mp.exited).toBe(0);
  });

  test("a file put back as it was after a failed edit is reloaded: /health is healthy again", async () => {
    await using backend = startBackend();
    using tmp = tempDir("undo");
    const path = tmp.file("config.yaml");
    const original = configText(backend.url, "alpha");
    writeFileSync(path, original);
    await using mp = spawnMemproxy([bin, "--config", path]);
    const url = await mp.listening();
    replaceFile(path, original + "  bogus: 1\n");
    await mp.waitForLine("config reload failed");
    expect((await readJson(await fetch(url + "/health"))).status).toBe("degraded");
    const mark = mp.lines.length;
    replaceFile(path, original);
    await mp.waitForLine("config reloaded", mark);
    const health = await readJson(await fetch(url + "/health"));
    expect(health.config.last_reload.ok).toBe(true);
    expect(health.status).toBe("healthy");
    expect(await userIdNow(url, backend)).toBe("alpha");
  });

  test("SIGHUP re-reads the file; a changed listen address is reported, not applied", async () => {
    await using backend = startBackend();
    using tmp = tempDir("hup");
    const dir = tmp.path;
    const path = join(dir, "config.yaml");
    writeFileSync(path, configText(backend.url, "one", "  reload: {watch: false}\n"));
    await using mp = spawnMemproxy([bin, "--config", path]);
    const url = await mp.listening();
    writeFileSync(path, configText(backend.url, "two", "  reload: {watch: false}\n").replace("listen: {port: 0}", "listen: {port: 1}"));
    expect(await userIdNow(url, backend)).toBe("one"); // not watched
    mp.proc.kill("SIGHUP");
    await mp.waitForLine("config reloaded");
    const note = await mp.waitForLine("cannot change while running");
    expect(note).toContain("memproxy.listen");
    expect(await userIdNow(url, backend)).toBe("two");
    mp.proc.kill("SIGTERM");
    expect(await mp.exited).toBe(0);
  });

  test("a request in flight keeps the decision it started with", async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    await using backend = startBackend(async (req) => {
      if (new URL(req.url).pathname === "/slow") await gate;
      return new Response("ok");
    });
    using tmp = tempDir("inflight");
    const dir = tmp.path;
    const path = join(dir, "config.yaml");
    writeFileSync(path, configText(backend.url, "before"));
    await using mp = spawnMemproxy([bin, "--config", path]);
    const url = await mp.listening();
    const slow = fetch(url + "/slow", { method: "POST", body: "{}", headers: { "user-agent": "tool/1" } });
    await backend.waitFor(1);
    replaceFile(path, configText(backend.url, "after"));
    await mp.waitForLine("config reloaded");
    release();
    expect(await (await slow).text()).toBe("ok");
    expect(backend.received[0]!.headers.get("x-sm-user-id")).toBe("before");
    expect(await userIdNow(url, backend)).toBe("after");
  });
});

describe("config hot reload, as Kubernetes updates a mounted ConfigMap", () => {
  test("the ..data symlink swap is noticed", async () => {
    await using backend = startBackend();
    using tmp = tempDir("cm");
    const dir = tmp.path;
    const version = (n: number, userId: string) => {
      mkdirSync(join(dir, `..v${n}`));
      writeFileSync(join(dir, `..v${n}`, "config.yaml"), configText(backend.url, userId));
      symlinkSync(`..v${n}`, join(dir, `..data_tmp`));
      renameSync(join(dir, "..data_tmp"), join(dir, "..data")); // atomic, as the kubelet does
    };
    version(1, "cm-one");
    symlinkSync("..data/config.yaml", join(dir, "config.yaml"));
    await using mp = spawnMemproxy([bin, "--config", join(dir, "config.yaml")]);
    const url = await mp.listening();
    expect(await userIdNow(url, backend)).toBe("cm-one");
    const mark = mp.lines.length;
    version(2, "cm-two");
    await mp.waitForLine("config reloaded", mark);
    expect(await userIdNow(url, backend)).toBe("cm-two");
  });
});

describe("reloads that must not open, stall or stop memproxy", () => {
  const keyed = (backend: string, userId: string) =>
    configText(backend, userId, `  access:\n    keys: ["a-strong-access-key-0123456789"]\n`);
  const KEY = { authorization: "Bearer a-strong-access-key-0123456789" };

  test("a file emptied by an editor (truncate, then write) never replaces the running config: keys stay required", async () => {
    await using backend = startBackend();
    using tmp = tempDir("empty");
    const path = tmp.file("config.yaml");
    writeFileSync(path, keyed(backend.url, "one"));
    await using mp = spawnMemproxy([bin, "--config", path]);
    const url = await mp.listening();
    const mark = mp.lines.length;
    writeFileSync(path, ""); // `: > config.yaml`
    await mp.waitForLine("config file is empty; keeping the running config", mark);
    const open = await fetch(url + "/v1/models", { headers: { "user-agent": "tool/1" } });
    expect(open.status).toBe(401);
    const health = await readJson(await fetch(url + "/health", { headers: KEY }));
    expect(health.config.last_reload).toMatchObject({ ok: false, problems: [expect.stringContaining("the file is empty")] });
    writeFileSync(path, keyed(backend.url, "two"));
    await mp.waitForLine("config reloaded", mark);
    expect((await fetch(url + "/v1/models", { headers: { "user-agent": "tool/1" } })).status).toBe(401);
    await (await fetch(url + "/v1/models", { headers: { ...KEY, "user-agent": "tool/1" } })).arrayBuffer();
    expect(backend.received.at(-1)!.headers.get("x-sm-user-id")).toBe("two");
  });

  test("a reload that drops every access key, or changes the backend, is logged at warning level", async () => {
    await using backend = startBackend();
    await using other = startBackend();
    using tmp = tempDir("warn");
    const path = tmp.file("config.yaml");
    writeFileSync(path, keyed(backend.url, "one"));
    await using mp = spawnMemproxy([bin, "--config", path]);
    await mp.listening();
    const mark = mp.lines.length;
    replaceFile(path, configText(other.url, "one"));
    const dropped = JSON.parse(await mp.waitForLine("has no access keys", mark));
    expect(dropped.level).toBe("warn");
    const moved = JSON.parse(await mp.waitForLine("changes the backend", mark));
    expect(moved).toMatchObject({ level: "warn", backend: other.url });
  });

  test("a reload that stops LiteLLM forwarding the memory id is warned about, naming the lines to add; the page's memory chain follows", async () => {
    await using backend = startBackend();
    using tmp = tempDir("chain");
    const path = tmp.file("config.yaml");
    const shared = (forwarding: boolean) =>
      configText(backend.url, "one") +
      "model_list:\n  - model_name: gpt-4o\n    litellm_params: {model: openai/gpt-4o, api_base: \"https://api.supermemory.ai/v3/https://api.openai.com/v1\", " +
      "api_key: os.environ/OPENAI_API_KEY, extra_headers: {x-supermemory-api-key: os.environ/SUPERMEMORY_API_KEY}}\n" +
      `general_settings: {master_key: os.environ/LITELLM_MASTER_KEY${forwarding ? ", forward_client_headers_to_llm_api: true" : ""}}\n`;
    writeFileSync(path, shared(true));
    await using mp = spawnMemproxy([bin, "--config", path], { env: { ...process.env, LITELLM_MASTER_KEY: "sk-reload-test-master-key-0123456789", SUPERMEMORY_API_KEY: "sm" } });
    const url = await mp.listening();
    const chain = async () => ((await (await fetch(url + "/ui/api/state")).json()) as { memory_chain: { memory_id_forwarding: string } }).memory_chain;
    expect((await chain()).memory_id_forwarding).toBe("on");
    expect(mp.lines.join("\n")).not.toContain("does not forward client headers");
    const mark = mp.lines.length;
    replaceFile(path, shared(false));
    const warned = JSON.parse(await mp.waitForLine("does not forward client headers", mark));
    expect(warned).toMatchObject({ level: "warn", memory_id_forwarding: "off" });
    expect(warned.msg).toContain("general_settings:\n      forward_client_headers_to_llm_api: true");
    expect((await chain()).memory_id_forwarding).toBe("off");
  });

  test("a config that is a symlink into another folder is still watched", async () => {
    await using backend = startBackend();
    using tmp = tempDir("link");
    mkdirSync(tmp.file("real"));
    mkdirSync(tmp.file("etc"));
    const target = tmp.file("real/config.yaml");
    writeFileSync(target, configText(backend.url, "before"));
    symlinkSync(target, tmp.file("etc/config.yaml"));
    await using mp = spawnMemproxy([bin, "--config", tmp.file("etc/config.yaml")]);
    const url = await mp.listening();
    const mark = mp.lines.length;
    writeFileSync(target, configText(backend.url, "after"));
    await mp.waitForLine("config reloaded", mark);
    expect(await userIdNow(url, backend)).toBe("after");
  });

  test("a config folder that is replaced whole is still watched", async () => {
    await using backend = startBackend();
    using tmp = tempDir("folder");
    mkdirSync(tmp.file("conf"));
    writeFileSync(tmp.file("conf/config.yaml"), configText(backend.url, "before"));
    await using mp = spawnMemproxy([bin, "--config", tmp.file("conf/config.yaml")]);
    const url = await mp.listening();
    const mark = mp.lines.length;
    mkdirSync(tmp.file("conf.new"));
    writeFileSync(tmp.file("conf.new/config.yaml"), configText(backend.url, "after"));
    renameSync(tmp.file("conf"), tmp.file("conf.old"));
    renameSync(tmp.file("conf.new"), tmp.file("conf"));
    await mp.waitForLine("config reloaded", mark);
    expect(await userIdNow(url, backend)).toBe("after");
  });

  test("a reload that cannot be loaded (YAML aliases that expand without end), by the file watch and by SIGHUP, keeps serving, streams included; /health and the rejected counter say so", async () => {
    const streams = Array.from({ length: 5 }, () => manualStream());
    let next = 0;
    await using backend = startBackend((req, r) => {
      if (next === streams.length) return echo(req, r);
      const s = streams[next++]!;
      s.send("data: 0\n\n"); // Bun.serve sends a head with the first body bytes
      return new Response(s.body, { headers: { "content-type": "text/event-stream" } });
    });
    using tmp = tempDir("bomb");
    const path = tmp.file("config.yaml");
    writeFileSync(path, configText(backend.url, "steady"));
    await using mp = spawnMemproxy([bin, "--config", path]);
    const url = await mp.listening();
    const open = await Promise.all(streams.map(() => fetch(url + "/v1/chat/completions", { method: "POST", body: "{}", headers: { "user-agent": "tool/1" } })));
    const rejected = async () => sampleValue(parsePrometheus(await (await fetch(url + "/metrics")).text()), "memproxy_config_reloads_total", { result: "rejected" });
    expect(await rejected()).toBe(0);
    const mark = mp.lines.length;
    replaceFile(path, configText(backend.url, "changed") + aliasBomb());
    expect(await mp.waitForLine("config reload failed", mark)).toContain("expands to more than 1000000 values");
    expect(await rejected()).toBe(1);
    mp.proc.kill("SIGHUP");
    await mp.waitForLine("config reload failed", mp.lines.length);
    expect(await rejected()).toBe(2);
    for (const s of streams) {
      s.send("data: 1\n\n");
      s.close();
    }
    expect(await Promise.all(open.map((r) => r.text()))).toEqual(Array(5).fill("data: 0\n\ndata: 1\n\n"));
    const health = await readJson(await fetch(url + "/health"));
    expect(health.status).toBe("degraded");
    expect(health.config.last_reload).toMatchObject({ ok: false, problems: [expect.stringContaining("expands to more than")] });
    const page = (await (await fetch(url + "/ui/api/state")).json()) as { config: { last_reload: unknown } };
    expect(page.config.last_reload).toEqual(health.config.last_reload);
    expect(await userIdNow(url, backend)).toBe("steady");
    expect(mp.proc.exitCode).toBeNull();
    expect(mp.lines.join("\n")).not.toMatch(STACK_LINE);
  });
});

describe("ConfigReloader", () => {
  const path = "config.yaml";
  /**
   * A reloader of `path` in process, whose file reads as `read` says (undefined: the file cannot be read),
   * started on `startText`; it records what it parsed, applied (the default user ids) and reported failed.
   */
  function inProcess(read: () => string | undefined, startText: string | undefined) {
    const seen = { parsed: 0, applied: [] as string[], failures: [] as string[][] };
    let running: Config = parseConfig(startText ?? "", path, {});
    const reloader = new ConfigReloader(
      {
        path,
        read: async () => {
          const text = read();
          if (text === undefined) throw new Error("ENOENT: no such file or directory");
          return text;
        },
        parse: (text) => {
          seen.parsed++;
          return parseConfig(text, path, {});
        },
        running: () => running,
        apply: (next) => {
          seen.applied.push(next.routing.default_user_id);
          running = next;
          return [];
        },
        failed: (problems) => seen.failures.push(problems),
        logger: createLogger({ format: "json", write: () => {} }),
        watch: false,
        settleMs: 1,
      },
      startText,
    );
    return { reloader, seen, running: () => running };
  }

  test("a file still being written is applied only once it reads the same twice", async () => {
    const whole = "user_id_mappings:\n  default_user_id: whole\nmemproxy:\n  access:\n    keys: [a-strong-access-key-0123456789]\n";
    // What the file holds at each read: the writer has written only its start (valid YAML, without the
    // keys), then the rest.
    const versions = ["user_id_mappings:\n  default_user_id: partial\n", whole, whole];
    let reads = 0;
    const { reloader, seen, running } = inProcess(() => versions[Math.min(reads++, versions.length - 1)], undefined);
    await reloader.reload("SIGHUP");
    expect(seen.applied).toEqual(["whole"]);
    expect(running().access.keys).toEqual(["a-strong-access-key-0123456789"]);
    expect(reads).toBe(3);
    reloader.stop();
  });

  const good = "user_id_mappings:\n  default_user_id: good\n";

  test("a file that cannot be read is reported once; when it comes back, as it was, it is reloaded", async () => {
    let content: string | undefined = good;
    const { reloader, seen } = inProcess(() => content, good);
    content = undefined; // moved away: every event in the folder finds it missing
    for (let i = 0; i < 3; i++) await reloader.reload("file changed");
    expect(seen.failures).toEqual([["config.yaml: ENOENT: no such file or directory"]]);
    content = good; // back, as it was: applied, which replaces the failure /health shows
    await reloader.reload("file changed");
    expect(seen.applied).toEqual(["good"]);
    reloader.stop();
  });

  test("a file left broken or empty is tried once, not again at every event in its folder", async () => {
    let content = good;
    const { reloader, seen } = inProcess(() => content, good);
    content = good + "memproxy: {forwrd: 1}\n";
    // The first event tries the broken file; the next ones (a log line written beside it) find it unchanged.
    for (let i = 0; i < 3; i++) await reloader.reload("file changed");
    expect(seen.failures).toEqual([[expect.stringContaining("memproxy.forwrd: unknown setting")]]);
    expect(seen.parsed).toBe(1);
    content = "";
    for (let i = 0; i < 3; i++) await reloader.reload("file changed");
    expect(seen.failures).toHaveLength(2);
    expect(seen.failures[1]![0]).toContain("the file is empty");
    // Put back as it was: reloaded, so the failure shown by /health is replaced by a success.
    content = good;
    await reloader.reload("file changed");
    expect(seen.applied).toEqual(["good"]);
    // SIGHUP tries the file whatever it holds.
    await reloader.reload("SIGHUP");
    expect(seen.applied).toEqual(["good", "good"]);
    expect(seen.failures).toHaveLength(2);
    reloader.stop();
  });
});
