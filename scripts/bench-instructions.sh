#!/usr/bin/env bash
# Instructions (valgrind callgrind) a cold process and a warm one spend, for release binaries
# given as arguments, beside the floor: a figure that does not move with the machine's load, for
# before/after comparisons when wall-clock timings are too noisy (BENCHMARKS.md).
#   scripts/bench-instructions.sh BINARY [BINARY...]
# Each binary runs under benches/process.rs's Lambda emulator (2 cold starts, then one process
# per route handling 3 new users); the plain-HTTP series runs under callgrind.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
[ $# -ge 1 ] || { echo "usage: $0 BINARY [BINARY...]" >&2; exit 2; }
command -v valgrind >/dev/null || { sudo apt-get install -y valgrind >/dev/null 2>&1 || apt-get install -y valgrind >/dev/null; }
ensure_pip cargo-lambda cargo-lambda
start_moto
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
CARGO_TARGET_DIR="$TARGET/floor" cargo build --release --manifest-path floor/Cargo.toml
work="$(mktemp -d)"
wrap() { # wrap NAME BINARY: a launcher that runs BINARY under callgrind, except the TLS series
  cat >"$work/$1.sh" <<WRAP
#!/bin/sh
if [ -n "\$SSL_CERT_FILE" ]; then exec "$2"; fi
valgrind --tool=callgrind --callgrind-out-file="$work/$1.%p.out" "$2" 2>/dev/null &
wait
WRAP
  chmod +x "$work/$1.sh"
}
wrap floor "$TARGET/floor/release/floor"
echo "| binary | cold process (init + first event) | warm process (init + 3 events), first route | floor cold |"
echo "| --- | --- | --- | --- |"
n=0
for binary in "$@"; do
  n=$((n + 1)); wrap "fn$n" "$(realpath "$binary")"
  rm -f "$work"/floor.*.out
  BENCH_COLD_RUNS=2 BENCH_WARM_EVENTS=3 BENCH_BINARY="$work/fn$n.sh" BENCH_FLOOR="$work/floor.sh" \
    cargo bench --locked --bench process >"$work/fn$n.log" 2>&1
  counts() { for f in $(ls -tr "$work"/$1.*.out); do grep -m1 '^summary:' "$f" | cut -d' ' -f2; done; }
  mapfile -t ours < <(counts "fn$n"); mapfile -t floor < <(counts floor)
  echo "| $binary | ${ours[0]} | ${ours[2]} | ${floor[0]} |"
done
rm -rf "$work"
