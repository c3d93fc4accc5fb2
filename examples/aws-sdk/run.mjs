// Capsule driven by AWS's own SDK for Lambda MicroVMs, unchanged: one line of configuration (the endpoint) and
// the access key pair Capsule wrote. Runs a MicroVM from the managed `python` image, opens AWS's shell in it to
// start a web server, fetches the page through the MicroVM's endpoint with an auth token, and terminates it.
//
//   node examples/aws-sdk/run.mjs            # against `capsule serve` on 127.0.0.1:7070, data in .capsule/
//   CAPSULE_URL=http://host:7070 CAPSULE_AWS_CREDENTIALS=/path/aws-credentials node examples/aws-sdk/run.mjs
import fs from 'node:fs';
import { WebSocket } from 'ws';
import {
  CreateMicrovmAuthTokenCommand,
  CreateMicrovmShellAuthTokenCommand,
  LambdaMicrovmsClient,
  RunMicrovmCommand,
  TerminateMicrovmCommand,
} from '@aws-sdk/client-lambda-microvms';

const endpoint = process.env.CAPSULE_URL ?? 'http://127.0.0.1:7070';
const credentialsFile = process.env.CAPSULE_AWS_CREDENTIALS ?? '.capsule/aws-credentials';
const lambda = new LambdaMicrovmsClient({
  region: 'us-east-1', // any region: Capsule accepts every one
  endpoint,
  credentials: JSON.parse(fs.readFileSync(credentialsFile, 'utf8')),
});

/** Type `input` into AWS's shell on the MicroVM and wait for the shell to exit; resolves with what it printed. */
function shell(vmEndpoint, token, input) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${vmEndpoint.replace(/^http/, 'ws')}/shell`, [
      'lambda-microvms',
      `lambda-microvms.authentication.${token}`,
    ]);
    let output = '';
    ws.on('message', (data, isBinary) => {
      if (!isBinary) return; // {"type":"session_init",…}
      output += String(data);
    });
    ws.once('open', () => ws.send(Buffer.from(input)));
    ws.once('close', (code, reason) =>
      code === 1000 ? resolve(output) : reject(new Error(`shell closed ${code} ${reason}`)),
    );
    ws.once('error', reject);
  });
}

const vm = await lambda.send(
  new RunMicrovmCommand({
    imageIdentifier: 'arn:aws:lambda:us-east-1:aws:microvm-image:python',
    maximumDurationInSeconds: 600,
  }),
);
console.log(`MicroVM ${vm.microvmId} is ${vm.state}; endpoint ${vm.endpoint}`);
try {
  const shellToken = await lambda.send(
    new CreateMicrovmShellAuthTokenCommand({ microvmIdentifier: vm.microvmId, expirationInMinutes: 5 }),
  );
  await shell(
    vm.endpoint,
    shellToken.authToken['X-aws-proxy-auth'],
    'mkdir -p /srv && cd /srv && echo "hello from $(hostname)" > index.html && ' +
      '(nohup python3 -m http.server 8080 >/dev/null 2>&1 &); exit\n',
  );
  const token = await lambda.send(
    new CreateMicrovmAuthTokenCommand({
      microvmIdentifier: vm.microvmId,
      expirationInMinutes: 5,
      allowedPorts: [{ port: 8080 }],
    }),
  );
  // plain fetch: the endpoint is a path on Capsule's own address, no DNS tricks
  let page = null;
  for (let attempt = 0; attempt < 50 && page === null; attempt++) {
    const res = await fetch(`${vm.endpoint}/index.html`, { headers: token.authToken });
    if (res.ok) page = await res.text();
    else await new Promise((r) => setTimeout(r, 200)); // the server is still starting
  }
  console.log(`GET ${vm.endpoint}/index.html → ${page?.trim() ?? 'no answer'}`);
  if (page === null) process.exitCode = 1;
} finally {
  await lambda.send(new TerminateMicrovmCommand({ microvmIdentifier: vm.microvmId }));
  console.log(`MicroVM ${vm.microvmId} terminated`);
}
