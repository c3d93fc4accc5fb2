import type { MicroVMInfo } from '@capsule/sdk';

/** A command's result on stdout: the value as indented JSON with --json, else the human form. */
export function printResult(json: boolean | undefined, value: unknown, human: string): void {
  process.stdout.write((json ? JSON.stringify(value, null, 2) : human) + '\n');
}

function table(rows: string[][]): string {
  const widths = rows[0].map((_, col) => Math.max(...rows.map((r) => r[col].length)));
  return rows
    .map((r) =>
      r
        .map((cell, col) => cell.padEnd(widths[col]))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

export function microvmTable(vms: MicroVMInfo[]): string {
  return table([
    ['ID', 'STATE', 'IMAGE', 'VCPUS', 'MEMORY', 'CREATED'],
    ...vms.map((vm) => [vm.id, vm.state, vm.imageName, String(vm.vcpuCount), `${vm.memoryMib} MiB`, vm.createdAt]),
  ]);
}

export function microvmDetail(vm: MicroVMInfo): string {
  const lines = Object.entries(vm).map(
    ([k, v]) => `${k}: ${typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v)}`,
  );
  return lines.join('\n');
}
