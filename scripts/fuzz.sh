#!/usr/bin/env bash
# Fuzzes the signature-header parser, every provider's payload parser and email redaction with
# cargo fuzz (libFuzzer), SECONDS each (default 60): ./scripts/fuzz.sh [SECONDS] ["TARGET ..."].
# Not part of CI: it is slow and needs cargo-fuzz (installed here from crates.io if missing).
# New inputs go to fuzz/corpus/ (not committed); the small seed corpus is fuzz/seeds/. A crash
# leaves its input in fuzz/artifacts/.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
seconds="${1:-60}"
command -v cargo-fuzz >/dev/null 2>&1 || { say "installing cargo-fuzz"; cargo install cargo-fuzz --locked; }
# libFuzzer's instrumentation needs nightly flags; this machine has only stable Rust, which
# accepts them with RUSTC_BOOTSTRAP=1.
export RUSTC_BOOTSTRAP=1
for target in ${2:-signature_header provider_payloads email_address}; do
  say "fuzzing $target for ${seconds}s"
  mkdir -p "fuzz/corpus/$target"
  cargo fuzz run "$target" "fuzz/corpus/$target" "fuzz/seeds/$target" -- \
    -max_total_time="$seconds" -max_len=65536 -print_final_stats=1 2>&1 | grep -E "^(Done|stat::number_of_executed_units|stat::peak_rss_mb)|ERROR|panicked|SUMMARY" || true
  [ -z "$(ls -A "fuzz/artifacts/$target" 2>/dev/null)" ] || { echo "error: $target found a crash: fuzz/artifacts/$target" >&2; exit 1; }
done
say "no crashes"
