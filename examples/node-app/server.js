// A plain Node.js HTTP server described by capsule.json (no Dockerfile): the node runtime, a build
// check, a start command and a port.
const http = require('node:http');
const os = require('node:os');

http
  .createServer((req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ hello: 'from node', hostname: os.hostname(), env: process.env.NODE_ENV, path: req.url }));
  })
  .listen(3000, '0.0.0.0');
