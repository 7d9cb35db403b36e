// A tiny WebSocket broadcast server on the `ws` package: every text or binary message a
// client sends on /pub is relayed to every client connected on /sub. For Pushpin it also
// answers as the origin: WebSocket-over-HTTP (GRIP) on /ws and a GRIP-held SSE stream on
// /sse, both subscribing the client to channel `bench.fanout`.
//
// usage: node broadcast.js PORT [ORIGIN_PORT]
'use strict';
const http = require('http');
const { WebSocketServer } = require('ws');

const port = Number(process.argv[2] || 18090);
const originPort = Number(process.argv[3] || 0);

const subs = new Set();
const wss = new WebSocketServer({ host: '127.0.0.1', port, perMessageDeflate: false, clientTracking: false });
wss.on('connection', (ws, req) => {
  if (req.url.startsWith('/pub')) {
    ws.on('message', (data, isBinary) => {
      for (const s of subs) s.send(data, { binary: isBinary });
    });
  } else {
    subs.add(ws);
    ws.on('close', () => subs.delete(ws));
    ws.on('error', () => subs.delete(ws));
  }
});
wss.on('listening', () => console.log(`node ws broadcast listening on 127.0.0.1:${port}`));

if (originPort) {
  // The Pushpin origin: never sees published messages, only subscription set-up.
  http.createServer((req, res) => {
    if (req.url.startsWith('/ws')) {
      let body = '';
      req.on('data', (c) => { body += c; });
      req.on('end', () => {
        const headers = { 'Content-Type': 'application/websocket-events' };
        let out = '';
        if (body.startsWith('OPEN')) {
          headers['Sec-WebSocket-Extensions'] = 'grip';
          const ctl = 'c:' + JSON.stringify({ type: 'subscribe', channel: 'bench.fanout' });
          out = 'OPEN\r\n' + 'TEXT ' + Buffer.byteLength(ctl).toString(16) + '\r\n' + ctl + '\r\n';
        }
        res.writeHead(200, headers);
        res.end(out);
      });
    } else if (req.url.startsWith('/sse')) {
      res.writeHead(200, {
        'Content-Type': 'text/event-stream',
        'Grip-Hold': 'stream',
        'Grip-Channel': 'bench.fanout',
      });
      res.end(':ok\n\n');
    } else {
      res.writeHead(404);
      res.end();
    }
  }).listen(originPort, '127.0.0.1', () => console.log(`pushpin origin on 127.0.0.1:${originPort}`));
}
