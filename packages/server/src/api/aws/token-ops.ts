// CreateMicrovmAuthToken: a token for a MicroVM's endpoint (`/endpoints/{id}/…`), sent back as AWS names it,
// `X-aws-proxy-auth`, limited to the ports asked for (single ports, ranges, or all) and 1-60 minutes. The
// same signed tokens as POST /v1/microvms/{id}/auth-tokens (api/auth-tokens.ts), with ranges.
// CreateMicrovmShellAuthToken: a shell token, which opens the WebSocket at the endpoint's /shell (aws/shell.ts)
// and reaches no port; a VM run with ingress connectors gets one only if SHELL_INGRESS is among them.
import { z } from 'zod';
import type { MicroVMService } from '../../lifecycle/microvm-service.js';
import type { AuthTokens, TokenClaims } from '../auth-tokens.js';
import { CapsuleError, ErrorCode } from '@capsule/protocol';
import { connectorNamed } from './microvm-ops.js';
import { validated, type AwsCaller } from './wire.js';

const Port = z.number().int().min(1).max(65_535);
const PortSpecification = z.union([
  z.object({ port: Port }).strict(),
  z
    .object({
      range: z
        .object({ startPort: Port, endPort: Port })
        .refine((r) => r.startPort <= r.endPort, 'startPort > endPort'),
    })
    .strict(),
  z.object({ allPorts: z.object({}).strict() }).strict(),
]);
const CreateShellTokenInput = z.object({ expirationInMinutes: z.number().int().min(1).max(60) });
const CreateAuthTokenInput = CreateShellTokenInput.extend({
  allowedPorts: z.array(PortSpecification).min(1).max(100),
});

/** Both token operations' answer: a token for the caller's VM that lasts `minutes`, under AWS's header name. */
function answerWith(
  tokens: AuthTokens,
  caller: AwsCaller,
  microvmId: string,
  minutes: number,
  scope: Pick<TokenClaims, 'allowedPorts' | 'allowedPortRanges' | 'shell'>,
): unknown {
  const token = tokens.issue({
    microvmId,
    tenantId: caller.tenantId,
    ...scope,
    expiresAtMs: Date.now() + minutes * 60_000,
  });
  return { authToken: { 'X-aws-proxy-auth': token } };
}

export async function createMicrovmAuthToken(
  service: MicroVMService,
  tokens: AuthTokens,
  caller: AwsCaller,
  microvmId: string,
  body: unknown,
): Promise<unknown> {
  const input = validated(CreateAuthTokenInput, body, 'body');
  const vm = await service.get(caller.tenantId, microvmId); // another tenant's VM is 404
  const allowedPorts: number[] = [];
  const allowedPortRanges: Array<[number, number]> = [];
  for (const spec of input.allowedPorts) {
    if ('port' in spec) allowedPorts.push(spec.port);
    else if ('range' in spec) allowedPortRanges.push([spec.range.startPort, spec.range.endPort]);
    else allowedPortRanges.push([1, 65_535]);
  }
  return answerWith(tokens, caller, vm.id, input.expirationInMinutes, { allowedPorts, allowedPortRanges });
}

export async function createMicrovmShellAuthToken(
  service: MicroVMService,
  tokens: AuthTokens,
  caller: AwsCaller,
  microvmId: string,
  body: unknown,
): Promise<unknown> {
  const input = validated(CreateShellTokenInput, body, 'body');
  const vm = await service.get(caller.tenantId, microvmId); // another tenant's VM is 404
  const ingress = vm.aws?.ingressNetworkConnectors;
  if (Array.isArray(ingress) && ingress.length > 0 && !connectorNamed(ingress as string[], 'SHELL_INGRESS'))
    throw new CapsuleError(
      ErrorCode.INVALID_STATE,
      `MicroVM ${vm.id} was run with ingress connectors that do not include SHELL_INGRESS: it has no shell access`,
      { details: { resourceType: 'Microvm', resourceId: vm.id } },
    );
  return answerWith(tokens, caller, vm.id, input.expirationInMinutes, { allowedPorts: [], shell: true });
}
