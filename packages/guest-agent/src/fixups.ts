// Clock and entropy fix-ups, done by one long-lived perl helper started with the agent (so it is already
// running in every snapshot): a restore then costs a pipe round trip, not two process spawns (~200 ms
// under TCG). Node can neither ioctl nor settimeofday; perl-base is Essential in Debian, so every
// runtime has it.
import { Mutex } from 'async-mutex';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import readline from 'node:readline';

// RNDADDENTROPY = _IOW('R', 0x03, int[2]); RNDRESEEDCRNG = _IO('R', 0x07); clock_settime = syscall 227;
// SIOCSIFHWADDR = 0x8924 with a 40-byte struct ifreq (name[16], sockaddr{family ARPHRD_ETHER, 6 bytes}).
// virtio-net allows a live MAC change and tells the device through its control queue.
const HELPER = String.raw`
$| = 1;
open(my $f, "+<", "/dev/urandom") or die "open /dev/urandom: $!";
while (my $line = <STDIN>) {
  chomp $line;
  my ($hex, $ms, $mac) = split / /, $line;
  my $err = "";
  if (defined $mac && $mac ne "-" && -e "/sys/class/net/eth0") {
    socket(my $s, 2, 2, 0) or $err .= "socket: $! ";
    my @b = map { hex } split /:/, $mac;
    ioctl($s, 0x8924, pack("a16 S C6 x16", "eth0", 1, @b)) or $err .= "SIOCSIFHWADDR: $! ";
    close($s);
  }
  if ($hex ne "-") {
    my $e = pack("H*", $hex);
    ioctl($f, 0x40085203, pack("ii", length($e) * 8, length($e)) . $e) or $err .= "RNDADDENTROPY: $! ";
    ioctl($f, 0x5207, 0) or $err .= "RNDRESEEDCRNG: $! ";
  }
  if ($ms ne "-") {
    my $sec = int($ms / 1000);
    my $nsec = ($ms - $sec * 1000) * 1000000;
    syscall(227, 0, pack("qq", $sec, $nsec)) == 0 or $err .= "clock_settime: $! ";
  }
  print($err eq "" ? "ok\n" : "err $err\n");
}`;

let helper: { child: ChildProcessWithoutNullStreams; lines: AsyncIterator<string> } | null = null;
/** One request at a time on the helper's stdin/stdout. */
const oneAtATime = new Mutex();

function start(): NonNullable<typeof helper> {
  const child = spawn('/usr/bin/perl', ['-e', HELPER], { stdio: ['pipe', 'pipe', 'pipe'] });
  child.stderr.resume();
  child.once('exit', () => {
    if (helper?.child === child) helper = null;
  });
  const lines = readline.createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  return { child, lines };
}

/** Start the helper now (agent start-up), so snapshots carry it. */
export function startFixupHelper(): void {
  helper ??= start();
}

function request(entropyHex: string | null, epochMs: number | null, macAddress: string | null = null): Promise<void> {
  const run = async (): Promise<void> => {
    helper ??= start();
    const { child, lines } = helper;
    child.stdin.write(`${entropyHex ?? '-'} ${epochMs ?? '-'} ${macAddress ?? '-'}\n`);
    const answer = await lines.next();
    if (answer.done) throw new Error('fix-up helper exited');
    if (answer.value !== 'ok') throw new Error(answer.value.replace(/^err /, '').trim());
  };
  return oneAtATime.runExclusive(run);
}

/** Set the clock; with `entropyHex`, mix that in and reseed first. */
export function setClock(epochMs: number, entropyHex: string | null): Promise<void> {
  return request(entropyHex, epochMs);
}

/** Mix host entropy into the pool (credited), force the CRNG to reseed from it, set the clock and eth0's MAC. */
export function restoreFixups(entropyHex: string, epochMs: number, macAddress: string): Promise<void> {
  return request(entropyHex, epochMs, macAddress);
}
