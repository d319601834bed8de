// Real MCP servers behind stdiobus-relay, driven by the MCP TypeScript SDK's own client,
// exactly as an application would start a stdio server.
//
//   node relay.mjs RELAY_BINARY [PYTHON_SERVER]
//
// PYTHON_SERVER is the command of `mcp-server-time` (from PyPI): a server built on the MCP
// Python SDK, which refuses requests until it has had the client's handshake.
//
// Run from a directory where package.json's packages are installed (.ci/run does that).
// Exits non-zero on the first check that fails; prints the latency figures.

import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createRequire } from "node:module";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { CreateMessageRequestSchema } from "@modelcontextprotocol/sdk/types.js";

const relay = resolve(process.argv[2] ?? "");
const pythonServer = process.argv[3] ? resolve(process.argv[3]) : null;
if (!existsSync(relay)) {
  console.error("usage: node relay.mjs RELAY_BINARY");
  process.exit(2);
}
const require = createRequire(join(process.cwd(), "package.json"));
const server = (name) =>
  require.resolve(`@modelcontextprotocol/${name}/package.json`).replace(/package\.json$/, "dist/index.js");
const everything = server("server-everything");
const filesystem = server("server-filesystem");
const scratch = mkdtempSync(join(tmpdir(), "stdiobus-relay-mcp-"));

function check(condition, what) {
  if (!condition) {
    throw new Error(`FAILED: ${what}`);
  }
  console.log(`ok: ${what}`);
}

/// A kernel configuration file with one pool running `args` under node (or `command`).
function configFile(name, args, limits = {}, command = process.execPath, instances = 1) {
  const path = join(scratch, `${name}.json`);
  const config = { pools: [{ id: name, command, args, instances }], limits };
  writeFileSync(path, JSON.stringify(config));
  return path;
}

/// A client connected through the relay (or straight to `direct`, a server's argv).
async function connect({ config, direct, sampling = false, relayArgs = [] }) {
  const transport = direct
    ? new StdioClientTransport({ command: process.execPath, args: direct, stderr: "ignore" })
    : new StdioClientTransport({ command: relay, args: [...relayArgs, config], stderr: "inherit" });
  const client = new Client(
    { name: "stdiobus-relay-test", version: "1.0.0" },
    { capabilities: sampling ? { sampling: {} } : {} },
  );
  if (sampling) {
    client.setRequestHandler(CreateMessageRequestSchema, async (request) => ({
      model: "test-model",
      role: "assistant",
      content: { type: "text", text: `sampled: ${request.params.messages[0].content.text}` },
    }));
  }
  await client.connect(transport);
  return { client, transport };
}

/// Pids of the processes whose parent is `pid` and that run a program of their own: a
/// child still running the relay's code (forked, not exec'd yet, or the step on the way to
/// the bus's guardian, which is nobody's child) is no server, nor is one that has ended (a
/// zombie has no program to read).
function children(pid) {
  const exe = (p) => {
    try {
      return readlinkSync(`/proc/${p}/exe`);
    } catch {
      return null;
    }
  };
  try {
    const own = exe(pid);
    return readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8")
      .split(" ")
      .filter(Boolean)
      .map(Number)
      .filter((child) => {
        const program = exe(child);
        return program !== null && program !== own;
      });
  } catch {
    return [];
  }
}

const alive = (pid) => existsSync(`/proc/${pid}`) && !readFileSync(`/proc/${pid}/stat`, "utf8").includes(") Z ");

async function until(what, condition, ms = 5000) {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) {
      throw new Error(`FAILED: timed out waiting for ${what}`);
    }
    await new Promise((r) => setTimeout(r, 10));
  }
}

/// One tools/call echo, in microseconds.
async function timedCall(client) {
  const started = process.hrtime.bigint();
  await client.callTool({ name: "echo", arguments: { message: "ping" } });
  return Number(process.hrtime.bigint() - started) / 1000;
}

const median = (values) => [...values].sort((a, b) => a - b)[values.length >> 1];

