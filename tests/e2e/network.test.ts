// Network isolation: every MicroVM in its own namespace behind nftables. Tested against a fake internet
// the test builds in a namespace of its own (TEST-NET hosts, a TLS host with two names on one address, a
// DNS server, a fake metadata service): nothing a guest sends leaves this machine.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import os from 'node:os';
import type { MicroVM } from '@capsule/sdk';
import { endpointGet, errorOf, networkNamespaces, qemuProcesses, useTestServer, withTestServer } from './helpers.js';
import { FAKE_DNS, startFakeInternet, type FakeInternet } from '../support/fake-internet.js';
import { probeAll, type Target } from '../support/net-probe.js';
import { zipOf } from '../support/zip-writer.js';

const blocked = (results: Record<string, string>, labels = Object.keys(results)): void => {
  for (const label of labels)
    assert.match(results[label], /^blocked: /, `${label} must be unreachable: ${results[label]}`);
};

describe('network isolation', () => {
  const server = useTestServer({ dnsUpstream: FAKE_DNS });
  let internet: FakeInternet;
  let hostListener: net.Server;
  let hostPort: number;
  let vm: MicroVM;
  let neighbour: MicroVM;

  before(async () => {
    internet = await startFakeInternet();
    hostListener = net.createServer((s) => s.end('host\n'));
    await new Promise<void>((r) => hostListener.listen(0, '0.0.0.0', r));
    hostPort = (hostListener.address() as net.AddressInfo).port;
    [vm, neighbour] = await Promise.all([
      server().capsule.microvms.run({ imageName: 'base', network: { egress: 'all' } }),
      server().capsule.microvms.run({ imageName: 'base' }),
    ]);
    await neighbour.exec(
      "nohup node -e \"require('net').createServer((s) => s.end('vm')).listen(8080)\" >/dev/null 2>&1 &",
    );
  });
  after(async () => {
    hostListener?.close();
    await internet?.close();
  });

  /**
   * What no policy may reach (the host's addresses as of now: namespaces come and go): the host on every address (the
   * API, a listener on all of them), the gateway, metadata, another VM, other DNS servers.
   */
  function forbidden(): Record<string, Target> {
    const apiPort = Number(new URL(server().url).port);
    const hostAddresses = Object.values(os.networkInterfaces())
      .flat()
      .filter((a) => a && a.family === 'IPv4' && !a.internal)
      .map((a) => a!.address);
    const targets: Record<string, Target> = {
      'gateway api': { kind: 'tcp', host: '10.0.2.2', port: apiPort },
      'gateway listener': { kind: 'tcp', host: '10.0.2.2', port: hostPort },
      'dns server address': { kind: 'tcp', host: '10.0.2.3', port: hostPort },
      metadata: { kind: 'http', url: 'http://169.254.169.254/' },
      'another dns server': { kind: 'dns-direct', server: FAKE_DNS, name: 'allowed.example.com' },
      'another dns server (tcp)': { kind: 'tcp', host: FAKE_DNS, port: 53 },
    };
    for (const address of hostAddresses) {
      targets[`host ${address} api`] = { kind: 'tcp', host: address, port: apiPort };
      targets[`host ${address} listener`] = { kind: 'tcp', host: address, port: hostPort };
      // every VM's uplink (the neighbour's among them): its namespace end answers nothing from here
      if (address.startsWith('10.200.'))
        targets[`vm uplink ${address}`] = {
          kind: 'tcp',
          host: address.replace(/\.(\d+)$/, (_, n) => `.${Number(n) + 1}`),
          port: 8080,
        };
    }
    return targets;
  }

  test(
    'egress all: the fake internet by address and by name; never the host, metadata, another VM or ' +
      'another resolver',
    async () => {
      assert.deepEqual(vm.info.network, { egress: 'all', allow: [], deny: [] });
      const results = await probeAll(vm, {
        byName: { kind: 'http', url: 'http://allowed.example.com/' },
        byAddress: { kind: 'http', url: 'http://203.0.113.10/' },
        tls: { kind: 'tls', host: 'tls-two.example.org', servername: 'tls-two.example.org' },
        ...forbidden(),
      });
      assert.equal(results.byName, 'ok: hello from 198.51.100.10 host=allowed.example.com');
      assert.equal(results.byAddress, 'ok: hello from 203.0.113.10 host=203.0.113.10');
      assert.equal(results.tls, 'ok: tls tls-two.example.org');
      blocked(
        results,
        Object.keys(results).filter((l) => !['byName', 'byAddress', 'tls'].includes(l)),
      );
    },
  );

  test(
    'allowlist by domain and wildcard: listed names work; unlisted names, bare addresses and a mismatched ' +
      'SNI or Host do not',
    async () => {
      await vm.network.update({
        egress: 'allowlist',
        allow: ['allowed.example.com', '*.wild.example.net', 'tls-one.example.org'],
      });
      assert.equal(vm.info.egress, 'allowlist');
      const results = await probeAll(vm, {
        listed: { kind: 'http', url: 'http://allowed.example.com/' },
        wildcard: { kind: 'http', url: 'http://a.wild.example.net/' },
        tlsListed: { kind: 'tls', host: 'tls-one.example.org', servername: 'tls-one.example.org' },
        unlistedName: { kind: 'http', url: 'http://other.example.com/' },
        wildcardParent: { kind: 'dns', name: 'wild.example.net' },
        bareAddress: { kind: 'http', url: 'http://203.0.113.10/' },
        otherPort: { kind: 'tcp', host: '203.0.113.10', port: 2222 },
        tlsUnlistedSni: { kind: 'tls', host: 'tls-one.example.org', servername: 'tls-two.example.org' },
        wrongHost: { kind: 'http', url: 'http://allowed.example.com/', host: 'other.example.com' },
        rebinding: { kind: 'dns', name: 'metadata.example.com' },
        ...forbidden(),
      });
      assert.equal(results.listed, 'ok: hello from 198.51.100.10 host=allowed.example.com');
      assert.equal(results.wildcard, 'ok: hello from 198.51.100.11 host=a.wild.example.net');
      assert.equal(results.tlsListed, 'ok: tls tls-one.example.org');
      assert.equal(results.unlistedName, 'blocked: ENOTFOUND');
      assert.equal(results.wildcardParent, 'blocked: ENOTFOUND');
      blocked(
        results,
        Object.keys(results).filter(
          (l) => !['listed', 'wildcard', 'tlsListed', 'unlistedName', 'wildcardParent'].includes(l),
        ),
      );

      // the log says what was decided and by which rule (flow verdicts reach it asynchronously, through NFLOG)
      let log = await vm.network.log();
      const has = (match: Partial<(typeof log)[number]>): boolean =>
        log.some((e) => Object.entries(match).every(([k, v]) => (e as Record<string, unknown>)[k] === v));
      for (let i = 0; i < 50 && !has({ protocol: 'tcp', address: '169.254.169.254', verdict: 'deny' }); i++) {
        await new Promise((r) => setTimeout(r, 100));
        log = await vm.network.log();
      }
      assert.ok(
        has({
          protocol: 'dns',
          name: 'allowed.example.com',
          verdict: 'allow',
          rule: 'allow:allowed.example.com',
          address: '198.51.100.10',
        }),
        'DNS answer allowed',
      );
      assert.ok(
        has({ protocol: 'dns', name: 'other.example.com', verdict: 'deny', rule: 'not-allowed' }),
        'DNS query denied',
      );
      assert.ok(
        has({
          protocol: 'tcp',
          name: 'allowed.example.com',
          address: '198.51.100.10',
          port: 80,
          verdict: 'allow',
          rule: 'allow:allowed.example.com (host)',
        }),
        'flow allowed by name',
      );
      assert.ok(
        has({ protocol: 'tcp', name: 'tls-two.example.org', port: 443, verdict: 'deny' }),
        'SNI of an unlisted name denied',
      );
      assert.ok(
        has({ protocol: 'tcp', address: '203.0.113.10', port: 80, verdict: 'deny', rule: 'not-allowed' }),
        'bare address denied',
      );
      assert.ok(
        has({
          protocol: 'tcp',
          address: '169.254.169.254',
          port: 80,
          verdict: 'deny',
          rule: 'always-denied:link-local',
        }),
        'metadata denied',
      );
      assert.ok(
        has({ protocol: 'udp', address: FAKE_DNS, port: 53, verdict: 'deny', rule: 'dns-elsewhere' }),
        'other resolver denied',
      );
      const metrics = await (await server().api('GET', '/metrics')).text();
      assert.match(metrics, /capsule_egress_decisions_total\{protocol="dns",verdict="allow"\} [1-9]/);
      assert.match(metrics, /capsule_egress_decisions_total\{protocol="tcp",verdict="deny"\} [1-9]/);
    },
  );

  test('CIDR allowlist with deny winning; egress all minus a denied range', async () => {
    await vm.network.update({
      egress: 'allowlist',
      allow: ['198.51.100.0/24', '203.0.113.10'],
      deny: ['198.51.100.10'],
    });
    let results = await probeAll(vm, {
      inRange: { kind: 'http', url: 'http://198.51.100.11/' },
      listedAddressOtherPort: { kind: 'tcp', host: '203.0.113.10', port: 2222 },
      denied: { kind: 'http', url: 'http://198.51.100.10/' },
      namesNeedNameEntries: { kind: 'dns', name: 'allowed.example.com' },
    });
    assert.equal(results.inRange, 'ok: hello from 198.51.100.11 host=198.51.100.11');
    assert.equal(results.listedAddressOtherPort, 'ok: connected');
    blocked(results, ['denied', 'namesNeedNameEntries']);

    await vm.network.update({ egress: 'all', deny: ['203.0.113.0/24'] });
    results = await probeAll(vm, {
      open: { kind: 'http', url: 'http://allowed.example.com/' },
      denied: { kind: 'http', url: 'http://203.0.113.10/' },
      deniedPort: { kind: 'tcp', host: '203.0.113.10', port: 2222 },
    });
    assert.equal(results.open, 'ok: hello from 198.51.100.10 host=allowed.example.com');
    blocked(results, ['denied', 'deniedPort']);
    assert.ok((await vm.network.log()).some((e) => e.address === '203.0.113.10' && e.rule === 'deny:203.0.113.0/24'));
  });

  test('none, and a runtime change both ways, in force when PATCH returns; an open connection stops', async () => {
    await vm.network.update({ egress: 'all' });
    // a download opened under `all` counts its bytes into /tmp/n …
    await vm.exec(
      "nohup node -e \"let n = 0; require('http').get('http://198.51.100.10/bytes/100000', (r) => " +
        "r.on('data', (c) => { n += c.length })); setInterval(() => require('fs').writeFileSync('/tmp/n', " +
        'String(n)), 100)" >/dev/null 2>&1 &',
    );
    const received = async (): Promise<number> => Number((await vm.exec('cat /tmp/n 2>/dev/null || echo 0')).stdout);
    for (let i = 0; i < 100 && (await received()) === 0; i++) await new Promise((r) => setTimeout(r, 100));
    assert.ok((await received()) > 0, 'the download started');
    // in force when the PATCH returns (no timing here: how long it takes is the bench's to measure) …
    await vm.network.update({ egress: 'none' });
    // … so the download gets nothing more (what was in flight aside)
    await new Promise((r) => setTimeout(r, 500));
    const atCut = await received();
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(await received(), atCut, 'no byte flows after the change to none');
    await vm.exec('pkill -f bytes/100000 || true');
    const results = await probeAll(vm, {
      byAddress: { kind: 'http', url: 'http://198.51.100.10/' },
      byName: { kind: 'dns', name: 'allowed.example.com' },
      ...forbidden(),
    });
    blocked(results);
    await vm.network.update({ egress: 'all' });
    assert.equal(
      (await probeAll(vm, { back: { kind: 'http', url: 'http://198.51.100.10/' } })).back,
      'ok: hello from 198.51.100.10 host=198.51.100.10',
    );
  });

  test('suspend and resume keep the policy (and the log)', async () => {
    await vm.network.update({ egress: 'allowlist', allow: ['allowed.example.com'] });
    const before = (await vm.network.log()).length;
    await vm.suspend();
    await vm.resume();
    assert.deepEqual((await vm.refresh()).network, { egress: 'allowlist', allow: ['allowed.example.com'], deny: [] });
    const results = await probeAll(vm, {
      listed: { kind: 'http', url: 'http://allowed.example.com/' },
      unlisted: { kind: 'dns', name: 'other.example.com' },
      bare: { kind: 'http', url: 'http://203.0.113.10/' },
    });
    assert.equal(results.listed, 'ok: hello from 198.51.100.10 host=allowed.example.com');
    blocked(results, ['unlisted', 'bare']);
    assert.ok((await vm.network.log()).length > before, 'the log outlives the suspend');
  });

  test(
    "bad policies are 400 naming the entry; a private range is not a tenant's to open; another " + "tenant's VM is 404",
    async () => {
      const cases: Array<[unknown, RegExp]> = [
        [{ egress: 'allowlist', allow: ['*'] }, /"\*"/],
        [{ egress: 'allowlist', allow: ['*.com'] }, /"\*\.com"/],
        [{ egress: 'allowlist', allow: ['10.0.0.0/33'] }, /"10\.0\.0\.0\/33"/],
        [{ egress: 'allowlist', allow: [] }, /at least one allow entry/],
        [{ egress: 'allowlist', allow: ['10.1.0.0/16'] }, /"10\.1\.0\.0\/16" overlaps 10\.0\.0\.0\/8/],
        [{ egress: 'allowlist', allow: ['169.254.169.254'] }, /link-local/],
        [{ egress: 'allowlist', allow: Array.from({ length: 257 }, (_, i) => `h${i}.example.com`) }, /at most 256/],
        [{ egress: 'everything' }, /egress/],
      ];
      for (const [network, message] of cases) {
        for (const response of [
          await server().api('POST', '/v1/microvms', { imageName: 'base', network }),
          await server().api('PATCH', `/v1/microvms/${vm.id}/network`, network),
        ]) {
          const error = await errorOf(response);
          assert.deepEqual([error.status, error.code], [400, 'VALIDATION_FAILED'], JSON.stringify(network));
          assert.match(error.message, message);
        }
      }
      assert.equal((await vm.refresh()).network.allow[0], 'allowed.example.com', 'a refused change changes nothing');
      const tenant = (await (await server().api('POST', '/v1/tenants', { name: 'net-other' })).json()) as {
        id: string;
      };
      const { key } = (await (await server().api('POST', `/v1/tenants/${tenant.id}/api-keys`, {})).json()) as {
        key: string;
      };
      for (const [method, route] of [
        ['PATCH', `/v1/microvms/${vm.id}/network`],
        ['GET', `/v1/microvms/${vm.id}/network/log`],
      ]) {
        const response = await fetch(server().url + route, {
          method,
          headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
          body: method === 'PATCH' ? '{"egress":"all"}' : undefined,
        });
        assert.equal(response.status, 404, `${method} ${route}`);
      }
    },
  );

  test(
    "endpoints reach an app on the guest's address through the namespace, one on loopback through the " +
      'agent tunnel; egress does not matter',
    async () => {
      await vm.network.update({ egress: 'none' });
      // each app says so once it listens: the first request must not race its start
      const app = (port: number, address: string): string =>
        `nohup node -e "require('http').createServer((q, r) => r.end(q.socket.remoteAddress)).listen(${port}, ` +
        `'${address}', () => require('fs').writeFileSync('/tmp/up-${port}', ''))" >/dev/null 2>&1 &`;
      await vm.exec(`${app(8080, '0.0.0.0')} ${app(8081, '127.0.0.1')}`);
      assert.equal(
        (
          await vm.exec(
            'for i in $(seq 100); do [ -e /tmp/up-8080 ] && [ -e /tmp/up-8081 ] && exit 0; sleep 0.1; done; exit 1',
          )
        ).exitCode,
        0,
        'both apps listen',
      );
      const { token } = await vm.createAuthToken({ allowedPorts: [8080, 8081] });
      const peer = async (port: number): Promise<string> => {
        for (let i = 0; i < 50; i++) {
          const page = await endpointGet(server().url, vm.id, { 'x-capsule-auth': token }, '/', port).catch(() => null);
          if (page?.status === 200) return page.body;
          await new Promise((r) => setTimeout(r, 200)); // the apps coming up
        }
        throw new Error(`port ${port} never answered`);
      };
      assert.equal(await peer(8080), '10.0.2.2', "the direct path: the app sees the namespace's gateway");
      assert.equal(await peer(8081), '127.0.0.1', 'the agent tunnel');
    },
  );

  test('builds reach the public internet but never the host; a build can ask for no network', async () => {
    const apiPort = Number(new URL(server().url).port);
    const reach = (host: string, port: number): string =>
      `node -e "require('net').connect(${port}, '${host}').on('connect', () => process.exit(0)).on('error', ` +
      `() => process.exit(1)).setTimeout(2000, () => process.exit(1))"`;
    const dockerfile = [
      'FROM base',
      `RUN ${reach('allowed.example.com', 80)}`,
      ...['10.0.2.2', '192.0.2.2', '169.254.169.254'].map((h) => `RUN ! ${reach(h, apiPort)} && ! ${reach(h, 80)}`),
      'CMD ["true"]',
      '',
    ].join('\n');
    const upload = (name: string, files: Array<{ name: string; data: string }>): Promise<Response> =>
      fetch(`${server().url}/v1/images?name=${name}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${server().adminKey}`, 'content-type': 'application/zip' },
        body: new Uint8Array(zipOf(files)),
      });
    assert.equal((await upload('net-build', [{ name: 'Dockerfile', data: dockerfile }])).status, 202);
    const offline = {
      runtime: 'base',
      build: { commands: [`! ${reach('allowed.example.com', 80)}`, `! ${reach('198.51.100.10', 80)}`], egress: 'none' },
    };
    assert.equal((await upload('net-offline', [{ name: 'capsule.json', data: JSON.stringify(offline) }])).status, 202);
    for (const name of ['net-build', 'net-offline']) {
      const version = await server().capsule.images.waitUntilBuilt(name, 1, { timeoutMs: 600_000 });
      assert.equal(version.state, 'SUCCESSFUL', `${name}: ${version.failureReason}`);
    }
  });
});

