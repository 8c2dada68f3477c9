#!/usr/bin/env bash
# Coverage-guided fuzzing of the w* blob decoder and the device link server with cargo-fuzz
# (libFuzzer), on the preinstalled nightly toolchain.
#
#   fuzz/run.sh SECONDS [TARGET...]      (default: every target, one after the other)
#
# Each target starts from its committed seeds (fuzz/corpus/TARGET) and runs for SECONDS. New
# corpus entries go to a scratch directory, never to the committed corpus, so a run leaves
# the repository clean; crash inputs go to fuzz/artifacts/TARGET/ (ignored by git). Exits
# non-zero if any target crashes (or fails to build). Regenerate the seeds with
# `cd fuzz && cargo run --example seeds`.
set -euo pipefail
export RUSTUP_AUTO_INSTALL=0

usage() {
    echo "usage: $0 SECONDS [TARGET...]" >&2
    exit 2
}
[ $# -ge 1 ] || usage
secs=$1
shift
[[ $secs =~ ^[0-9]+$ ]] && [ "$secs" -gt 0 ] || usage

fuzz_dir=$(cd "$(dirname "$0")" && pwd)
cd "$fuzz_dir"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz (cargo install cargo-fuzz --locked)"
    cargo install cargo-fuzz --locked
fi

if [ $# -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo +nightly fuzz list)
fi

scratch=$(mktemp -d "${TMPDIR:-/tmp}/tinyadapt-fuzz.XXXXXX")
echo "== $(rustc +nightly --version); $(cargo fuzz --version); scratch dir $scratch"

failed=()
summary=()
for t in "${targets[@]}"; do
    [ -d "corpus/$t" ] || { echo "no seed corpus fuzz/corpus/$t" >&2; exit 2; }
    mkdir -p "$scratch/$t" "artifacts/$t"
    log="$scratch/$t.log"
    echo
    echo "== $t: ${secs}s (log: $log)"
    # Build first, so its time is not counted in the run's and a build error is told apart.
    start=$(date +%s)
    if ! cargo +nightly fuzz build "$t" >"$scratch/$t.build.log" 2>&1; then
        tail -n 30 "$scratch/$t.build.log" >&2
        echo "== $t: BUILD FAILED" >&2
        failed+=("$t (build)")
        continue
    fi
    echo "   built in $(($(date +%s) - start))s"
    # libFuzzer writes new entries to the first corpus directory only: the scratch one.
    set +e
    cargo +nightly fuzz run "$t" "$scratch/$t" "corpus/$t" -- \
        -max_total_time="$secs" -print_final_stats=1 >"$log" 2>&1
    rc=$?
    set -e
    # The final stats: executions, coverage, features, corpus, peak RSS.
    grep -E '^#[0-9]+[[:space:]]+DONE|^Done [0-9]+ runs|^stat::' "$log" || true
    if [ "$rc" -ne 0 ]; then
        echo "== $t: FAILED (exit $rc)" >&2
        grep -E -A 40 'panicked|ERROR: (libFuzzer|AddressSanitizer)|deadly signal' "$log" | head -n 60 >&2 || true
        grep -E 'Test unit written to|artifact_prefix' "$log" >&2 || true
        failed+=("$t")
    fi
    summary+=("$t: $(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1 | tr -s ' \t' ' ')")
done

echo
echo "== summary"
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
    echo "== crashed or failed: ${failed[*]} (logs in $scratch)" >&2
    exit 1
fi
echo "== no crash (new corpus entries in $scratch, not committed)"
