// capsule-jail: the jail's launcher (packages/server/src/jail/launcher.ts builds its argv), run as root:
//   capsule-jail JAIL UID GID ITEM... -- PROGRAM ARG...
// In order: enter the VM's network namespace, take a private mount namespace, join the VM's cgroups, make the
// namespace's tap for the VM's uid (`ip -b`, in a child, while the root is mounted), mount a small tmpfs as
// the jail's root at JAIL, bind the given host paths into it at their own paths (read-only where asked), make
// device nodes, wait for the tap, chroot, drop to UID/GID with no supplementary groups (and so no
// capabilities), and exec PROGRAM: the process the server spawned is QEMU itself. Every failure ends the
// launch with a message on stderr (QEMU's log) and exit code 70; the mounts vanish with the namespace.
// It replaced a shell chain (nsenter, unshare, sh, mount -a, unshare --root): ~11 ms per launch measured.
// Items:
//   netns PATH                    setns(CLONE_NEWNET) first (it must be the first item)
//   cg PROCS_FILE                 write our pid into a cgroup's cgroup.procs
//   tap BATCH REPLACE_BATCH       `ip -b -` with BATCH; if that fails, with REPLACE_BATCH (the tap existed)
//   root                          tmpfs on JAIL (made if missing; mode 0755, 256 KiB, nosuid)
//   bind FROM TO ro|rw dir|file   bind FROM at JAIL/TO (made first), read-only with ro
//   dev PATH MAJOR MINOR MODE     a character device node at JAIL/PATH owned by UID:GID
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define EXIT_JAIL 70

static void die(const char *fmt, ...) {
  int saved = errno;
  va_list ap;
  va_start(ap, fmt);
  fputs("capsule jail: ", stderr);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  if (saved) fprintf(stderr, ": %s", strerror(saved));
  fputc('\n', stderr);
  exit(EXIT_JAIL);
}

static const char *need(int argc, char **argv, int i, const char *item) {
  if (i >= argc) {
    errno = 0;
    die("item %s is missing an argument", item);
  }
  return argv[i];
}

static char *in_jail(const char *jail, const char *p) {
  char *out;
  if (asprintf(&out, "%s%s", jail, p) < 0) die("out of memory");
  return out;
}

/* mkdir -p: every missing directory of `dir` (absolute), mode 0755. */
static void mkdirs(const char *dir) {
  char *p = strdup(dir);
  if (!p) die("out of memory");
  for (char *s = p + 1;; s++) {
    if (*s == '/' || *s == '\0') {
      char c = *s;
      *s = '\0';
      if (mkdir(p, 0755) != 0 && errno != EEXIST) die("mkdir %s", p);
      *s = c;
      if (c == '\0') break;
    }
  }
  free(p);
}

