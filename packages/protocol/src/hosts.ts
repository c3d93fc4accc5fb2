// The machines that run MicroVMs (GET /v1/hosts, admin). Every server that runs VMs is a host: it registers
// its capacity and renews a lease in the store; one whose lease ran out is `down`. Shared by server, SDK and CLI.
import { z } from 'zod';

/** A host id (CAPSULE_HOST_ID): what `hostId` on a MicroVM names. */
export const HOST_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

/** ready: takes work; draining: takes no new work; down: its lease ran out (not renewed in time). */
export const HostState = z.enum(['ready', 'draining', 'down']);
export type HostState = z.infer<typeof HostState>;

export const HostCapacity = z
  .object({
    vcpus: z.number().int(),
    memoryMib: z.number().int(),
    /** Room on the filesystem of its data dir, in MiB, when it last registered. */
    diskMib: z.number().int(),
    accelerator: z.enum(['kvm', 'tcg']),
    qemuVersion: z.string(),
  })
  .meta({ id: 'HostCapacity' });
export type HostCapacity = z.infer<typeof HostCapacity>;

export const Host = z
  .object({
    id: z.string(),
    state: HostState,
    /** Where other nodes reach it. */
    advertiseUrl: z.string(),
    capacity: HostCapacity,
    /** What its MicroVMs holding resources (PENDING, RUNNING, SUSPENDING, TERMINATING) take. */
    used: z.object({ vcpus: z.number().int(), memoryMib: z.number().int(), microvms: z.number().int() }),
    registeredAt: z.string(),
    /** When it last renewed its lease. */
    heartbeatAt: z.string(),
    leaseExpiresAt: z.string(),
  })
  .meta({ id: 'Host' });
export type Host = z.infer<typeof Host>;

export const HostList = z.object({ hosts: z.array(Host) }).meta({ id: 'HostList' });
export type HostList = z.infer<typeof HostList>;
