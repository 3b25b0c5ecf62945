#!/usr/bin/env bash
# The light client across epochs: `sim --epochs` writes a genesis, the response for its last
# record (with the chain of hand-overs from genesis) and a checkpoint half-way; `verify` checks
# the response from genesis alone and from the pinned checkpoint; forged hand-overs and a
# checkpoint of another chain are refused with a reason.
set -euo pipefail
A="$1"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$A" sim --epochs 24 --seed 5 --out "$dir" --quiet > "$dir/sim.txt"
grep -q ' 0 violation(s)' "$dir/sim.txt"
"$A" verify "$dir/response.json" --genesis "$dir/genesis.json" | tee "$dir/ok.txt"
grep -q '^VALID' "$dir/ok.txt"
grep -q 'hand-over(s) from genesis' "$dir/ok.txt"
"$A" verify "$dir/response.json" --genesis "$dir/genesis.json" --checkpoint "$dir/checkpoint.json" | tee "$dir/ck.txt"
grep -q 'from the checkpoint at epoch' "$dir/ck.txt"

python3 - "$dir" <<'PY'
import json, sys
d = sys.argv[1]
r = json.load(open(d + "/response.json"))
b = r["binary"]
# Flip hex digits at several places inside the hand-over chain (the middle of the response):
# each forged response must be refused.
for k, frac in enumerate((0.35, 0.5, 0.65)):
    i = int(len(b) * frac)
    f = dict(r)
    f["binary"] = b[:i] + ("0" if b[i] != "0" else "1") + b[i + 1:]
    json.dump(f, open(d + "/forged%d.json" % k, "w"))
c = json.load(open(d + "/checkpoint.json"))
c["chain_id"] = "another-chain"
json.dump(c, open(d + "/other-checkpoint.json", "w"))
PY
for k in 0 1 2; do
  if "$A" verify "$dir/forged$k.json" --genesis "$dir/genesis.json" > "$dir/bad.txt"; then
    echo "forged response $k verified"; exit 1
  fi
  cat "$dir/bad.txt"
  grep -q '^INVALID' "$dir/bad.txt"
done
if "$A" verify "$dir/response.json" --genesis "$dir/genesis.json" --checkpoint "$dir/other-checkpoint.json" 2> "$dir/err.txt"; then
  echo "a checkpoint of another chain was accepted"; exit 1
fi
grep -q 'another-chain' "$dir/err.txt"
echo "light client: OK"