/* `ip -b -` fed `batch` on stdin; its exit status. stderr is silenced for a first try that may fail. */
static int ip_batch(const char *batch, int quiet) {
  int fds[2];
  if (pipe(fds) != 0) die("pipe");
  pid_t pid = fork();
  if (pid < 0) die("fork");
  if (pid == 0) {
    dup2(fds[0], 0);
    close(fds[0]);
    close(fds[1]);
    if (quiet) {
      int null = open("/dev/null", O_WRONLY);
      if (null >= 0) dup2(null, 2);
    }
    execlp("ip", "ip", "-b", "-", (char *)NULL);
    _exit(127);
  }
  close(fds[0]);
  size_t len = strlen(batch), off = 0;
  while (off < len) {
    ssize_t n = write(fds[1], batch + off, len - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break; /* ip exited early: its status says why */
    off += (size_t)n;
  }
  if (write(fds[1], "\n", 1) < 0) { /* as above */
  }
  close(fds[1]);
  int status;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) die("waitpid ip");
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

/* The tap, in a child while the parent mounts: the fresh batch, else the replacing one. */
static pid_t start_tap(const char *batch, const char *replace) {
  fflush(stderr);
  pid_t pid = fork();
  if (pid < 0) die("fork");
  if (pid == 0) _exit(ip_batch(batch, 1) == 0 ? 0 : ip_batch(replace, 0) == 0 ? 0 : EXIT_JAIL);
  return pid;
}

static void join_cgroup(const char *procs) {
  int fd = open(procs, O_WRONLY | O_CLOEXEC);
  if (fd < 0) die("open %s", procs);
  char pid[32];
  int n = snprintf(pid, sizeof pid, "%d\n", (int)getpid());
  if (write(fd, pid, (size_t)n) != n) die("join cgroup %s", procs);
  close(fd);
}

static void bind(const char *jail, const char *from, const char *to, int readonly, int dir) {
  char *target = in_jail(jail, to);
  if (dir) {
    mkdirs(target);
  } else {
    char *parent = strdup(target);
    if (!parent) die("out of memory");
    char *slash = strrchr(parent, '/');
    if (slash && slash != parent) {
      *slash = '\0';
      mkdirs(parent);
    }
    free(parent);
    int fd = open(target, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) die("create mountpoint %s", target);
    close(fd);
  }
  if (mount(from, target, NULL, MS_BIND, NULL) != 0) die("bind %s", from);
  if (readonly && mount(NULL, target, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID, NULL) != 0)
    die("make %s read-only", target);
  free(target);
}

int main(int argc, char **argv) {
  if (argc < 5) {
    errno = 0;
    die("usage: capsule-jail JAIL UID GID ITEM... -- PROGRAM ARG...");
  }
  const char *jail = argv[1];
  uid_t uid = (uid_t)strtoul(argv[2], NULL, 10);
  gid_t gid = (gid_t)strtoul(argv[3], NULL, 10);
  if (uid == 0 || gid == 0) {
    errno = 0;
    die("refusing to run a jailed program as root");
  }
  pid_t tap = 0;
  int i = 4, unshared = 0;
  for (; i < argc && strcmp(argv[i], "--") != 0;) {
    const char *item = argv[i];
    if (strcmp(item, "netns") == 0) {
      const char *path = need(argc, argv, i + 1, item);
      if (unshared) {
        errno = 0;
        die("netns must be the first item");
      }
      int fd = open(path, O_RDONLY | O_CLOEXEC);
      if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) die("enter network namespace %s", path);
      close(fd);
      i += 2;
      continue;
    }
    if (!unshared) {
      if (unshare(CLONE_NEWNS) != 0) die("unshare the mount namespace");
      if (mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) die("make mounts private");
      unshared = 1;
    }
    if (strcmp(item, "cg") == 0) {
      join_cgroup(need(argc, argv, i + 1, item));
      i += 2;
    } else if (strcmp(item, "tap") == 0) {
      tap = start_tap(need(argc, argv, i + 1, item), need(argc, argv, i + 2, item));
      i += 3;
    } else if (strcmp(item, "root") == 0) {
      mkdirs(jail);
      if (mount("capsule-jail", jail, "tmpfs", MS_NOSUID, "mode=0755,size=256k") != 0) die("mount the jail's root");
      i += 1;
    } else if (strcmp(item, "bind") == 0) {
      const char *mode = need(argc, argv, i + 3, item), *kind = need(argc, argv, i + 4, item);
      bind(jail, argv[i + 1], argv[i + 2], strcmp(mode, "ro") == 0, strcmp(kind, "dir") == 0);
      i += 5;
    } else if (strcmp(item, "dev") == 0) {
      char *node = in_jail(jail, need(argc, argv, i + 1, item));
      unsigned major_n = (unsigned)strtoul(need(argc, argv, i + 2, item), NULL, 10);
      unsigned minor_n = (unsigned)strtoul(need(argc, argv, i + 3, item), NULL, 10);
      mode_t mode = (mode_t)strtoul(need(argc, argv, i + 4, item), NULL, 8);
      if (mknod(node, S_IFCHR | mode, makedev(major_n, minor_n)) != 0) die("mknod %s", node);
      if (chmod(node, mode) != 0 || chown(node, uid, gid) != 0) die("own %s", node);
      free(node);
      i += 5;
    } else {
      errno = 0;
      die("unknown item %s", item);
    }
  }
  if (i + 1 >= argc) {
    errno = 0;
    die("no program after --");
  }
  char **program = argv + i + 1;
  if (tap) {
    int status;
    while (waitpid(tap, &status, 0) < 0)
      if (errno != EINTR) die("waitpid tap");
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      errno = 0;
      die("could not make the VM's tap");
    }
  }
  if (chroot(jail) != 0 || chdir("/") != 0) die("chroot %s", jail);
  if (setgroups(0, NULL) != 0 || setgid(gid) != 0 || setuid(uid) != 0) die("drop to %u:%u", uid, gid);
  execv(program[0], program);
  die("exec %s", program[0]);
}
