// exec with a terminal: Node cannot allocate a pty, so a small perl helper (perl-base is Essential in
// Debian: every runtime has it) opens /dev/ptmx, starts the command as a session leader on the slave
// side, and relays: its stdin → the terminal, the terminal → its stdout, "ROWS COLS\n" lines on fd 3 →
// TIOCSWINSZ (the kernel then sends SIGWINCH). Signals it receives are passed to the session; it exits
// with the command's code (128 + signal number if it was killed).
// The guest's init mounts no devpts: the first terminal mounts it (mount(2) is syscall 165).
// ioctls: TIOCSPTLCK 0x40045431 (unlockpt), TIOCGPTN 0x80045430 (ptsname), TIOCSWINSZ 0x5414, TIOCSCTTY 0x540E.
const HELPER = String.raw`
use strict; use POSIX ();
my ($rows, $cols, @cmd) = @ARGV;
unless (-e "/dev/pts/ptmx") {
  mkdir "/dev/pts", 0755;
  my ($src, $dst, $type, $opts) = ("devpts", "/dev/pts", "devpts", "newinstance,ptmxmode=0666,mode=0620,gid=5");
  syscall(165, $src, $dst, $type, 0, $opts) == 0 or -e "/dev/pts/ptmx" or die "capsule: mount devpts: $!\n";
}
symlink("pts/ptmx", "/dev/ptmx") unless -e "/dev/ptmx";
open(my $m, "+<", "/dev/ptmx") or die "capsule: /dev/ptmx: $!\n";
my $unlock = pack("i", 0); ioctl($m, 0x40045431, $unlock) or die "capsule: unlockpt: $!\n";
my $n = pack("i", 0); ioctl($m, 0x80045430, $n) or die "capsule: ptsname: $!\n"; $n = unpack("i", $n);
sub winsize { my $ws = pack("S4", $_[0], $_[1], 0, 0); ioctl($m, 0x5414, $ws) }
winsize($rows, $cols);
my $pid = fork(); die "capsule: fork: $!\n" unless defined $pid;
if ($pid == 0) {
  POSIX::setsid();
  open(my $s, "+<", "/dev/pts/$n") or POSIX::_exit(126);
  ioctl($s, 0x540E, 0);
  POSIX::dup2(fileno($s), $_) for 0, 1, 2;
  close($m);
  exec { $cmd[0] } @cmd;
  print STDERR "capsule: $cmd[0]: " . ($!{ENOENT} ? "command not found" : $!) . "\n";
  POSIX::_exit($!{ENOENT} ? 127 : 126);
}
for my $sig (qw(INT TERM HUP QUIT USR1 USR2 CONT)) { $SIG{$sig} = sub { kill $sig, -$pid } }
open(my $ctl, "<&=3") or die "capsule: control fd: $!\n";
sub put {
  my ($fh, $d) = @_;
  while (length $d) {
    my $w = syswrite($fh, $d);
    if (!defined $w) { next if $!{EINTR}; return 0 }
    substr($d, 0, $w) = ''
  }
  1
}
my ($in_open, $ctl_open, $cbuf) = (1, 1, '');
while (1) {
  my $rin = ''; vec($rin, fileno($m), 1) = 1; vec($rin, 0, 1) = 1 if $in_open; vec($rin, 3, 1) = 1 if $ctl_open;
  my $ready = select(my $rout = $rin, undef, undef, undef);
  if ($ready < 0) { next if $!{EINTR}; last }
  if (vec($rout, fileno($m), 1)) {
    my $r = sysread($m, my $buf, 65536);
    if (!$r) { next if !defined $r && $!{EINTR}; last }
    put(\*STDOUT, $buf) or last
  }
  if ($in_open && vec($rout, 0, 1)) {
    my $r = sysread(STDIN, my $buf, 65536);
    if (!$r) { next if !defined $r && $!{EINTR}; $in_open = 0; put($m, "\x04") } else { put($m, $buf) }
  }
  if ($ctl_open && vec($rout, 3, 1)) {
    my $r = sysread($ctl, my $buf, 4096);
    if (!$r) { $ctl_open = 0 if defined $r || !$!{EINTR} }
    else { $cbuf .= $buf; while ($cbuf =~ s/^(\d+) (\d+)\n//) { winsize($1, $2) } }
  }
}
close($m);
while (waitpid($pid, 0) < 0) { last unless $!{EINTR} }
my $st = $?;
exit(($st & 127) ? 128 + ($st & 127) : $st >> 8);`;
import type { PtySize } from '@capsule/protocol';

/** The helper's argv for running `file args` on a new terminal of this size. */
export function ptyCommand(file: string, args: string[], size: PtySize): [string, string[]] {
  return ['/usr/bin/perl', ['-e', HELPER, String(size.rows), String(size.cols), file, ...args]];
}

/** The control line that resizes the terminal (written to the helper's fd 3). */
export function resizeLine(size: PtySize): string {
  return `${size.rows} ${size.cols}\n`;
}