async function main() {
  const noRestarts = { max_restarts: 0 };
  const everythingConfig = configFile("everything", [everything, "stdio"], noRestarts);

  // The protocol through the relay: initialize (connect), listing, a call, a request from
  // the server to the client, non-ASCII text, and many calls at once.
  {
    const { client, transport } = await connect({ config: everythingConfig, sampling: true });
    check(client.getServerVersion()?.name !== undefined, "initialize through the relay");
    const { tools } = await client.listTools();
    check(tools.some((t) => t.name === "echo"), `tools/list (${tools.length} tools)`);
    const text = "héllo ✓ 日本語 🚀";
    const echoed = await client.callTool({ name: "echo", arguments: { message: text } });
    check(echoed.content[0].text.includes(text), "tools/call with non-ASCII text");
    const sampled = await client.callTool({
      name: "trigger-sampling-request",
      arguments: { prompt: "relay", maxTokens: 5 },
    });
    check(JSON.stringify(sampled).includes("sampled: "), "a sampling request from the server, answered by the client");
    const many = await Promise.all(
      Array.from({ length: 200 }, (_, i) => client.callTool({ name: "echo", arguments: { message: `m${i}` } })),
    );
    check(many.every((r, i) => r.content[0].text.includes(`m${i}`)), "200 concurrent calls, each answered");

    // A request after the server was killed: the client sees the connection close.
    const relayPid = transport.pid;
    const [worker] = children(relayPid);
    check(worker > 0, `the server runs under the relay (pid ${worker})`);
    let closed = false;
    client.onclose = () => (closed = true);
    process.kill(worker, "SIGKILL");
    const started = Date.now();
    let failure = null;
    try {
      await client.callTool({ name: "echo", arguments: { message: "anyone?" } });
    } catch (error) {
      failure = error;
    }
    check(failure !== null, `the request after the kill fails: ${failure?.message}`);
    await until("the connection to close", () => closed);
    check(Date.now() - started < 3000, `the connection closed ${Date.now() - started} ms after the kill`);
    await until("the relay to exit", () => !alive(relayPid));
  }

  // A 2 MB response: a file read through the filesystem server.
  {
    const big = join(scratch, "big.txt");
    const line = "0123456789abcdef".repeat(8) + "\n";
    writeFileSync(big, line.repeat(Math.ceil((2 << 20) / line.length)));
    const config = configFile("filesystem", [filesystem, scratch]);
    const { client } = await connect({ config });
    const read = await client.callTool({ name: "read_text_file", arguments: { path: big } });
    const content = read.content[0].text;
    check(content === readFileSync(big, "utf8"), `a ${content.length}-byte file read, whole`);
    await client.close();

    // Past --max-line the same answer cannot be delivered: the client gets an error for
    // its request at once (the server writes the id last), not a timeout.
    const limited = await connect({ config, relayArgs: ["--max-line", "1000000"] });
    let refusal = null;
    try {
      await limited.client.callTool({ name: "read_text_file", arguments: { path: big } }, undefined, {
        timeout: 10000,
      });
    } catch (error) {
      refusal = error;
    }
    check(refusal?.code === -32004, `an answer over --max-line gets error -32004: ${refusal?.message}`);
    const after = await limited.client.callTool({ name: "list_allowed_directories", arguments: {} });
    check(after.content[0].text.length > 0, "and the relay serves on");
    await limited.client.close();
  }

  // A Python SDK server, two instances, one of them killed and restarted: every process
  // gets the client's handshake from the relay, so every call is answered.
  if (pythonServer) {
    const config = configFile("time", [], { max_restarts: 5 }, pythonServer, 2);
    const { client, transport } = await connect({ config });
    const now = () => client.callTool({ name: "get_current_time", arguments: { timezone: "UTC" } });
    const answered = async (what) => {
      const results = await Promise.all(Array.from({ length: 8 }, now));
      check(results.every((r) => r.content[0].text.includes("UTC")), what);
    };
    await answered("8 calls over two Python SDK servers, each answered");
    const before = children(transport.pid);
    process.kill(before[0], "SIGKILL");
    await until("the killed server to be replaced", () => {
      const now = children(transport.pid);
      return now.length === 2 && !now.includes(before[0]);
    });
    await answered("and after one was killed and restarted, each answered");
    await client.close();
  } else {
    console.log("!!!!!!!! the Python SDK server check SKIPPED: no PYTHON_SERVER given !!!!!!!!");
  }

  // SIGTERM to the relay: it stops, and no worker is left running.
  {
    const config = configFile("everything-term", [everything, "stdio"]);
    const child = spawn(relay, [config], { stdio: ["pipe", "pipe", "inherit"] });
    await until("the server to start", () => children(child.pid).length > 0);
    const workers = children(child.pid);
    const exited = new Promise((r) => child.once("exit", (code, signal) => r({ code, signal })));
    child.kill("SIGTERM");
    const { code } = await exited;
    check(code === 0, `the relay exits with 0 after SIGTERM (got ${code})`);
    await until("its workers to be gone", () => workers.every((pid) => !alive(pid)));
    check(true, `no worker outlives it (${workers.join(", ")})`);
  }

  // The latency the relay adds: sequential calls, through the relay and direct, one of
  // each in turn, so that the machine's swings (which move either median by more than the
  // relay costs) fall on both alike; the figure is the median of the pairs' differences.
  {
    const rounds = 2000;
    const through = await connect({ config: configFile("everything-latency", [everything, "stdio"]) });
    const direct = await connect({ direct: [everything, "stdio"] });
    for (let i = 0; i < 200; i++) {
      await timedCall(through.client);
      await timedCall(direct.client);
    }
    const [relayed, straight, added] = [[], [], []];
    for (let i = 0; i < rounds; i++) {
      const d = await timedCall(direct.client);
      const r = await timedCall(through.client);
      straight.push(d);
      relayed.push(r);
      added.push(r - d);
    }
    console.log(
      `latency: tools/call echo, ${rounds} calls each, one of each in turn: median direct ` +
        `${median(straight).toFixed(1)} µs, through the relay ${median(relayed).toFixed(1)} µs, ` +
        `added (median of the differences) ${median(added).toFixed(1)} µs`,
    );
    await through.client.close();
    await direct.client.close();
  }
}

try {
  await main();
  console.log("all MCP checks passed");
} catch (error) {
  console.error(error);
  process.exitCode = 1;
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
