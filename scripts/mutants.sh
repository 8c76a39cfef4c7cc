#!/usr/bin/env bash
# Mutation testing of the engine with cargo-mutants: every mutant of the keep rules, the window,
# the confirming listing, applying a poll, the store writer, the poll loop, the cache and the
# listing must make a test fail. Run by hand and before each release, not in CI (about two hours
# on a 2-core machine). Results: mutants.out/<group>/ (missed.txt lists what no test caught).
#
#   scripts/mutants.sh            # every group
#   scripts/mutants.sh rules      # one group: rules, engine, loop, listing
#
# Each group builds and runs only the test targets that exercise its files, which keeps a
# mutant to seconds; --timeout catches a mutant that makes a poll loop forever.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! cargo mutants --version >/dev/null 2>&1; then
  cargo install cargo-mutants --locked
fi
export CARGO_PROFILE_DEV_DEBUG=0 # faster links; mutants need no debugger

group() {
  local name="$1" files="$2" tests="$3" args=()
  for f in $files; do args+=(--file "$f"); done
  # shellcheck disable=SC2086 # the test list is words on purpose
  cargo mutants "${args[@]}" --timeout 150 --jobs 2 -o "mutants.out/$name" -- --lib $tests || true
  echo "== $name: $(wc -l <"mutants.out/$name/mutants.out/caught.txt") caught," \
    "$(wc -l <"mutants.out/$name/mutants.out/missed.txt") missed," \
    "$(wc -l <"mutants.out/$name/mutants.out/timeout.txt") timeouts," \
    "$(wc -l <"mutants.out/$name/mutants.out/unviable.txt") unviable"
}

want="${1:-all}"
run() { [ "$want" = all ] || [ "$want" = "$1" ]; }
run rules && group rules "src/sync/rules.rs src/sync/window.rs" \
  "--test window --test rules --test sync"
run engine && group engine "src/sync/confirm.rs src/sync/apply.rs src/store/writer.rs" \
  "--test churn --test rules --test sync --test store"
run loop && group loop "src/sync/poller.rs src/cache.rs" \
  "--test churn --test rules --test sync --test window --test api"
run listing && group listing "src/sync/listing.rs" \
  "--test churn --test rules --test sync --test inflight"
