import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { NetworkPolicy, parseEgressEntry, resolveNetworkPolicy } from '@capsule/protocol';
import { CompiledPolicy, checkTenantPolicy } from './policy.js';
import { hostRuleset, learnRules, namespaceRuleset, policyRules } from './nft-rules.js';
import { nameCheckedPorts, slotAddresses, slotCount, slotOfNetns } from './addressing.js';
import { run } from './netns.js';

const issues = (input: unknown): string[] => {
  const r = NetworkPolicy.safeParse(input);
  return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
};

describe('egress entries', () => {
  test('domains, wildcards, addresses and CIDRs parse; case and a trailing dot do not matter', () => {
    assert.deepEqual(parseEgressEntry('PyPI.org.'), { kind: 'domain', name: 'pypi.org' });
    assert.deepEqual(parseEgressEntry('*.githubusercontent.com'), {
      kind: 'wildcard',
      suffix: 'githubusercontent.com',
    });
    assert.deepEqual(parseEgressEntry('203.0.113.7'), {
      kind: 'cidr',
      network: 0xcb007107,
      prefix: 32,
      text: '203.0.113.7/32',
    });
    assert.deepEqual(parseEgressEntry('198.51.100.0/24'), {
      kind: 'cidr',
      network: 0xc6336400,
      prefix: 24,
      text: '198.51.100.0/24',
    });
  });

  test('malformed entries are refused, each named', () => {
    for (const bad of [
      '*',
      '*.com',
      '10.0.0.0/33',
      '1.2.3.4/24',
      '256.1.1.1',
      'localhost',
      'a..b.com',
      '-a.com',
      'http://x.com',
      '1.2.3',
    ]) {
      const found = issues({ egress: 'allowlist', allow: [bad] });
      assert.equal(found.length, 1, bad);
      assert.match(found[0], new RegExp(`^allow\\.0: "${bad.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}"`), bad);
    }
  });

  test('allowlist needs entries; allow needs allowlist; at most 256', () => {
    assert.match(issues({ egress: 'allowlist', allow: [] })[0], /at least one allow entry/);
    assert.match(issues({ egress: 'all', allow: ['a.com'] })[0], /need egress "allowlist"/);
    assert.match(
      issues({ egress: 'allowlist', allow: Array.from({ length: 257 }, (_, i) => `h${i}.example.com`) })[0],
      /at most 256/,
    );
    assert.deepEqual(issues({ egress: 'all' }), []);
    assert.deepEqual(NetworkPolicy.parse({}), { egress: 'none' });
  });

  test('a tenant cannot open private space, unless the operator has', () => {
    const policy = resolveNetworkPolicy(NetworkPolicy.parse({ egress: 'allowlist', allow: ['10.1.0.0/16'] }));
    assert.throws(() => checkTenantPolicy(policy, []), /"10.1.0.0\/16" overlaps 10.0.0.0\/8/);
    assert.doesNotThrow(() => checkTenantPolicy(policy, ['10.1.0.0/16']));
    assert.throws(
      () => checkTenantPolicy(resolveNetworkPolicy({ egress: 'allowlist', allow: ['0.0.0.0/0'] }), ['10.1.0.0/16']),
      /overlaps/,
    );
  });
});

describe('verdicts', () => {
  const policy = new CompiledPolicy({
    egress: 'allowlist',
    allow: ['pypi.org', '*.example.com', '203.0.113.0/24'],
    deny: ['evil.example.com', '198.51.100.0/24'],
  });

  test('names: deny wins, wildcards match subdomains only, the rule is named', () => {
    assert.deepEqual(policy.nameVerdict('pypi.org'), { verdict: 'allow', rule: 'allow:pypi.org' });
    assert.deepEqual(policy.nameVerdict('a.b.example.com'), { verdict: 'allow', rule: 'allow:*.example.com' });
    assert.deepEqual(policy.nameVerdict('example.com'), { verdict: 'deny', rule: 'not-allowed' });
    assert.deepEqual(policy.nameVerdict('evil.example.com'), { verdict: 'deny', rule: 'deny:evil.example.com' });
    assert.deepEqual(new CompiledPolicy({ egress: 'none', allow: [], deny: [] }).nameVerdict('pypi.org'), {
      verdict: 'deny',
      rule: 'egress:none',
    });
  });

  test('answered addresses: never private or metadata, never a denied range', () => {
    assert.equal(policy.addressVerdict('151.101.0.223', []).verdict, 'allow');
    assert.deepEqual(policy.addressVerdict('169.254.169.254', []), {
      verdict: 'deny',
      rule: 'always-denied:link-local',
    });
    assert.deepEqual(policy.addressVerdict('127.0.0.1', []), { verdict: 'deny', rule: 'always-denied:loopback' });
    assert.deepEqual(policy.addressVerdict('198.51.100.9', []), { verdict: 'deny', rule: 'deny:198.51.100.0/24' });
    assert.equal(policy.addressVerdict('10.9.8.7', ['10.9.0.0/16']).verdict, 'allow');
  });
});

