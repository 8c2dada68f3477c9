#!/usr/bin/env bash
# Runs every check CI runs: formatting, lints, all tests, and the no_std builds for the
# Cortex-M targets. Sets itself up on a fresh machine (adds the thumb targets to the
# preinstalled stable toolchain; never updates the toolchain).
set -euo pipefail
export RUSTUP_AUTO_INSTALL=0
cd "$(dirname "$0")"

THUMB_TARGETS=(thumbv7em-none-eabihf thumbv7m-none-eabi thumbv6m-none-eabi)

step() { printf '\n== %s\n' "$*"; }

step "toolchain: $(rustc --version)"
installed=$(rustup target list --installed)
for t in "${THUMB_TARGETS[@]}"; do
    grep -qx "$t" <<<"$installed" || rustup target add "$t"
done

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

step "no_std builds of shared and device for ${THUMB_TARGETS[*]}"
for t in "${THUMB_TARGETS[@]}"; do
    cargo build --release -p tinyadapt-shared -p tinyadapt-device --target "$t"
    cargo build --release -p tinyadapt-device --features defmt --target "$t"
done

step "cargo test (all crates, doc tests, end-to-end CLI tests)"
cargo test --workspace
