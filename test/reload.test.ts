// Hot reload of the config file (watch and SIGHUP) in the compiled binary, while traffic flows.
import { beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, renameSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readJson, startBackend, type RecordingBackend } from "./support/backend.ts";
import { compiledBinary, spawnMemproxy, type MemproxyProcess } from "./support/memproxy.ts";

let bin: string;
beforeAll(async () => {
  bin = await compiledBinary();
});

const configText = (backend: string, userId: string, extra = "") =>
  `litellm_backend_url: ${backend}\nuser_id_mappings:\n  header_patterns:\n    - {pattern: "tool/", user_id: ${userId}}\nmemproxy:\n  listen: {port: 0}\n${extra}`;

/** Writes the file the way editors do: a new file renamed over the old one. */
function replaceFile(path: string, text: string) {
  writeFileSync(path + ".tmp", text);
  renameSync(path + ".tmp", path);
}

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
    const dir = mkdtempSync(join(tmpdir(), "memproxy-reload-"));
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

  test("SIGHUP re-reads the file; a changed listen address is reported, not applied", async () => {
    await using backend = startBackend();
    const dir = mkdtempSync(join(tmpdir(), "memproxy-hup-"));
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
    const dir = mkdtempSync(join(tmpdir(), "memproxy-inflight-"));
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
    const { symlinkSync, mkdirSync } = await import("node:fs");
    await using backend = startBackend();
    const dir = mkdtempSync(join(tmpdir(), "memproxy-cm-"));
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
