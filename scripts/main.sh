#!/usr/bin/env bash
# The main job: set everything up, start `capsule serve` on the embedded defaults, run the demo, and
# keep serving until Ctrl-C.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
bash scripts/setup.sh
capsule=$here/bin/capsule
export CAPSULE_URL=${CAPSULE_URL:-http://127.0.0.1:7070}
mkdir -p .capsule
if curl -fsS "$CAPSULE_URL/healthz" >/dev/null 2>&1; then
  echo "==> capsule serve already running at $CAPSULE_URL"
  server_pid=""
else
  echo "==> starting capsule serve (log: .capsule/serve.log)"
  "$capsule" serve >> .capsule/serve.log 2>&1 &
  server_pid=$!
  trap '[ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; wait 2>/dev/null' EXIT
  for _ in $(seq 1 100); do
    curl -fsS "$CAPSULE_URL/healthz" >/dev/null 2>&1 && break
    kill -0 "$server_pid" 2>/dev/null || { tail -20 .capsule/serve.log; exit 1; }
    sleep 0.2
  done
fi
curl -fsS "$CAPSULE_URL/healthz"; echo
demo() { printf '\n\033[1m$ capsule %s\033[0m\n' "$*"; "$capsule" "$@"; }
demo run python --rm -- python3 -c 'import platform; print(6*7, platform.release())'
echo "(host kernel: $(uname -r))"
id=$("$capsule" run python --quiet)
demo get "$id"
set +e
demo exec "$id" --no-stdin -- sh -c 'echo out; echo err >&2; exit 3'
echo "(exit code $?)"
set -e
demo exec "$id" --no-stdin -- sh -c 'echo "written at $(date +%T)" > /root/note.txt'
demo suspend "$id"
demo resume "$id"
demo exec "$id" --no-stdin -- cat /root/note.txt
# egress: none by default; an allowlist of names; what the guest tried, and what decided
demo network set "$id" --egress pypi.org,files.pythonhosted.org
demo exec "$id" --no-stdin -- sh -c 'getent hosts pypi.org >/dev/null; getent hosts example.com || echo "example.com: not resolvable (not on the allowlist)"'
demo network log "$id"
demo ls
demo terminate "$id"

# The Flask demo: package the app as a zip, build a MicroVM Image from it (in a builder VM; the app is
# started and snapshotted once ready), launch it with the app already serving, and fetch its page
# through the MicroVM's endpoint with a scoped token.
port=${CAPSULE_URL##*:}
port=${port%%/*}
shell_demo() { printf '\n\033[1m$ %s\033[0m\n' "$1"; eval "$1"; }
rm -f examples/flask-app.zip
shell_demo 'cd examples/flask-app && zip -qr ../flask-app.zip . && cd - >/dev/null'
demo image create flask-app --zip examples/flask-app.zip
ID=$("$capsule" run flask-app --quiet)
printf '\n\033[1m$ capsule run flask-app\033[0m\n%s\n' "$ID"
shell_demo "curl -fsS -H \"X-Capsule-Auth: \$(bin/capsule token $ID --ports 8080)\" http://$ID.localhost:$port/"
if [ "${CAPSULE_DEMO_ONLY:-0}" = 1 ]; then
  "$capsule" terminate "$ID" >/dev/null
elif [ -n "$server_pid" ]; then
  printf '\n==> demo done; capsule serve keeps running at %s (Ctrl-C to stop)\n' "$CAPSULE_URL"
  wait "$server_pid"
fi
