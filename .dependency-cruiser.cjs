// The server's layers, lowest first (an import may only point down or sideways within a layer):
//   protocol → util (src/*.ts leaves) → store, blobs, network, observability → aws (credentials, SigV4)
//   → jail → runtimes, vmm → snapshots → images → lifecycle → api → serve (a role's wiring) → index.ts
// and no module cycle anywhere, type-only imports included. `npm run lint` runs this.
const S = '^packages/server/src/';
const dir = (...names) => `${S}(${names.join('|')})/`;
const never = (name, from, to, comment) => ({
  name,
  comment,
  severity: 'error',
  from: { path: from },
  to: { path: to },
});

module.exports = {
  forbidden: [
    { name: 'no-circular', severity: 'error', comment: 'modules form a DAG', from: {}, to: { circular: true } },
    never(
      'protocol-is-the-bottom',
      '^packages/protocol/',
      '^packages/(server|sdk|cli|guest-agent)/',
      'protocol imports no other package',
    ),
    never(
      'agent-only-protocol',
      '^packages/guest-agent/',
      '^packages/(server|sdk|cli)/',
      'the guest agent shares only the protocol',
    ),
    never('sdk-no-server', '^packages/sdk/', '^packages/(server|cli|guest-agent)/', 'the SDK runs in browsers too'),
    never(
      'console-through-the-sdk',
      '^packages/console/',
      '^packages/(server|cli|guest-agent)/',
      'the console talks to the API only through @capsule/sdk',
    ),
    never(
      'nothing-imports-index',
      '^packages/server/src/(?!index\\.ts)',
      `${S}index\\.ts$`,
      'index.ts wires everything; nothing wires it',
    ),
    {
      ...never(
        'util-is-low',
        `${S}[^/]+\\.ts$`,
        dir('api', 'lifecycle', 'images', 'snapshots'),
        'src/*.ts leaves sit under every directory',
      ),
      from: { path: `${S}[^/]+\\.ts$`, pathNot: `${S}(index|internals|system-vms)(\\.test)?\\.ts$` },
    },
    {
      ...never(
        'store-is-low',
        dir('store'),
        `${S}(api|lifecycle|images|snapshots|vmm|jail|runtimes|network|blobs)/`,
        'the store knows records, not what uses them',
      ),
      // a record holds a build plan: the plan's types are data, imported as such
      to: {
        path: `${S}(api|lifecycle|images|snapshots|vmm|jail|runtimes|network|blobs)/`,
        pathNot: `${S}images/build-plan\\.ts$`,
      },
    },
    never(
      'blobs-are-low',
      dir('blobs'),
      dir('api', 'lifecycle', 'images', 'snapshots', 'vmm', 'jail', 'runtimes', 'network', 'store'),
      'blob storage is a leaf service',
    ),
    never(
      'network-is-low',
      dir('network'),
      dir('api', 'lifecycle', 'images', 'snapshots', 'vmm', 'jail', 'runtimes'),
      'network plumbing knows no VM',
    ),
    never(
      'observability-is-low',
      dir('observability'),
      dir('api', 'lifecycle', 'images', 'snapshots', 'vmm', 'jail'),
      'metrics are recorded by everyone above',
    ),
    never(
      'aws-credentials-are-low',
      dir('aws'),
      dir('api', 'lifecycle', 'images', 'snapshots', 'vmm', 'jail', 'runtimes', 'network', 'blobs'),
      'access keys and SigV4 know the store, not what the AWS routes drive',
    ),
    never(
      'jail-under-vmm',
      dir('jail'),
      dir('api', 'lifecycle', 'images', 'snapshots', 'vmm', 'runtimes'),
      'the jail confines a QEMU; it does not run one',
    ),
    never(
      'vmm-under-snapshots',
      dir('vmm', 'runtimes'),
      dir('api', 'lifecycle', 'images', 'snapshots'),
      'a VM knows nothing of images or lifecycles',
    ),
    never(
      'snapshots-under-images',
      dir('snapshots'),
      dir('api', 'lifecycle', 'images'),
      'snapshots are taken for images, not by them',
    ),
    never(
      'images-under-lifecycle',
      dir('images'),
      dir('api', 'lifecycle'),
      'a launch uses an image, not the other way',
    ),
    never('lifecycle-under-api', dir('lifecycle'), dir('api'), 'the lifecycle answers no HTTP'),
    {
      ...never('serve-is-the-top', S, dir('serve'), "serve/ wires a server's parts; only index.ts starts one"),
      from: { path: S, pathNot: `(${S}index\\.ts|${dir('serve')}.*)$` },
    },
  ],
  options: {
    tsConfig: { fileName: 'tsconfig.json' },
    tsPreCompilationDeps: true,
    doNotFollow: { path: 'node_modules' },
    exclude: { path: 'node_modules|/dist/' },
  },
};
