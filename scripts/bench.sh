#!/usr/bin/env bash
# Reproduces BENCHMARKS.md: sizes (cargo lambda build --release, arm64 and x86_64, bootstrap and
# zip) and whole-process figures (cold start, warm CPU per event, latency, peak RSS, outbound
# calls) of attio-user-sync beside the floor (floor/, a hello-world lambda_http function built
# the same way), then the in-process criterion figures (benches/handler.rs). Release builds use
# LTO: the first run takes 20 minutes or more on 2 cores.
# BENCH_SKIP_SIZES=1 skips the cross builds; BENCH_COLD_RUNS / BENCH_WARM_EVENTS set the counts.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
FLOOR_TARGET="$TARGET/floor"

ensure_pip cargo-lambda cargo-lambda
start_moto

say "building the release binaries (native, for the process figures)"
cargo build --release --locked --bin attio-user-sync
CARGO_TARGET_DIR="$FLOOR_TARGET" cargo build --release --manifest-path floor/Cargo.toml
# `cargo bench` rebuilds the package's binaries into target/release with the bench profile:
# keep the LTO builds that are measured out of its way.
MEASURED="$TARGET/measured"
mkdir -p "$MEASURED"
cp "$TARGET/release/attio-user-sync" "$MEASURED/attio-user-sync"
cp "$FLOOR_TARGET/release/floor" "$MEASURED/floor"
ls -l "$MEASURED"

if [ -z "${BENCH_SKIP_SIZES:-}" ]; then
  say "sizes: cargo lambda build --release for arm64 and x86_64"
  sizes="$(mktemp -d)"
  for arch in arm64 x86-64; do
    cargo lambda build --release --"$arch" --bin attio-user-sync --lambda-dir "$sizes/fn-$arch" --output-format zip >/dev/null
    CARGO_TARGET_DIR="$FLOOR_TARGET" cargo lambda build --release --"$arch" --manifest-path floor/Cargo.toml \
      --lambda-dir "$sizes/floor-$arch" --output-format zip >/dev/null
    cargo lambda build --release --"$arch" --bin attio-user-sync --lambda-dir "$sizes/fn-$arch-bin" >/dev/null
    CARGO_TARGET_DIR="$FLOOR_TARGET" cargo lambda build --release --"$arch" --manifest-path floor/Cargo.toml \
      --lambda-dir "$sizes/floor-$arch-bin" >/dev/null
  done
  echo "## Sizes"
  echo "| artefact | attio-user-sync | floor | ratio |"
  echo "| --- | --- | --- | --- |"
  for arch in arm64 x86-64; do
    for kind in bootstrap zip; do
      if [ "$kind" = bootstrap ]; then
        f="$sizes/fn-$arch-bin/attio-user-sync/bootstrap"; l="$sizes/floor-$arch-bin/floor/bootstrap"
      else
        f="$sizes/fn-$arch/attio-user-sync/bootstrap.zip"; l="$sizes/floor-$arch/floor/bootstrap.zip"
      fi
      python3 -c 'import os,sys; f,l=os.path.getsize(sys.argv[1]),os.path.getsize(sys.argv[2]); print(f"| {sys.argv[3]} {sys.argv[4]} | {f/1048576:.2f} MiB | {l/1048576:.2f} MiB | {f/l:.2f}x |")' \
        "$f" "$l" "$arch" "$kind"
    done
  done
  rm -rf "$sizes"
  echo
fi

say "whole-process figures"
BENCH_BINARY="$MEASURED/attio-user-sync" BENCH_FLOOR="$MEASURED/floor" \
  cargo bench --locked --bench process

say "in-process figures (criterion): the function's own CPU per event"
cargo bench --locked --bench handler

say "the backfill's Attio write rate against the stand-in's 25 writes/s"
cargo bench --locked --bench backfill

say "over a network: the backfill, the queue's workers and an Okta batch with Attio 150 ms away"
BENCH_LATENCY_MS=150 cargo bench --locked --bench backfill
cargo bench --locked --bench latency | grep -v '^{'

say "reconcile: a compare-first rerun against rewrite-all, 10,000 users, Attio 150 ms away (about 15 min)"
BENCH_LATENCY_MS=150 cargo bench --locked --bench reconcile
