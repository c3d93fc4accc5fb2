// GetMicrovmImageBuild and ListMicrovmImageBuilds: Capsule builds each version once, so a version has one build.
// Its id is stable (derived from the version's identity and creation time), its state is the version's, the
// machine is reported as it is (this host's architecture, QEMU, and the accelerator), and `snapshotBuild` gives
// the stored sizes of the memory snapshot, the installed code (the app layer) and the disk snapshot.
import { createHash } from 'node:crypto';
import { CapsuleError, ErrorCode } from '@capsule/protocol';
import type { ImageService } from '../../images/image-service.js';
import type { ImageVersionRecord } from '../../store/types.js';
import { stateReasonOf, versionNumber } from './image-ops.js';
import { page } from './page.js';
import { accountIdOf, bareIdentifier, epochSeconds, imageArn, type AwsCaller } from './wire.js';

/** What the builds ran on. */
export interface BuildMachine {
  architecture: string;
  chipset: string;
  chipsetGeneration: string;
}

export function buildMachineOf(arch: string, accelerator: string): BuildMachine {
  const architecture = arch === 'x64' ? 'X86_64' : arch === 'arm64' ? 'ARM_64' : arch.toUpperCase();
  return { architecture, chipset: 'QEMU', chipsetGeneration: accelerator.toUpperCase() };
}

function buildIdOf(v: ImageVersionRecord): string {
  const digest = createHash('sha256').update(`${v.tenantId}\0${v.name}\0${v.version}\0${v.createdAt}`).digest('hex');
  return `bld-${digest.slice(0, 20)}`;
}

function buildSummary(caller: AwsCaller, machine: BuildMachine, v: ImageVersionRecord): Record<string, unknown> {
  const reason = stateReasonOf(v);
  return {
    imageArn: imageArn(caller.region, accountIdOf(caller.tenantId), v.name),
    imageVersion: String(v.version),
    buildId: buildIdOf(v),
    buildState: v.state,
    ...machine,
    createdAt: epochSeconds(v.createdAt),
    ...(reason ? { stateReason: reason } : {}),
  };
}

export async function getImageBuild(
  images: ImageService,
  machine: BuildMachine,
  caller: AwsCaller,
  identifier: string,
  rawVersion: string,
  buildId: string,
): Promise<unknown> {
  const name = bareIdentifier(identifier);
  const v = await images.version(caller.tenantId, name, versionNumber(rawVersion));
  if (buildId !== buildIdOf(v))
    throw new CapsuleError(ErrorCode.NOT_FOUND, `image ${name} version ${v.version} has no build ${buildId}`, {
      details: { resourceType: 'MicrovmImageBuild', resourceId: buildId },
    });
  const sizes = await images.artifactSizes(v);
  const snapshotBuild = {
    ...(sizes.memory !== null ? { memorySnapshotSizeInBytes: sizes.memory } : {}),
    ...(sizes.layer !== null ? { codeInstallSizeInBytes: sizes.layer } : {}),
    ...(sizes.disk !== null ? { diskSnapshotSizeInBytes: sizes.disk } : {}),
  };
  return { ...buildSummary(caller, machine, v), snapshotBuild };
}

export async function listImageBuilds(
  images: ImageService,
  machine: BuildMachine,
  caller: AwsCaller,
  identifier: string,
  rawVersion: string,
  query: URLSearchParams,
): Promise<unknown> {
  const v = await images.version(caller.tenantId, bareIdentifier(identifier), versionNumber(rawVersion));
  const filters = ['architecture', 'chipset', 'chipsetGeneration'] as const;
  const matches = filters.every((f) => query.get(f) === null || query.get(f) === machine[f]);
  const { items, nextToken } = page(matches ? [v] : [], buildIdOf, query);
  return { items: items.map((b) => buildSummary(caller, machine, b)), ...(nextToken ? { nextToken } : {}) };
}
