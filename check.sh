#!/usr/bin/env bash
# Runs every check CI runs: formatting, lints, all tests (the firmware under QEMU and the
# Python package included), and the no_std builds for the Cortex-M and RISC-V targets. Sets
# itself up on a fresh machine: adds the thumb and RISC-V targets to the preinstalled stable
# toolchain (never updates it) and installs qemu-system-arm, qemu-system-misc (riscv32) and
# python3-venv with apt-get when they are missing.
set -euo pipefail
export RUSTUP_AUTO_INSTALL=0
cd "$(dirname "$0")"

THUMB_TARGETS=(thumbv7em-none-eabihf thumbv8m.main-none-eabihf thumbv7m-none-eabi thumbv6m-none-eabi)
RISCV_TARGETS=(riscv32imac-unknown-none-elf riscv32imc-unknown-none-elf)
TARGETS=("${THUMB_TARGETS[@]}" "${RISCV_TARGETS[@]}")

# Each step prints the time the one before it took and the total so far: CI must stay under
# its time limit, and this says where the minutes go.
last=$SECONDS
step() {
    printf '\n== %s   (the step before: %ds; %dm%02ds in all)\n' "$*" $((SECONDS - last)) $((SECONDS / 60)) $((SECONDS % 60))
    last=$SECONDS
}
trap 'step "done"' EXIT

step "toolchain: $(rustc --version)"
installed=$(rustup target list --installed)
for t in "${TARGETS[@]}"; do
    grep -qx "$t" <<<"$installed" || rustup target add "$t"
done

# The firmware tests run under QEMU: qemu-system-arm for the Cortex-M boards, Debian's
# qemu-system-misc for qemu-system-riscv32; qemu-user's qemu-x86_64 runs the trainer's
# convolution kernels on older x86 CPU models.
missing=()
command -v qemu-system-arm >/dev/null || missing+=(qemu-system-arm)
command -v qemu-system-riscv32 >/dev/null || missing+=(qemu-system-misc)
command -v qemu-x86_64 >/dev/null || missing+=(qemu-user)
if [ ${#missing[@]} -gt 0 ]; then
    step "installing ${missing[*]} (the firmware tests run under QEMU)"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    # One package at a time: asked for together, apt's resolver has refused a set that it
    # installs one by one (qemu-system-misc takes Debian's qemu-utils over a backport's).
    install_each() {
        $sudo apt-get update -qq || return 1
        for pkg in "$@"; do $sudo apt-get install -y -qq "$pkg" || return 1; done
    }
    if ! install_each "${missing[@]}"; then
        echo "${missing[*]} missing and could not be installed:" >&2
        echo "  sudo apt-get install -y ${missing[*]}" >&2
        exit 1
    fi
fi
step "$(qemu-system-arm --version | head -1); $(qemu-system-riscv32 --version | head -1)"

# The Python package is built and tested in venvs of the machine's python3.
if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    step "installing python3-venv (the Python package is tested in a fresh venv)"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq && $sudo apt-get install -y -qq python3-venv
fi

if ! command -v flip-link >/dev/null; then
    step "installing flip-link (the real boards' firmware links with it)"
    cargo install --locked flip-link
fi

step "cargo fmt --check (host workspace and firmware)"
cargo fmt --all -- --check
(cd device/firmware && cargo fmt --all -- --check)

step "cargo clippy -D warnings (host workspace and firmware)"
cargo clippy --workspace --all-targets -- -D warnings
# meta-train as a library without its figures (plotting is a default feature).
cargo clippy -p tinyadapt-meta-train --no-default-features --all-targets -- -D warnings
for board in device/firmware/boards/*/; do
    # An emulated board's package has both log transports: semihosting (QEMU, the default) and
    # RTT with panic-probe (a probe on hardware); a real board's (its chip's HAL) has RTT only
    # and is built here, since it cannot run. The served model is chosen by TINYADAPT_FIRMWARE
    # at build time; the tests build and boot the sinusoid, CSV-shaped and Omniglot firmware.
    (cd "$board" && cargo clippy --release --bins -- -D warnings)
    if grep -q '^semihosting' "$board/Cargo.toml"; then
        (cd "$board" && cargo clippy --release --bins --no-default-features --features rtt -- -D warnings)
    fi
done
for example in device/firmware/examples/*/; do
    # What a user copies: their own firmware on the device crate (the tests boot it).
    (cd "$example" && cargo clippy --release --bins -- -D warnings)
done

step "no_std builds of shared and device for ${TARGETS[*]}"
for t in "${TARGETS[@]}"; do
    cargo build --release -p tinyadapt-shared -p tinyadapt-device --target "$t"
    cargo build --release -p tinyadapt-device --features defmt --target "$t"
done

step "cargo test (all crates, doc tests, end-to-end CLI tests)"
cargo test --workspace

step "the trainer's vectorised kernels in their SSE2 and AVX2 versions (qemu-x86_64 with older CPU models): the same bits"
# The kernels are picked at run time, so this machine ran only its widest version above.
kernels=$(cargo test -p tinyadapt-meta-train --test kernels --no-run 2>&1 |
    grep -o 'target/debug/deps/kernels-[0-9a-f]*' | head -1)
for cpu_isa in Nehalem:SSE2 Haswell:AVX2; do
    TINYADAPT_EXPECT_KERNELS=${cpu_isa#*:} qemu-x86_64 -cpu "${cpu_isa%:*}" "$kernels" -q
done

step "Python package: the wheel (maturin), installed in a fresh venv with numpy, safetensors and pytest from PyPI, then pytest"
# The wheel is built in its own venv (maturin), then installed where nothing else is, as a
# user installs it. pytest calls the CLI the tests above built, and boots the firmware they
# built under QEMU.
py=target/python
rm -rf "$py/build" "$py/test" "$py/wheels"
python3 -m venv "$py/build"
"$py/build/bin/pip" install -q maturin
"$py/build/bin/maturin" build -q -m python/Cargo.toml --out "$py/wheels"
python3 -m venv "$py/test"
"$py/test/bin/pip" install -q "$py"/wheels/tinyadapt-*.whl safetensors pytest
PYTHONDONTWRITEBYTECODE=1 TINYADAPT_META_TRAIN="$PWD/target/debug/meta-train" "$py/test/bin/python" -m pytest -q -p no:cacheprovider python/tests

step "fuzzing: each target 30 s on its committed corpus (fuzz/run.sh; nightly + cargo-fuzz)"
fuzz/run.sh 30
