// Sliders sessions moving their amplitude slider in closed loops, as bench/procs.py's Python client
// does, at a fraction of its CPU: where the bench client shares the server's cores, every
// millisecond it spends is one the servers cannot. Node's standard library only.
//
//   node bench/patch_client.mjs --url http://127.0.0.1:5006 --sessions 32 --seconds 6
//
// Opens the sessions (page GET, websocket, ACK, PULL-DOC), checks the pulled document, makes two
// round trips per session, prints {"ready": N} and waits for a line on stdin; then runs the loops
// for --seconds and prints one JSON line: round trips, seconds, the client's CPU seconds, p50/p99.
// Every round trip is checked as the Python client checks it: the OK answers our message, and
// the recomputed y is amplitude * sin(x) (numpy's allclose, rtol 1e-9, atol 1e-12) over the
// unchanged x.
import crypto from "node:crypto";
import http from "node:http";
import net from "node:net";
import readline from "node:readline";
import zlib from "node:zlib";

const TOKEN_RE = /"token":\s*"([^"]+)"/;
const TIMEOUT_MS = 30000;

function option(name, fallback) {
  const index = process.argv.indexOf(`--${name}`);
  return index >= 0 ? process.argv[index + 1] : fallback;
}

function fail(message) {
  process.stderr.write(`patch_client: ${message}\n`);
  process.exit(1);
}

function getPage(url) {
  return new Promise((resolve, reject) => {
    http.get(url, { agent: false }, (response) => {
      const chunks = [];
      response.on("data", (chunk) => chunks.push(chunk));
      response.on("end", () => {
        if (response.statusCode !== 200) reject(new Error(`page GET ${url} answered ${response.statusCode}`));
        else resolve(Buffer.concat(chunks).toString());
      });
    }).on("error", reject);
  });
}

// masks for client frames, drawn from a random pool (RFC 6455: one unpredictable key per frame)
const MASKS = crypto.randomBytes(64 * 1024);
let maskAt = 0;

function frame(opcode, payload) {
  const length = payload.length;
  const head = length < 126 ? 2 : length < 65536 ? 4 : 10;
  const out = Buffer.allocUnsafe(head + 4 + length);
  out[0] = 0x80 | opcode;
  if (head === 2) out[1] = 0x80 | length;
  else if (head === 4) { out[1] = 0x80 | 126; out.writeUInt16BE(length, 2); }
  else { out[1] = 0x80 | 127; out.writeBigUInt64BE(BigInt(length), 2); }
  if (maskAt + 4 > MASKS.length) maskAt = 0;
  MASKS.copy(out, head, maskAt, maskAt + 4);
  const m0 = MASKS[maskAt], m1 = MASKS[maskAt + 1], m2 = MASKS[maskAt + 2], m3 = MASKS[maskAt + 3];
  maskAt += 4;
  const body = head + 4;
  for (let i = 0; i < length; i += 4) {
    out[body + i] = payload[i] ^ m0;
    if (i + 1 < length) out[body + i + 1] = payload[i + 1] ^ m1;
    if (i + 2 < length) out[body + i + 2] = payload[i + 2] ^ m2;
    if (i + 3 < length) out[body + i + 3] = payload[i + 3] ^ m3;
  }
  return out;
}

let msgCounter = 0;

class Session {
  constructor(base, app) {
    this.base = base.replace(/\/$/, "");
    this.app = app;
    this.pending = Buffer.alloc(0);
    this.fragments = null;
    this.parts = [];       // frames of the Bokeh message being assembled
    this.messages = [];
    this.waiter = null;
    this.closed = null;
  }

