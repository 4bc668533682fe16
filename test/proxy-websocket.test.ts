// WebSocket upgrades through the OpenCode proxy, against a test WebSocket upstream whose handshake
// and framing are written here with node:crypto (no library).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import { connect, type AddressInfo, type Socket } from "node:net";
import type { Duplex } from "node:stream";
import { readAuditLog, startServer, type TestServer } from "./helpers/server.ts";
import { waitFor } from "./helpers/wait.ts";
import { freePort } from "./helpers/ports.ts";

const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
const acceptFor = (key: string) => createHash("sha1").update(key + GUID).digest("base64");

/** Encodes one text frame (FIN set); clients must mask, servers must not (RFC 6455 §5.1). */
function frame(text: string, mask: boolean): Buffer {
  const payload = Buffer.from(text);
  const len = payload.length;
  const head: number[] = [0x81];
  if (len < 126) head.push((mask ? 0x80 : 0) | len);
  else head.push((mask ? 0x80 : 0) | 126, len >> 8, len & 0xff);
  if (!mask) return Buffer.concat([Buffer.from(head), payload]);
  const key = randomBytes(4);
  const masked = Buffer.from(payload.map((b, i) => b ^ key[i % 4]!));
  return Buffer.concat([Buffer.from(head), key, masked]);
}

/** Incremental frame decoder: feed bytes, get complete text payloads. */
function decoder(onText: (text: string) => void): (chunk: Buffer) => void {
  let buf = Buffer.alloc(0);
  return (chunk) => {
    buf = Buffer.concat([buf, chunk]);
    for (;;) {
      if (buf.length < 2) return;
      const masked = (buf[1]! & 0x80) !== 0;
      let len = buf[1]! & 0x7f;
      let off = 2;
      if (len === 126) {
        if (buf.length < 4) return;
        len = buf.readUInt16BE(2);
        off = 4;
      }
      const maskKey = masked ? buf.subarray(off, off + 4) : undefined;
      if (masked) off += 4;
      if (buf.length < off + len) return;
      let payload = Buffer.from(buf.subarray(off, off + len));
      if (maskKey) payload = Buffer.from(payload.map((b, i) => b ^ maskKey[i % 4]!));
      buf = buf.subarray(off + len);
      onText(payload.toString());
    }
  };
}

interface Upgraded {
  url: string;
  headers: IncomingHttpHeaders;
}

let wsUp: Server;
let wsPort: number;
const upgrades: Upgraded[] = [];
const upstreamSockets = new Set<Duplex>();
let s: TestServer;
let viewer: string;
let owner: string;

before(async () => {
  wsUp = createServer((_req, res) => {
    res.writeHead(426, { "content-type": "text/plain" });
    res.end("upgrade required");
  });
  wsUp.on("upgrade", (req, socket) => {
    upgrades.push({ url: req.url ?? "", headers: req.headers });
    upstreamSockets.add(socket);
    socket.on("close", () => upstreamSockets.delete(socket));
    socket.on("error", () => {});
    socket.on("end", () => socket.end()); // the peer closed: close our side too
    const key = String(req.headers["sec-websocket-key"] ?? "");
    socket.write(
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" + `Sec-WebSocket-Accept: ${acceptFor(key)}\r\n\r\n`,
    );
    // Upstream speaks first, then echoes every frame it receives.
    socket.write(frame("hello from upstream", false));
    socket.on("data", decoder((text) => socket.write(frame(`echo:${text}`, false))));
  });
  await new Promise<void>((r) => wsUp.listen(0, "127.0.0.1", r));
  wsPort = (wsUp.address() as AddressInfo).port;
  s = await startServer({ env: { OPENWORK_OPENCODE_BASE_URL: `http://127.0.0.1:${wsPort}/base` } });
  viewer = await s.mintToken("viewer");
  owner = await s.mintToken("owner");
});

after(async () => {
  await s.close();
  for (const sock of upstreamSockets) sock.destroy();
  await new Promise<void>((r) => wsUp.close(() => r()));
});

interface Client {
  status: number;
  head: string;
  body: string;
  messages: string[];
  socket: Socket;
  closed: boolean;
}

