// A tenant's storage quota: its VMs' disk overlays, suspended state and image artifacts, measured on
// disk. At or over it, launches and new image versions answer 429 QUOTA_EXCEEDED with the breakdown;
// a suspend is still allowed (refusing would keep the VM holding CPU and RAM until it is cut off), and
// terminating frees the room again.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Capsule, QuotaExceededError, type MicroVM } from '@capsule/sdk';
import { runCli, useTestServer } from './helpers.js';

describe('storage quota', () => {
  const server = useTestServer();

  test(
    'a 64 MiB file fills a 48 MiB quota: launch and image create get 429 with the breakdown; suspend still ' +
      'works; terminate frees it',
    async () => {
      const tenant = await server().capsule.tenants.create({ name: 'tenant-storage', quotas: { maxStorageMib: 48 } });
      const { key } = await server().capsule.tenants.createApiKey(tenant.id);
      const capsule = new Capsule({ baseUrl: server().url, apiKey: key });
      const other = await server().capsule.tenants.create({ name: 'tenant-storage-other' });
      const otherKey = (await server().capsule.tenants.createApiKey(other.id)).key;
      const vms: MicroVM[] = [];
      try {
        const fresh = await capsule.tenants.usage(tenant.id);
        assert.equal(fresh.quotas.maxStorageMib, 48);
        assert.equal(fresh.storage.totalMib, 0, JSON.stringify(fresh));

        const vm = await capsule.microvms.run({ imageName: 'base' });
        vms.push(vm);
        // random bytes: the overlay holds them (zeroes could be left sparse)
        const wrote = await vm.exec('head -c 64M /dev/urandom > /root/fill && sync && echo done');
        assert.equal(wrote.stdout, 'done\n', wrote.stderr);
        const full = await capsule.tenants.usage(tenant.id);
        assert.ok(full.storage.overlaysMib >= 64 && full.storage.totalMib >= 64, JSON.stringify(full));
        assert.equal(full.runningMicroVMs, 1);

        const refused = await capsule.microvms.run({ imageName: 'base' }).catch((err: Error) => err);
        assert.ok(refused instanceof QuotaExceededError, String(refused));
        const details = refused.details as {
          quota: string;
          limit: number;
          used: number;
          storage: { overlaysMib: number };
        };
        assert.equal(details.quota, 'maxStorageMib');
        assert.equal(details.limit, 48);
        assert.ok(details.used >= 64 && details.storage.overlaysMib >= 64, JSON.stringify(details));
        assert.match(refused.message, /maxStorageMib.*disk overlays/);

        // a new image version adds bytes too: refused before the upload is read
        const image = await fetch(`${server().url}/v1/images?name=too-much`, {
          method: 'POST',
          headers: { authorization: `Bearer ${key}`, 'content-type': 'application/zip' },
          body: Buffer.alloc(1024),
        });
        const imageError = (await image.json()) as { error: { code: string; details: { quota: string } } };
        assert.equal(image.status, 429);
        assert.deepEqual([imageError.error.code, imageError.error.details.quota], ['QUOTA_EXCEEDED', 'maxStorageMib']);
        assert.deepEqual(await capsule.images.list(), [], 'nothing was created');

        // over quota, a suspend is not refused: the bytes move from the overlay to suspended state
        await vm.suspend();
        const suspended = await capsule.tenants.usage(tenant.id);
        assert.ok(
          suspended.storage.suspendedMib >= 64 && suspended.storage.overlaysMib === 0,
          JSON.stringify(suspended),
        );
        assert.equal(suspended.runningMicroVMs, 0);

        // the CLI shows the same figures; another tenant's key sees no such tenant
        const cli = await runCli(server().url, key, ['tenant', 'usage', tenant.id]);
        assert.equal(cli.code, 0, cli.stderr);
        assert.match(cli.stdout, /storage\s+\d+(\.\d)? \/ 48 MiB \(suspended \d/);
        const peek = await fetch(`${server().url}/v1/tenants/${tenant.id}/usage`, {
          headers: { authorization: `Bearer ${otherKey}` },
        });
        assert.equal(peek.status, 404);

        await vm.terminate();
        assert.equal((await capsule.tenants.usage(tenant.id)).storage.totalMib, 0);
        vms.push(await capsule.microvms.run({ imageName: 'base' }));
        assert.equal(
          (await vms[1].exec('cat /root/fill 2>/dev/null | wc -c')).stdout.trim(),
          '0',
          'a new VM, not the old disk',
        );
      } finally {
        for (const vm of vms) if ((await vm.refresh()).state !== 'TERMINATED') await vm.terminate();
      }
    },
  );
});
