/** Starts a real Browser LLM server on a free loopback port for the tests; stops it by pid. */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

// dist/test/server.js -> the repository root
const REPO = resolve(fileURLToPath(new URL(".", import.meta.url)), "..", "..", "..", "..");
const PYTHON = process.env.BROWSER_LLM_PYTHON ?? join(REPO, ".venv", "bin", "python");

function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const probe = createServer();
    probe.listen(0, "127.0.0.1", () => {
      const address = probe.address();
      probe.close(() => (typeof address === "object" && address ? ok(address.port) : fail(new Error("no port"))));
    });
  });
}

export interface TestServer {
  baseURL: string;
  stop(): Promise<void>;
}

export async function startServer(env: Record<string, string> = {}): Promise<TestServer> {
  const port = await freePort();
  const child: ChildProcess = spawn(PYTHON, ["-m", "browser_llm.cli", "serve"], {
    env: {
      ...process.env,
      BROWSER_LLM_HOST: "127.0.0.1",
      BROWSER_LLM_PORT: String(port),
      BROWSER_LLM_MODELS_DIR: mkdtempSync(join(tmpdir(), "bllm-js-")),
      BROWSER_LLM_LOG_LEVEL: "warning",
      ...env,
    },
    stdio: ["ignore", "ignore", "inherit"],
  });
  const baseURL = `http://127.0.0.1:${port}/api/v1`;
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}`);
    try {
      const response = await fetch(`${baseURL}/status`);
      const body = (await response.json()) as { data?: { status: string } };
      if (body.data?.status === "ready") break;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    baseURL,
    stop: () =>
      new Promise((done) => {
        if (child.exitCode !== null) return done();
        child.once("exit", () => done());
        child.kill("SIGTERM");
      }),
  };
}
