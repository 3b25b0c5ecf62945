#!/usr/bin/env bash
# A simulator run writes a data directory; `ledger proof` builds a response from it; `verify`
# checks it offline against the genesis file; a tampered response is rejected with a reason.
set -euo pipefail
A="$1"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$A" sim --seed 11 --store "$dir/data" --quiet >/dev/null
rid=$("$A" ledger show 3 --data "$dir/data/replica-0" | awk '/^  record/{print $4; exit}')
[ -n "$rid" ] || { echo "no record in block 3"; exit 1; }
"$A" ledger get "$rid" --data "$dir/data/replica-0" | grep -q "this VM has"
"$A" ledger tail --data "$dir/data/replica-0" | grep -q "certificate: stored"
"$A" ledger proof "$rid" --data "$dir/data/replica-0" --genesis "$dir/data/genesis.json" --out "$dir/resp.json"
"$A" verify "$dir/resp.json" --genesis "$dir/data/genesis.json" | tee "$dir/ok.txt"
grep -q '^VALID' "$dir/ok.txt"
# Flip one hex digit inside the canonical bytes: the response must now be rejected.
python3 - "$dir/resp.json" "$dir/bad.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
b = j["binary"]
i = len(b) // 3
j["binary"] = b[:i] + ("0" if b[i] != "0" else "1") + b[i + 1:]
json.dump(j, open(sys.argv[2], "w"))
PY
if "$A" verify "$dir/bad.json" --genesis "$dir/data/genesis.json" > "$dir/bad.txt"; then
  echo "a tampered response verified"; exit 1
fi
cat "$dir/bad.txt"
grep -q '^INVALID' "$dir/bad.txt"
# Against another network's genesis (made by `genesis init`), the same response is refused.
"$A" genesis init --keys-dir "$dir/keys" --out "$dir/other-genesis.json" >/dev/null
if "$A" verify "$dir/resp.json" --genesis "$dir/other-genesis.json" --json > "$dir/other.txt"; then
  echo "a response verified against another genesis"; exit 1
fi
grep -q '"error": "wrong-chain"' "$dir/other.txt"
[ "$(stat -c %a "$dir/keys/node0.key")" = 600 ]
echo "ledger roundtrip: ok"