  async open() {
    const page = await getPage(this.base + this.app);
    const match = TOKEN_RE.exec(page);
    if (!match) throw new Error("no session token in the page");
    const url = new URL(this.base);
    const socket = net.connect({ host: url.hostname, port: Number(url.port) });
    socket.setNoDelay(true);
    this.socket = socket;
    const key = crypto.randomBytes(16).toString("base64");
    await new Promise((resolve, reject) => {
      let head = Buffer.alloc(0);
      const onData = (chunk) => {
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf("\r\n\r\n");
        if (end < 0) return;
        socket.off("data", onData);
        const status = head.subarray(0, end).toString();
        if (!/^HTTP\/1\.1 101 /.test(status)) return reject(new Error(`websocket refused: ${status.split("\r\n")[0]}`));
        const accept = crypto.createHash("sha1").update(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest("base64");
        if (!status.toLowerCase().includes(`sec-websocket-accept: ${accept.toLowerCase()}`)) {
          return reject(new Error("websocket handshake without the expected Sec-WebSocket-Accept"));
        }
        socket.on("data", (data) => this.received(data));
        const rest = head.subarray(end + 4);
        if (rest.length) this.received(rest);
        resolve();
      };
      socket.on("data", onData);
      socket.once("error", reject);
      socket.on("close", () => { this.closed = this.closed || "socket closed"; this.wake(); });
      socket.write(
        `GET ${this.app}/ws HTTP/1.1\r\nHost: ${url.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: bokeh, ${match[1]}\r\n\r\n`);
    });
    const ack = await this.recv();
    if (ack.header.msgtype !== "ACK") throw new Error(`first message was ${ack.header.msgtype}, not ACK`);
  }

  received(data) {
    let buffer = this.pending.length ? Buffer.concat([this.pending, data]) : data;
    let at = 0;
    while (buffer.length - at >= 2) {
      const first = buffer[at], second = buffer[at + 1];
      if (second & 0x80) return this.abort("masked frame from the server");
      let length = second & 0x7f, head = 2;
      if (length === 126) { if (buffer.length - at < 4) break; length = buffer.readUInt16BE(at + 2); head = 4; }
      else if (length === 127) { if (buffer.length - at < 10) break; length = Number(buffer.readBigUInt64BE(at + 2)); head = 10; }
      if (buffer.length - at < head + length) break;
      const payload = buffer.subarray(at + head, at + head + length);
      at += head + length;
      this.frameReceived(first & 0x80, first & 0x0f, payload);
    }
    this.pending = at < buffer.length ? Buffer.from(buffer.subarray(at)) : Buffer.alloc(0);
    this.wake();
  }

  frameReceived(fin, opcode, payload) {
    if (opcode === 0x9) { this.socket.write(frame(0xa, payload)); return; }
    if (opcode === 0xa) return;
    if (opcode === 0x8) { this.closed = `server closed the websocket (${payload.length >= 2 ? payload.readUInt16BE(0) : "no code"})`; return; }
    if (opcode !== 0) this.fragments = { text: opcode === 0x1, chunks: [] };
    else if (!this.fragments) return this.abort("a continuation frame without a message to continue");
    this.fragments.chunks.push(payload);
    if (!fin) return;
    const whole = this.fragments.chunks.length === 1 ? this.fragments.chunks[0] : Buffer.concat(this.fragments.chunks);
    const text = this.fragments.text;
    this.fragments = null;
    this.part(text ? whole.toString() : Buffer.from(whole));
  }

  part(value) {
    const parts = this.parts;
    parts.push(value);
    if (parts.length === 1) { this.header = JSON.parse(value); return; }
    const buffers = this.header.num_buffers || 0;
    if (parts.length < 3 + 2 * buffers) return;
    const bufferMap = new Map();
    for (let i = 0; i < buffers; i++) bufferMap.set(JSON.parse(parts[3 + 2 * i]).id, parts[4 + 2 * i]);
    this.messages.push({ header: this.header, content: JSON.parse(parts[2]), buffers: bufferMap });
    this.parts = [];
  }

  abort(reason) { this.closed = reason; this.socket.destroy(); }

  wake() {
    const waiter = this.waiter;
    if (waiter && (this.messages.length || this.closed)) { this.waiter = null; waiter(); }
  }

  async recv() {
    while (!this.messages.length) {
      if (this.closed) throw new Error(this.closed);
      await new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error("no reply within 30 s")), TIMEOUT_MS);
        this.waiter = () => { clearTimeout(timer); resolve(); };
      });
    }
    return this.messages.shift();
  }

  send(msgtype, content) {
    const msgid = `node${++msgCounter}`;
    this.socket.write(Buffer.concat([
      frame(0x1, Buffer.from(JSON.stringify({ msgid, msgtype }))),
      frame(0x1, Buffer.from("{}")),
      frame(0x1, Buffer.from(JSON.stringify(content))),
    ]));
    return msgid;
  }

  async request(msgtype, content) {
    const msgid = this.send(msgtype, content);
    for (;;) {
      const message = await this.recv();
      if (message.header.reqid === msgid) return message;
    }
  }

  close() { if (!this.socket.destroyed) this.socket.end(frame(0x8, Buffer.from([0x03, 0xe8]))); }
}

function* objects(node) {
  if (Array.isArray(node)) { for (const value of node) yield* objects(value); return; }
  if (node && typeof node === "object") {
    if (node.type === "object") yield node;
    for (const value of Object.values(node)) yield* objects(value);
  }
}

function byName(doc, name) {
  for (const node of objects(doc)) if (node.attributes && node.attributes.name === name) return node;
  throw new Error(`pulled sliders document has no model named ${name}`);
}

function entries(value) {
  if (value && value.type === "map") return new Map(value.entries);
  return new Map(Object.entries(value));
}

function columnBytes(value, buffers) {
  if (!value || value.type !== "ndarray" || value.dtype !== "float64" || (value.order || "little") !== "little") {
    throw new Error(`not a little-endian float64 column: ${JSON.stringify(value).slice(0, 80)}`);
  }
  const data = value.array.data;
  let raw = typeof data === "string" ? Buffer.from(data, "base64") : buffers.get(data.id);
  if (!raw) throw new Error("column refers to a buffer the message does not carry");
  if (raw[0] === 0x1f && raw[1] === 0x8b) raw = zlib.gunzipSync(raw);
  return raw;
}

