// The MicroVM operations of the AWS API (Run, Get, List, Suspend, Resume, Terminate) on Capsule's MicroVM
// service: AWS's shapes and names in, Capsule's records out as AWS's `Microvm`. Suspend, resume and terminate
// are idempotent as AWS's are: asking for the state a VM is already in answers 200.
import { z } from 'zod';
import { RunMicroVMRequest, type MicroVMState } from '@capsule/protocol';
import type { MicroVMService } from '../../lifecycle/microvm-service.js';
import type { MicroVMRecord, Store } from '../../store/types.js';
import { idempotent } from './idempotency.js';
import { maxResultsOf } from './page.js';
import { accountIdOf, type AwsCaller, bareIdentifier, epochSeconds, imageArn, validated } from './wire.js';
import { Arn, Logging, RoleArn } from './image-config.js';
import { versionNumber } from './image-ops.js';

const Identifier = z.string().min(1).max(256);
const RunMicrovmInput = z.object({
  imageIdentifier: z.string().min(1).max(2048),
  imageVersion: z
    .string()
    .regex(/^\d+(\.0)?$/, 'a version number such as "3"')
    .optional(),
  idlePolicy: z
    .object({
      maxIdleDurationSeconds: z.number().int().min(60),
      suspendedDurationSeconds: z.number().int().min(0),
      autoResumeEnabled: z.boolean(),
    })
    .optional(),
  maximumDurationInSeconds: z.number().int().min(1).max(28_800).optional(),
  runHookPayload: z.string().max(16_384).optional(),
  clientToken: z.string().min(1).max(128).optional(),
  executionRoleArn: RoleArn.optional(),
  logging: Logging.optional(),
  ingressNetworkConnectors: z.array(Arn).max(10).optional(),
  egressNetworkConnectors: z.array(Arn).max(10).optional(),
});
/** The members Capsule keeps only to echo them (documented as not enforced), beside INTERNET_EGRESS's effect. */
const ECHOED = ['executionRoleArn', 'logging', 'ingressNetworkConnectors', 'egressNetworkConnectors'] as const;

/** AWS's managed connectors are named by their last ARN segment (`…:aws-network-connector:INTERNET_EGRESS`). */
export const connectorNamed = (connectors: string[] | undefined, name: string): boolean =>
  (connectors ?? []).some((arn) => bareIdentifier(arn) === name);

/** Capsule's FAILED is AWS's TERMINATED with a reason. */
const awsState = (state: MicroVMState): string => (state === 'FAILED' ? 'TERMINATED' : state);

function arnOf(caller: AwsCaller, record: MicroVMRecord): string {
  // a built-in runtime is a managed image (no version of the tenant's)
  const account = record.imageVersion === null ? 'aws' : accountIdOf(record.tenantId);
  return imageArn(caller.region, account, record.imageName);
}

function toMicrovm(caller: AwsCaller, record: MicroVMRecord): Record<string, unknown> {
  return {
    microvmId: record.id,
    state: awsState(record.state),
    endpoint: caller.endpointOf(record.id),
    imageArn: arnOf(caller, record),
    imageVersion: String(record.imageVersion ?? 1),
    maximumDurationInSeconds: record.maximumDurationSeconds,
    startedAt: epochSeconds(record.startedAt ?? record.createdAt),
    idlePolicy: record.idlePolicy,
    ...(record.terminatedAt ? { terminatedAt: epochSeconds(record.terminatedAt) } : {}),
    ...(record.failureReason ? { stateReason: record.failureReason } : {}),
    ...record.aws,
  };
}

/** Run a MicroVM once per `clientToken`: a retried request answers the VM the first one launched. */
export async function runMicrovm(
  service: MicroVMService,
  store: Store,
  caller: AwsCaller,
  body: unknown,
): Promise<unknown> {
  const { clientToken, ...input } = validated(RunMicrovmInput, body, 'body');
  const request = validated(
    RunMicroVMRequest,
    {
      imageName: bareIdentifier(input.imageIdentifier),
      ...(input.imageVersion ? { imageVersion: Number.parseInt(input.imageVersion, 10) } : {}),
      ...(input.idlePolicy ? { idlePolicy: input.idlePolicy } : {}),
      ...(input.maximumDurationInSeconds ? { maximumDurationSeconds: input.maximumDurationInSeconds } : {}),
      ...(input.runHookPayload !== undefined ? { runHookPayload: input.runHookPayload } : {}),
      // INTERNET_EGRESS opens the internet (never the host); without it Capsule's default holds: no egress
      ...(connectorNamed(input.egressNetworkConnectors, 'INTERNET_EGRESS') ? { network: { egress: 'all' } } : {}),
    },
    'body',
  );
  const echoed = Object.fromEntries(ECHOED.filter((k) => input[k] !== undefined).map((k) => [k, input[k]]));
  return idempotent(
    store,
    { tenantId: caller.tenantId, operation: 'RunMicrovm', clientToken },
    input,
    async () => {
      const { id } = await service.run(caller.tenantId, request);
      if (Object.keys(echoed).length > 0) await store.updateMicroVM(id, { aws: echoed });
      return id;
    },
    async (id) => toMicrovm(caller, await service.get(caller.tenantId, id)),
  );
}

export async function getMicrovm(service: MicroVMService, caller: AwsCaller, id: string): Promise<unknown> {
  return toMicrovm(caller, await service.get(caller.tenantId, validated(Identifier, id, 'microvmIdentifier')));
}

export async function listMicrovms(
  service: MicroVMService,
  caller: AwsCaller,
  query: URLSearchParams,
): Promise<unknown> {
  const limit = maxResultsOf(query);
  const imageIdentifier = query.get('imageIdentifier');
  const imageVersion = query.get('imageVersion');
  const records = await service.list({
    tenantId: caller.tenantId,
    ...(imageIdentifier ? { imageName: bareIdentifier(imageIdentifier) } : {}),
    ...(imageVersion !== null ? { imageVersion: versionNumber(imageVersion) } : {}),
    limit: limit + 1,
    after: query.get('nextToken') ?? undefined,
  });
  return {
    items: records.slice(0, limit).map((r) => ({
      microvmId: r.id,
      state: awsState(r.state),
      imageArn: arnOf(caller, r),
      imageVersion: String(r.imageVersion ?? 1),
      startedAt: epochSeconds(r.startedAt ?? r.createdAt),
    })),
    ...(records.length > limit ? { nextToken: records[limit - 1].id } : {}),
  };
}

/** Suspend, resume or terminate; a VM already where it was asked to go answers 200 as it is. */
export async function changeMicrovm(
  service: MicroVMService,
  caller: AwsCaller,
  rawId: string,
  change: 'suspend' | 'resume' | 'terminate',
): Promise<unknown> {
  const id = validated(Identifier, rawId, 'microvmIdentifier');
  const { state } = await service.get(caller.tenantId, id);
  const already = { suspend: ['SUSPENDED'], resume: ['RUNNING'], terminate: ['TERMINATED', 'FAILED'] }[change];
  if (!already.includes(state)) await service[change](caller.tenantId, id);
  return {};
}