describe('network faults', () => {
  test('a namespace that cannot be made fails the launch with a clear error and leaks nothing', async () => {
    // a pool of one /30: the second VM finds no free slot
    await withTestServer({ netPool: '10.201.0.0/30', netPoolSize: 0 }, async (server) => {
      const first = await server.capsule.microvms.run({ imageName: 'base' });
      const refused = await errorOf(await server.api('POST', '/v1/microvms', { imageName: 'base' }));
      assert.deepEqual([refused.status, refused.code], [503, 'NETWORK_FAILED']);
      assert.match(refused.message, /no free network slot.*10\.201\.0\.0\/30/);
      const failed = (await server.capsule.microvms.list({ state: 'FAILED' })).microvms;
      assert.equal(failed.length, 1);
      assert.match(failed[0].info.failureReason ?? '', /NETWORK_FAILED/);
      assert.deepEqual(
        networkNamespaces(server.dataDir).map((n) => n.vmId),
        [first.id],
      );
      // kill -9 of a VM's QEMU: it fails, and its namespace goes with it
      const [pid] = qemuProcesses(first.id);
      process.kill(pid, 'SIGKILL');
      for (let i = 0; i < 100 && (await first.refresh()).state !== 'FAILED'; i++)
        await new Promise((r) => setTimeout(r, 100));
      assert.equal(first.info.state, 'FAILED');
      assert.deepEqual(networkNamespaces(server.dataDir), []);
    });
  });
});