/** Opens a WebSocket handshake over a raw socket; resolves once the response head (and any body) arrived. */
function openWs(path: string, headers: Record<string, string> = {}, hostHeader?: string): Promise<Client & { key: string }> {
  const { hostname, port } = new URL(s.url);
  const key = randomBytes(16).toString("base64");
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    let raw = Buffer.alloc(0);
    let client: (Client & { key: string }) | undefined;
    let feed: ((c: Buffer) => void) | undefined;
    socket.on("error", reject);
    socket.on("connect", () => {
      let req = `GET ${path} HTTP/1.1\r\nHost: ${hostHeader ?? `${hostname}:${port}`}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${key}\r\nOrigin: http://phone.example\r\n`;
      for (const [k, v] of Object.entries(headers)) req += `${k}: ${v}\r\n`;
      socket.write(req + "\r\n");
    });
    socket.on("close", () => {
      if (client) client.closed = true;
      else {
        const text = raw.toString("latin1");
        const split = text.indexOf("\r\n\r\n");
        const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
        resolve({ status: m ? Number(m[1]) : 0, head: text.slice(0, split), body: text.slice(split + 4), messages: [], socket, closed: true, key });
      }
    });
    socket.on("data", (chunk: Buffer) => {
      if (feed) return feed(chunk);
      raw = Buffer.concat([raw, chunk]);
      const text = raw.toString("latin1");
      const split = text.indexOf("\r\n\r\n");
      if (split === -1) return;
      const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
      const status = m ? Number(m[1]) : 0;
      if (status !== 101) return; // error answers: wait for the close to collect the body
      client = { status, head: text.slice(0, split), body: "", messages: [], socket, closed: false, key };
      feed = decoder((t) => client!.messages.push(t));
      const rest = raw.subarray(Buffer.byteLength(text.slice(0, split + 4), "latin1"));
      if (rest.length) feed(rest);
      resolve(client);
    });
  });
}

test("upgrade with ?token= is proxied: 101 with the upstream's accept, frames echo both ways, token stripped", async () => {
  upgrades.length = 0;
  const c = await openWs(`/opencode/pty/pty_1/connect?token=${owner}&cols=80&directory=/etc`);
  assert.equal(c.status, 101);
  assert.match(c.head, new RegExp(`Sec-WebSocket-Accept: ${acceptFor(c.key).replace(/[+/=]/g, "\\$&")}`, "i"));
  await waitFor(() => c.messages.length === 1, { what: "upstream greeting" });
  assert.equal(c.messages[0], "hello from upstream");
  c.socket.write(frame("ls -la", true));
  await waitFor(() => c.messages.length === 2, { what: "echo" });
  assert.equal(c.messages[1], "echo:ls -la");
  const big = "x".repeat(5000);
  c.socket.write(frame(big, true));
  await waitFor(() => c.messages.length === 3, { what: "large echo" });
  assert.equal(c.messages[2], `echo:${big}`);

  const u = upgrades[0]!;
  const url = new URL(u.url, "http://x");
  assert.equal(url.pathname, "/base/pty/pty_1/connect");
  assert.equal(url.searchParams.get("token"), null, "token stripped before forwarding");
  assert.equal(url.searchParams.get("cols"), "80");
  assert.deepEqual(url.searchParams.getAll("directory"), [s.workspace]);
  assert.equal(u.headers["x-opencode-directory"], s.workspace);
  assert.equal(u.headers.authorization, undefined);
  assert.equal(u.headers.origin, undefined);
  assert.equal(u.headers.upgrade, "websocket");
  assert.ok(!JSON.stringify(u).includes(owner));
  c.socket.destroy();
  await waitFor(() => upstreamSockets.size === 0, { what: "upstream socket closed with the client" });
  // Who opened which terminal is on record (before the socket was handed over), without the token.
  const audit = await readAuditLog(s);
  const opened = audit.find((e) => e.action === "engine.pty.connect" && e.target === "/pty/pty_1/connect");
  assert.ok(opened, JSON.stringify(audit));
  assert.equal((opened.actor as { scope?: string }).scope, "owner");
  assert.ok(!JSON.stringify(audit).includes(owner));
});

test("upgrade with an Authorization header on the mounted form works too", async () => {
  upgrades.length = 0;
  const c = await openWs(`/w/${s.workspaceId}/opencode/pty/pty_2/connect`, { Authorization: `Bearer ${owner}` });
  assert.equal(c.status, 101);
  c.socket.write(frame("pwd", true));
  await waitFor(() => c.messages.includes("echo:pwd"), { what: "echo" });
  assert.equal(upgrades[0]!.headers.authorization, undefined);
  // Upstream closing closes the client.
  for (const sock of upstreamSockets) sock.destroy();
  await waitFor(() => c.closed, { what: "client closed after upstream closed" });
});