function doubles(bytes) {
  const out = new Float64Array(bytes.length / 8);
  for (let i = 0; i < out.length; i++) out[i] = bytes.readDoubleLE(i * 8);
  return out;
}

function amplitudeFor(step) { return Math.round((0.5 + (step % 45) * 0.1) * 10) / 10; }

const expectations = new Map();

function checkRecomputed(message, info, amplitude) {
  for (const event of message.content.events || []) {
    if (!event.model || event.model.id !== info.source || event.attr !== "data") continue;
    const data = entries(event.kind === "ColumnDataChanged" ? event.data : event.new);
    if (!columnBytes(data.get("x"), message.buffers).equals(info.xBytes)) throw new Error("recomputed data changed x");
    const y = doubles(columnBytes(data.get("y"), message.buffers));
    let expected = expectations.get(amplitude);
    if (!expected) expectations.set(amplitude, expected = info.x.map((x) => amplitude * Math.sin(x)));
    if (y.length !== expected.length) throw new Error("recomputed y has another length");
    for (let i = 0; i < y.length; i++) {
      if (!(Math.abs(y[i] - expected[i]) <= 1e-12 + 1e-9 * Math.abs(expected[i]))) {
        throw new Error(`recomputed y is not ${amplitude} * sin(x)`);
      }
    }
    return true;
  }
  return false;
}

async function roundTrip(session, info) {
  const value = amplitudeFor(++info.step);
  const start = process.hrtime.bigint();
  const msgid = session.send("PATCH-DOC", { events: [{ kind: "ModelChanged", model: { id: info.amplitude }, attr: "value", new: value }] });
  let gotOk = false, gotData = false;
  while (!(gotOk && gotData)) {
    const message = await session.recv();
    if (message.header.reqid === msgid) {
      if (message.header.msgtype !== "OK") throw new Error(`PATCH-DOC answered ${message.header.msgtype}: ${JSON.stringify(message.content)}`);
      gotOk = true;
    } else if (message.header.msgtype === "PATCH-DOC" && checkRecomputed(message, info, value)) {
      gotData = true;
    }
  }
  return Number(process.hrtime.bigint() - start) / 1e6;
}

async function openSession(base, app) {
  const session = new Session(base, app);
  await session.open();
  const reply = await session.request("PULL-DOC-REQ", {});
  const doc = reply.content.doc;
  if (reply.header.msgtype !== "PULL-DOC-REPLY" || !doc || doc.title !== "Sliders") throw new Error("bad PULL-DOC reply");
  const source = byName(doc, "source");
  const data = entries(source.attributes.data);
  const xBytes = columnBytes(data.get("x"), reply.buffers);
  const x = doubles(xBytes);
  const y = doubles(columnBytes(data.get("y"), reply.buffers));
  if (x.length !== 200 || x.some((v, i) => Math.abs(y[i] - Math.sin(v)) > 1e-12 + 1e-9 * Math.abs(Math.sin(v)))) {
    throw new Error("pulled sliders source is not 200 points of y = sin(x)");
  }
  return { session, info: { amplitude: byName(doc, "amplitude").id, source: source.id, x, xBytes, step: 0 } };
}

function percentile(sorted, q) {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.max(0, Math.round((q / 100) * (sorted.length - 1))))] : NaN;
}

async function main() {
  const base = option("url");
  if (!base) fail("--url is required");
  const app = option("app", "/sliders");
  const count = Number(option("sessions", "32"));
  const seconds = Number(option("seconds", "6"));
  const opened = [];
  for (let i = 0; i < count; i++) opened.push(await openSession(base, app));
  for (const { session, info } of opened) { await roundTrip(session, info); await roundTrip(session, info); }
  process.stdout.write(JSON.stringify({ ready: count }) + "\n");
  const lines = readline.createInterface({ input: process.stdin });
  await new Promise((resolve) => lines.once("line", resolve));
  const times = [];
  const cpuStart = process.cpuUsage();
  const started = performance.now();
  const end = started + seconds * 1000;
  await Promise.all(opened.map(async ({ session, info }) => {
    while (performance.now() < end) times.push(await roundTrip(session, info));
  }));
  const elapsed = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuStart);
  times.sort((a, b) => a - b);
  process.stdout.write(JSON.stringify({
    round_trips: times.length, seconds: elapsed, cpu_seconds: (cpu.user + cpu.system) / 1e6, cpu_user_seconds: cpu.user / 1e6,
    p50_ms: percentile(times, 50), p99_ms: percentile(times, 99),
  }) + "\n");
  for (const { session } of opened) session.close();
  lines.close();
  setTimeout(() => process.exit(0), 2000).unref();  // a server slow to close its side holds nothing up
}

main().catch((error) => fail(error.stack || String(error)));
