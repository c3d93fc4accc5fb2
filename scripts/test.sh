#!/usr/bin/env bash
# Every test: set-up (idempotent), lint, typecheck, then unit and e2e tests in one node:test run (real QEMU
# microVMs; TCG on machines without hardware virtualization). Ends with the runner's summary line.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
# the store tests also run on a throwaway Postgres cluster (server binaries from Debian)
# the console tests drive Debian's Chromium (playwright-core, never a downloaded browser)
CAPSULE_EXTRA_APT="postgresql-15 chromium ${CAPSULE_EXTRA_APT:-}" bash scripts/setup.sh
echo "==> lint (Biome: format and lint; dependency-cruiser: layers, no cycles)"
npm run -s lint
echo "==> typecheck"
npx tsc -p tsconfig.json
npx tsc -p packages/console/tsconfig.json
mapfile -t unit < <(find packages scripts -path '*/node_modules' -prune -o -name '*.test.ts' -print | sort)
mapfile -t e2e < <(find tests/e2e -name '*.test.ts' | sort)
echo "==> ${#unit[@]} unit test files, ${#e2e[@]} e2e test files"
# e2e files boot VMs: two files at a time keeps both cores busy without starving the guests.
exec node --import tsx --test --test-concurrency="${CAPSULE_TEST_CONCURRENCY:-2}" --test-reporter=spec "${unit[@]}" "${e2e[@]}"