test("bad or missing token → 401 before any upgrade; nothing reaches upstream", async () => {
  upgrades.length = 0;
  for (const path of ["/opencode/pty/p/connect?token=wrong", "/opencode/pty/p/connect", `/w/${s.workspaceId}/opencode/pty/p/connect?token=`]) {
    const c = await openWs(path);
    assert.equal(c.status, 401, path);
    assert.match(c.body, /"code":"unauthorized"/);
    assert.match(c.head, /WWW-Authenticate: Bearer/i);
  }
  // DNS rebinding: a foreign Host on a loopback server is refused like any HTTP request.
  const rebound = await openWs(`/opencode/pty/p/connect?token=${s.clientToken}`, {}, "evil.example");
  assert.equal(rebound.status, 421);
  const hostOnly = await openWs("/opencode/pty/p/connect", { "X-OpenWork-Host-Token": s.hostToken });
  assert.equal(hostOnly.status, 401);
  assert.equal(upgrades.length, 0);
});

test("viewers and collaborators cannot open a terminal socket (owner only); unknown workspace and bad paths are refused before upstream", async () => {
  upgrades.length = 0;
  const v = await openWs(`/opencode/pty/p/connect?token=${viewer}`);
  assert.equal(v.status, 403);
  assert.match(v.body, /"code":"forbidden"/);
  const collaborator = await openWs(`/opencode/pty/p/connect?token=${s.clientToken}`);
  assert.equal(collaborator.status, 403);
  assert.match(collaborator.body, /"required":"owner"/);
  const ws = await openWs(`/w/ws_000000000000/opencode/pty/p/connect?token=${s.clientToken}`);
  assert.equal(ws.status, 404);
  assert.match(ws.body, /workspace_not_found/);
  const dots = await openWs(`/opencode/%2e%2e/admin?token=${s.clientToken}`);
  assert.equal(dots.status, 400);
  assert.match(dots.body, /invalid_path/);
  assert.equal(upgrades.length, 0);
});

test("upstream declining the upgrade: its answer is passed on and the socket closed", async () => {
  // An upstream without an upgrade listener answers the handshake as a plain request.
  const plain = createServer((_req, res) => {
    const self = `http://127.0.0.1:${(plain.address() as AddressInfo).port}`;
    res.writeHead(426, { "content-type": "text/plain", location: `${self}/pty/x`, "set-cookie": "sid=1", "access-control-allow-origin": "*" });
    res.end("upgrade required");
  });
  await new Promise<void>((r) => plain.listen(0, "127.0.0.1", r));
  const declined = await startServer({ env: { OPENWORK_OPENCODE_BASE_URL: `http://127.0.0.1:${(plain.address() as AddressInfo).port}` } });
  try {
    const { hostname, port } = new URL(declined.url);
    const declinedOwner = await declined.mintToken("owner");
    const answer = await new Promise<string>((resolve, reject) => {
      const sock = connect(Number(port), hostname);
      const chunks: Buffer[] = [];
      sock.on("connect", () =>
        sock.write(`GET /opencode/pty/x/connect?token=${declinedOwner} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${randomBytes(16).toString("base64")}\r\n\r\n`),
      );
      sock.on("data", (c: Buffer) => chunks.push(c));
      sock.on("error", reject);
      sock.on("close", () => resolve(Buffer.concat(chunks).toString()));
    });
    assert.match(answer, /^HTTP\/1\.1 426/);
    assert.match(answer, /upgrade required$/);
    // Same header rules as plain proxying (X16): the engine's address never reaches the client.
    assert.match(answer, /\r\nlocation: \/opencode\/pty\/x\r\n/i);
    assert.doesNotMatch(answer, /set-cookie|access-control-allow-origin|127\.0\.0\.1:\d+\/pty/i);
  } finally {
    await declined.close();
    await new Promise<void>((r) => plain.close(() => r()));
  }
});

test("upstream down → 502 opencode_unreachable on the socket", async () => {
  const port = await freePort();
  const down = await startServer({ env: { OPENWORK_OPENCODE_BASE_URL: `http://127.0.0.1:${port}` } });
  try {
    const { hostname, port: p } = new URL(down.url);
    const downOwner = await down.mintToken("owner");
    const answer = await new Promise<string>((resolve) => {
      const sock = connect(Number(p), hostname);
      const chunks: Buffer[] = [];
      sock.on("connect", () =>
        sock.write(`GET /opencode/pty/x/connect HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${downOwner}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${randomBytes(16).toString("base64")}\r\n\r\n`),
      );
      sock.on("data", (c: Buffer) => chunks.push(c));
      sock.on("close", () => resolve(Buffer.concat(chunks).toString()));
    });
    assert.match(answer, /^HTTP\/1\.1 502/);
    assert.match(answer, /"code":"opencode_unreachable"/);
    assert.match(answer, /"cause":"ECONNREFUSED"/);
  } finally {
    await down.close();
  }
});