describe('nftables rules', () => {
  const addresses = slotAddresses('10.200.0.0/16', 3);
  const input = {
    addresses,
    generation: 4,
    privateAllow: ['10.9.0.0/16'],
    hostAddresses: ['192.0.2.2'],
    nameChecked: nameCheckedPorts([80, 443, 8443]),
    learned: [{ address: '203.0.113.9', ttlSeconds: 42 }],
  };

  test('every mode is valid nftables (checked by nft itself in an empty namespace, not applied)', async () => {
    const netns = `capsule-test-nft-${process.pid}`;
    await run('ip', ['netns', 'add', netns]);
    const check = (rules: string): Promise<string> =>
      run('nsenter', [`--net=/run/netns/${netns}`, '--', 'nft', '-c', '-f', '-'], rules);
    try {
      await checkAll(check);
    } finally {
      await run('ip', ['netns', 'del', netns]);
    }
  });

  async function checkAll(check: (rules: string) => Promise<string>): Promise<void> {
    for (const policy of [
      { egress: 'none' as const, allow: [], deny: [] },
      { egress: 'all' as const, allow: [], deny: ['198.51.100.0/24'] },
      {
        egress: 'allowlist' as const,
        allow: ['pypi.org', '203.0.113.0/24', '198.51.100.7/32'],
        deny: ['203.0.113.128/25'],
      },
    ]) {
      const rules = namespaceRuleset({ ...input, policy: new CompiledPolicy(policy) });
      await check(rules);
    }
    await check(hostRuleset());
  }

  test('the policy part names its generation and each entry; learned addresses carry their TTL', () => {
    const rules = policyRules({
      ...input,
      policy: new CompiledPolicy({ egress: 'allowlist', allow: ['203.0.113.0/24', 'pypi.org'], deny: ['203.0.113.7'] }),
    });
    assert.match(rules, /ct state established,related ct mark 4 accept/);
    assert.match(rules, /ip daddr 203\.0\.113\.7\/32 log prefix "deny deny:203\.0\.113\.7\/32 "/);
    assert.match(rules, /ip daddr 203\.0\.113\.0\/24 ct mark set 4 log prefix "allow allow:203\.0\.113\.0\/24 "/);
    assert.match(rules, /203\.0\.113\.9 timeout 42s/);
    assert.match(rules, /tcp dport 443 dnat ip to 10\.200\.0\.13:10101/);
    assert.match(rules, /tcp dport 8443 dnat ip to 10\.200\.0\.13:10102/);
    assert.doesNotMatch(
      policyRules({ ...input, policy: new CompiledPolicy({ egress: 'all', allow: [], deny: [] }) }),
      /name_checked .*dnat/,
    );
    assert.match(
      learnRules([{ address: '1.2.3.4', ttlSeconds: 30 }]),
      /add element inet capsule learned \{ 1\.2\.3\.4 timeout 30s \}/,
    );
  });
});

describe('addressing', () => {
  test('slots are /30s of the pool; names carry the address, so pools never share one', () => {
    assert.deepEqual(slotAddresses('10.200.0.0/16', 3), {
      slot: 3,
      netns: 'capsule-0ac8000c',
      hostVeth: 'cvh0ac8000c',
      hostAddress: '10.200.0.13',
      nsAddress: '10.200.0.14',
    });
    assert.equal(slotOfNetns('10.200.0.0/16', 'capsule-0ac8000c'), 3);
    assert.equal(slotOfNetns('10.201.0.0/30', 'capsule-0ac8000c'), null, "another pool's namespace");
    assert.equal(slotOfNetns('10.200.0.0/16', 'capsule-x'), null);
    assert.equal(slotCount('10.201.0.0/30'), 1);
    assert.throws(() => slotCount('10.0.0.0/31'), /CAPSULE_NET_POOL/);
    assert.ok(
      slotAddresses('10.200.0.0/16', slotCount('10.200.0.0/16') - 1).hostVeth.length <= 15,
      'interface names fit IFNAMSIZ',
    );
  });
});
