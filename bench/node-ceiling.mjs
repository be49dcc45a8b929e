#!/usr/bin/env node
// The yardstick of issue 20: the least a Node.js RESP server does per request. A Map behind a
// streaming multibulk parser of the same style as src/protocol/parser.ts (one buffer, indexOf for
// line ends, small values copied out of the read buffer), replies gathered per read and written
// with one socket.write. No storage, no command table, no limits, no metrics: what is left is the
// cost of the runtime (the event loop, libuv, the socket streams, Buffers), which our server pays
// too. `npm run bench` runs it beside redis-server and reports ours ÷ this ceiling per case.
//
//   node bench/node-ceiling.mjs --port N [--host 127.0.0.1]
//
// Commands: GET, SET (no options), PING, and CONFIG GET (empty array, for redis-benchmark's banner);
// anything else gets +OK so redis-benchmark never stalls. Not a server for anything but this.
import { createServer } from 'node:net';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { port: { type: 'string' }, host: { type: 'string', default: '127.0.0.1' } } });
const port = Number(values.port);
if (!Number.isInteger(port) || port <= 0) {
  process.stderr.write('usage: node bench/node-ceiling.mjs --port N [--host 127.0.0.1]\n');
  process.exit(2);
}

const CR = 13;
const OK = Buffer.from('+OK\r\n');
const PONG = Buffer.from('+PONG\r\n');
const NIL = Buffer.from('$-1\r\n');
const EMPTY_ARRAY = Buffer.from('*0\r\n');
const CRLF = Buffer.from('\r\n');
const EMPTY = Buffer.alloc(0);

const data = new Map();

function intAt(buf, start, end) {
  let n = 0;
  for (let i = start; i < end; i++) n = n * 10 + (buf[i] - 48);
  return n;
}

/** Parses complete commands from buf[pos..]; returns [commands, nextPos]. */
function parse(buf, pos, out) {
  for (;;) {
    if (pos >= buf.length || buf[pos] !== 0x2a) return pos;
    const cr = buf.indexOf(CR, pos);
    if (cr < 0 || cr + 1 >= buf.length) return pos;
    const n = intAt(buf, pos + 1, cr);
    let at = cr + 2;
    const args = [];
    for (let i = 0; i < n; i++) {
      if (at >= buf.length) return pos;
      const lcr = buf.indexOf(CR, at);
      if (lcr < 0 || lcr + 1 >= buf.length) return pos;
      const len = intAt(buf, at + 1, lcr);
      const start = lcr + 2;
      if (start + len + 2 > buf.length) return pos;
      const slice = buf.subarray(start, start + len);
      args.push(len < 4096 ? Buffer.from(slice) : slice);
      at = start + len + 2;
    }
    out.push(args);
    pos = at;
  }
}

function execute(args, replies) {
  const name = args[0].toString('latin1').toLowerCase();
  if (name === 'get') {
    const v = data.get(args[1].toString('latin1'));
    if (v === undefined) replies.push(NIL);
    else replies.push(Buffer.from(`$${v.length}\r\n`), v, CRLF);
  } else if (name === 'set') {
    data.set(args[1].toString('latin1'), args[2]);
    replies.push(OK);
  } else if (name === 'ping') {
    replies.push(PONG);
  } else if (name === 'config') {
    replies.push(EMPTY_ARRAY);
  } else {
    replies.push(OK);
  }
}

const server = createServer((socket) => {
  socket.setNoDelay(true);
  let buf = EMPTY;
  socket.on('data', (chunk) => {
    buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
    const commands = [];
    const pos = parse(buf, 0, commands);
    buf = pos >= buf.length ? EMPTY : buf.subarray(pos);
    if (commands.length === 0) return;
    const replies = [];
    for (const args of commands) execute(args, replies);
    socket.write(replies.length === 1 ? replies[0] : Buffer.concat(replies));
  });
  socket.on('error', () => socket.destroy());
});
server.listen(port, values.host);
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
