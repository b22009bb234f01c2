#!/usr/bin/env bash
# The test command (npm test): type-check, the vitest suite, and the Deno smoke test.
# Ends with one line "N passed, N failed" and exits non-zero if anything failed.
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p test-output
passed=0
failed=0

echo "== typecheck (tsc --noEmit)"
if npx tsc --noEmit -p .; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "typecheck FAILED"; fi

echo "== vitest"
rm -f test-output/vitest.json
npx vitest run --reporter=default --reporter=json --outputFile.json=test-output/vitest.json "$@"
vitest_rc=$?
if [ -f test-output/vitest.json ]; then
  read -r vp vf < <(node -e 'const r=require("./test-output/vitest.json");console.log(r.numPassedTests, r.numFailedTests + (r.numRuntimeErrorTestSuites||0))')
  passed=$((passed + vp)); failed=$((failed + vf))
  if [ "$vitest_rc" != 0 ] && [ "$vf" = 0 ]; then failed=$((failed + 1)); echo "vitest exited $vitest_rc"; fi
else
  echo "vitest wrote no report (exit $vitest_rc)"; failed=$((failed + 1))
fi

if [ $# -eq 0 ]; then
  echo "== deno smoke test (same src/, Deno's WebGPU)"
  if timeout 300 node_modules/deno/deno run --unstable-webgpu --sloppy-imports --no-lock --allow-read --allow-env test/deno/smoke.ts; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
  fi
fi

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
