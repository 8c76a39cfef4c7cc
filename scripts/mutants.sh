#!/usr/bin/env bash
# Mutation testing of the engine with cargo-mutants: every mutant of the poll loop, the window,
# the keep rules, the cache and the store writer must make a test fail. Run by hand and before
# each release (not in CI: about an hour on a 2-core machine). Writes mutants.out/.
#
#   scripts/mutants.sh            # the whole engine
#   scripts/mutants.sh src/window.rs   # one file
#
# Only the test targets that exercise the engine are built and run for each mutant (the unit
# tests and the sync, churn, rules, window and store suites), which keeps a mutant to seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! cargo mutants --version >/dev/null 2>&1; then
  cargo install cargo-mutants --locked
fi

files=("$@")
if [ ${#files[@]} -eq 0 ]; then
  files=(src/sync/poller.rs src/sync/listing.rs src/sync/confirm.rs src/sync/apply.rs
    src/sync/rules.rs src/sync/window.rs src/cache.rs src/store/writer.rs)
fi
args=()
for f in "${files[@]}"; do
  args+=(--file "$f")
done

tests=(--lib)
for t in sync churn rules window store layers; do
  [ -f "tests/$t.rs" ] && tests+=(--test "$t")
done

# --timeout: a mutant that makes a poll loop forever is caught by the clock, not by hanging.
CARGO_PROFILE_DEV_DEBUG=0 cargo mutants "${args[@]}" --timeout 120 --jobs 1 -- "${tests[@]}"
