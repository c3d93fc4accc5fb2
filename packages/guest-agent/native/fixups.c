// The guest agent's fix-ups after a restore, as a Node-API addon: set the clock, mix host entropy into the
// kernel pool and reseed the CRNG, set eth0's MAC. Node can neither ioctl nor clock_settime; doing it in the
// agent's own process makes a fix-up a few syscalls instead of a round trip to a helper process, whose
// interpreter runs cold after every restore under TCG (~65 ms, measured).
// Built by scripts/build.mjs against node-api-headers (Node-API is ABI-stable: one build serves the guest's
// Node 18). Only Node-API version 8 calls.
#define NAPI_VERSION 8
#include <node_api.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/random.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_ENTROPY_BYTES 512

// Throws an Error whose message names the failed call and errno, e.g. "clock_settime: Operation not permitted".
static napi_value throw_errno(napi_env env, const char *what) {
  char message[160];
  snprintf(message, sizeof message, "%s: %s", what, strerror(errno));
  napi_throw_error(env, NULL, message);
  return NULL;
}

static napi_value throw_type(napi_env env, const char *message) {
  napi_throw_type_error(env, NULL, message);
  return NULL;
}

// setClock(epochMs: number): void
static napi_value set_clock(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  double epoch_ms;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 ||
      napi_get_value_double(env, argv[0], &epoch_ms) != napi_ok || !(epoch_ms >= 0) || epoch_ms > 1e15)
    return throw_type(env, "setClock(epochMs): epochMs must be a non-negative number");
  struct timespec ts;
  ts.tv_sec = (time_t)(epoch_ms / 1000);
  ts.tv_nsec = (long)((epoch_ms - (double)ts.tv_sec * 1000) * 1e6);
  if (ts.tv_nsec < 0) ts.tv_nsec = 0;
  if (ts.tv_nsec > 999999999) ts.tv_nsec = 999999999;
  if (clock_settime(CLOCK_REALTIME, &ts) != 0) return throw_errno(env, "clock_settime");
  return NULL;
}

// addEntropy(bytes: Buffer): void. Credited (RNDADDENTROPY), then the CRNG reseeds from it (RNDRESEEDCRNG), so
// nothing drawn after this repeats what another restore of the same snapshot draws.
static napi_value add_entropy(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  bool is_buffer = false;
  void *data;
  size_t length;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 ||
      napi_is_buffer(env, argv[0], &is_buffer) != napi_ok || !is_buffer ||
      napi_get_buffer_info(env, argv[0], &data, &length) != napi_ok || length == 0 || length > MAX_ENTROPY_BYTES)
    return throw_type(env, "addEntropy(bytes): bytes must be a Buffer of 1 to 512 bytes");
  struct {
    struct rand_pool_info header;
    unsigned char bytes[MAX_ENTROPY_BYTES];
  } request;
  request.header.entropy_count = (int)(length * 8);
  request.header.buf_size = (int)length;
  memcpy(request.bytes, data, length);
  int fd = open("/dev/urandom", O_WRONLY | O_CLOEXEC);
  if (fd < 0) return throw_errno(env, "open /dev/urandom");
  int ok = ioctl(fd, RNDADDENTROPY, &request) == 0;
  const char *failed = ok ? NULL : "RNDADDENTROPY";
  if (ok && ioctl(fd, RNDRESEEDCRNG) != 0) failed = "RNDRESEEDCRNG";
  int saved = errno;
  close(fd);
  errno = saved;
  return failed ? throw_errno(env, failed) : NULL;
}

// setMacAddress(interface: string, mac: Buffer of 6 bytes): void. virtio-net takes a live MAC change and
// tells the device through its control queue.
static napi_value set_mac_address(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  char name[IFNAMSIZ];
  size_t name_length = 0;
  bool is_buffer = false;
  void *mac;
  size_t mac_length = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 ||
      napi_get_value_string_utf8(env, argv[0], name, sizeof name, &name_length) != napi_ok || name_length == 0 ||
      name_length >= IFNAMSIZ - 1 || napi_is_buffer(env, argv[1], &is_buffer) != napi_ok || !is_buffer ||
      napi_get_buffer_info(env, argv[1], &mac, &mac_length) != napi_ok || mac_length != 6)
    return throw_type(env, "setMacAddress(interface, mac): a short interface name and a 6-byte Buffer");
  struct ifreq request;
  memset(&request, 0, sizeof request);
  memcpy(request.ifr_name, name, name_length);
  request.ifr_hwaddr.sa_family = ARPHRD_ETHER;
  memcpy(request.ifr_hwaddr.sa_data, mac, 6);
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, "socket");
  int ok = ioctl(fd, SIOCSIFHWADDR, &request) == 0;
  int saved = errno;
  close(fd);
  errno = saved;
  return ok ? NULL : throw_errno(env, "SIOCSIFHWADDR");
}

static napi_status export_function(napi_env env, napi_value exports, const char *name, napi_callback fn) {
  napi_value value;
  napi_status status = napi_create_function(env, name, NAPI_AUTO_LENGTH, fn, NULL, &value);
  return status == napi_ok ? napi_set_named_property(env, exports, name, value) : status;
}

NAPI_MODULE_INIT() {
  if (export_function(env, exports, "setClock", set_clock) != napi_ok ||
      export_function(env, exports, "addEntropy", add_entropy) != napi_ok ||
      export_function(env, exports, "setMacAddress", set_mac_address) != napi_ok)
    return NULL;
  return exports;
}
