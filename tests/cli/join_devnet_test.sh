#!/usr/bin/env bash
# Runtime admission (issue 5): nodes outside the genesis join a running network with their own
# platform evidence, appraised by the committee under the genesis admission policy.
#   - a devnet of 4 genesis nodes (4 seats, epochs of 32 blocks) whose admission policy lists
#     the measured boot of an approved kernel;
#   - node4 (swtpm that booted the approved kernel) joins: accepted; it is pinned by the others,
#     follows the ledger, and earns a seat once a member is killed;
#   - node5 (swtpm that booted another kernel) is refused, with the reason, and never registered;
#   - the killed member's key is rotated (signed by the old key); restarted with the new key, it
#     follows again under the same registry index;
#   - a VM agent given the dead member's URL first fails over to the next node;
#   - every response the clients received verifies offline from genesis;
#   - a relying party fetches a checkpoint, checks it from genesis, and verifies a response
#     whose hand-overs start there.
# Real processes and real swtpm instances on 127.0.0.1 (node ports 20000-28999, below the
# ephemeral range; swtpm ports come from the kernel).
set -euo pipefail
A="$1"
W=$(mktemp -d)
D="$W/devnet"
BASE=$((20000 + (RANDOM % 90) * 100))
cleanup() {
  rc=$?
  "$A" devnet down --dir "$D" >/dev/null 2>&1 || true
  for p in "$W"/*/swtpm.pid; do [ -f "$p" ] && kill "$(cat "$p")" 2>/dev/null; done
  [ $rc = 0 ] || tail -n 8 "$D"/node*.log 2>/dev/null || true
  rm -rf "$W"
}
trap cleanup EXIT
API0="http://127.0.0.1:$((BASE + 50))"
get() {  # get PORT PATH
  exec 3<>"/dev/tcp/127.0.0.1/$1"
  printf 'GET %s HTTP/1.0\r\nHost: x\r\n\r\n' "$2" >&3
  sed '1,/^\r$/d' <&3
  exec 3<&-
}
field() { sed -n "s/.*\"$1\": *\([^,}]*\).*/\1/p" | head -1 | tr -d '" '; }
status() { "$A" devnet status --dir "$D" 2>/dev/null || true; }
committee() { status | sed -n 's/^committee (epoch \([0-9]*\), as [a-z0-9]* sees it): //p'; }

echo "== 1. two swtpm platforms: one boots the approved kernel, one another kernel"
. "$(dirname "$0")/../../scripts/swtpm-vm.sh"
boot_vm good K
boot_vm bad X
python3 - "$W/good/policy.json" "$W/admission.json" <<'PY'
import json, sys
p = json.load(open(sys.argv[1])); p["id"] = "node-admission"
json.dump(p, open(sys.argv[2], "w"), indent=2)
PY

echo "== 2. a devnet of 4 genesis nodes; its genesis admits nodes whose TPM proves that boot"
"$A" bench --dir "$D" --base-port "$BASE" --nodes 4 --committee-size 4 --epoch-length 32 \
  --admission-policy "$W/admission.json" --duration 3 --concurrency 4 | tail -1
"$A" devnet up --dir "$D" >/dev/null
grep -q '"admission_policy"' "$D/genesis.json" || { echo "FAIL: no admission policy in genesis"; exit 1; }

echo "== 3. node4 starts outside the registry, then joins with its TPM's quote"
"$A" devnet add-node --dir "$D"
sleep 1
reg=$(get $((BASE + 54)) /v1/status | field registered)
[ "$reg" = false ] || { echo "FAIL: node4 registered before joining ($reg)"; exit 1; }
"$A" join --config "$D/node4.toml" --node "$API0" --wait 30 \
  --tpm "swtpm:host=127.0.0.1,port=$(cat "$W/good/port")" --eventlog "$W/good/eventlog.bin"

echo "== 4. node5 boots another kernel: its join is refused, with the reason"
"$A" devnet add-node --dir "$D" >/dev/null
set +e
out=$("$A" join --config "$D/node5.toml" --node "$API0" --wait 30 \
  --tpm "swtpm:host=127.0.0.1,port=$(cat "$W/bad/port")" --eventlog "$W/bad/eventlog.bin" 2>&1)
rc=$?
set -e
echo "$out" | tail -1
[ $rc != 0 ] && grep -q "refused" <<<"$out" || { echo "FAIL: node5 was not refused"; exit 1; }
grep -qi "kernel\|pcr\|component" <<<"$out" || { echo "FAIL: the refusal gives no reason"; exit 1; }
out=$("$A" leave --config "$D/node5.toml" --node "$API0" --wait 30 2>&1) && {
  echo "FAIL: an unregistered key left"; exit 1; } || true
echo "leave by an unregistered key: $(echo "$out" | tail -1)"

echo "== 5. node4 is registered, pinned by the others, and follows the ledger"
ok=""
for i in $(seq 1 40); do
  s=$(get $((BASE + 54)) /v1/status || true)
  h4=$(echo "$s" | field height)
  h0=$(get $((BASE + 50)) /v1/status | field height)
  if [ "$(echo "$s" | field registered)" = true ] && [ "${h4:-0}" -ge "$((h0 - 2))" ] && [ "$h0" -gt 0 ]; then
    ok=1; break
  fi
  sleep 0.5
done
[ -n "$ok" ] || { echo "FAIL: node4 did not catch up (height ${h4:-?} of $h0)"; get $((BASE + 54)) /v1/status; exit 1; }
echo "node4: registered, height $h4 (node0 at $h0)"
get $((BASE + 50)) /v1/nodes | python3 -c '
import json, sys
j = json.load(sys.stdin); names = [n["name"] for n in j["nodes"]]
print("registry:", names)
assert "node4" in names and "node5" not in names, names'

echo "== 6. kill -9 member node1 (an agent fails over from it); under load node4 takes a seat"
kill -9 "$(cat "$D/node1.pid")"
# A VM agent given several nodes fails over from the dead one.
"$A" attest --node "http://127.0.0.1:$((BASE + 51)),$API0" --vm-id failover-vm \
  --tpm "swtpm:host=127.0.0.1,port=$(cat "$W/good/port")" --eventlog "$W/good/eventlog.bin" \
  --out "$W/failover.json" | tee "$W/failover.txt"
grep -q "127.0.0.1:$((BASE + 51))" "$W/failover.txt" && grep -q "from $API0" "$W/failover.txt" ||
  { echo "FAIL: the agent did not fail over"; exit 1; }
"$A" verify "$W/failover.json" --genesis "$D/genesis.json" >/dev/null
sat=""
for round in 1 2 3 4 5 6 7 8; do
  "$A" bench --target "$D" --duration 6 --concurrency 4 --save-responses "$W/resp" > "$W/load.txt" 2>&1 || true
  grep -E 'attestnet +[0-9]' "$W/load.txt" || { cat "$W/load.txt"; echo "FAIL: load"; exit 1; }
  c=$(committee)
  if echo "$c" | grep -qw node4 && ! echo "$c" | grep -qw node1; then sat="$c"; break; fi
done
[ -n "$sat" ] || { echo "FAIL: node4 never sat (committee: $(committee))"; exit 1; }
echo "committee now: $sat"

echo "== 7. node1's key is rotated (signed by its old key); restarted with the new key, it follows"
old_pk=$(get $((BASE + 50)) /v1/nodes | python3 -c '
import json, sys
print(next(n["public_key"] for n in json.load(sys.stdin)["nodes"] if n["name"] == "node1"))')
"$A" keygen --out "$D/keys/node1-new.key" >/dev/null
"$A" rotate-key --config "$D/node1.toml" --new-key "$D/keys/node1-new.key" --node "$API0" --wait 30
sed -i 's#keys/node1.key#keys/node1-new.key#' "$D/node1.toml"
"$A" devnet up --dir "$D" >/dev/null
ok=""
for i in $(seq 1 60); do
  s=$(get $((BASE + 51)) /v1/status || true)
  h1=$(echo "$s" | field height)
  h0=$(get $((BASE + 50)) /v1/status | field height)
  [ "$(echo "$s" | field registered)" = true ] && [ "${h1:-0}" -ge "$((h0 - 2))" ] && { ok=1; break; }
  sleep 0.5
done
[ -n "$ok" ] || { echo "FAIL: node1 did not follow under its new key"; get $((BASE + 51)) /v1/status; exit 1; }
echo "$s" | python3 -c '
import json, sys
s = json.load(sys.stdin); print("node1 now: registry index", s["replica"], "key", s["public_key"][:16])
assert s["replica"] == 1'
grep -q "restored from the snapshot" "$D/node1.log" ||
  { echo "FAIL: node1 replayed its ledger instead of starting from its snapshot"; exit 1; }
echo "node1: $(grep "restored from the snapshot" "$D/node1.log" | tail -1 | sed "s/^attestnet node: //")"
# Started from the snapshot, node1 computes the same headers as node0 (state roots included).
hc=$(get $((BASE + 51)) /v1/status | field height)
for node in 50 51; do get $((BASE + node)) "/v1/blocks/$hc" | field hash; done | sort -u | wc -l |
  grep -qx 1 || { echo "FAIL: node1's header $hc differs from node0's"; exit 1; }
new_pk=$(get $((BASE + 50)) /v1/nodes | python3 -c '
import json, sys
print(next(n["public_key"] for n in json.load(sys.stdin)["nodes"] if n["name"] == "node1"))')
[ "$new_pk" != "$old_pk" ] || { echo "FAIL: the registry still has the old key"; exit 1; }
# The retired key signs nothing any more (here: a rotation to yet another key).
"$A" keygen --out "$W/third.key" >/dev/null
out=$("$A" rotate-key --key "$D/keys/node1.key" --genesis "$D/genesis.json" --new-key "$W/third.key" \
  --node "$API0" --wait 30 2>&1) && {
  echo "$out"; echo "FAIL: the retired key signed a rotation"; exit 1; } || true
echo "a rotation signed by the retired key: $(echo "$out" | tail -1)"

echo "== 8. every response verifies offline from genesis"
n=0
for f in "$W"/resp/*.json; do
  "$A" verify "$f" --genesis "$D/genesis.json" >/dev/null || { echo "FAIL: $f"; exit 1; }
  n=$((n + 1))
done
echo "$n responses verified"
[ "$n" -ge 20 ] || { echo "FAIL: too few responses"; exit 1; }

echo "== 9. a relying party pins a checkpoint (verified once from genesis) and gets shorter responses"
"$A" checkpoint --node "$API0" --genesis "$D/genesis.json" --out "$W/checkpoint.json"
cp_epoch=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["epoch"])' "$W/checkpoint.json")
last=$(ls "$W"/resp/*.json | tail -1)
id=$("$A" verify "$last" --genesis "$D/genesis.json" --json | field request_id)
get $((BASE + 52)) "/v1/attestations/$id?from_epoch=$cp_epoch" > "$W/pinned.body"
python3 - "$W/pinned.body" "$W/pinned.json" <<'PY'
import json, sys
json.dump(json.load(open(sys.argv[1]))["response"], open(sys.argv[2], "w"))
PY
"$A" verify "$W/pinned.json" --genesis "$D/genesis.json" --checkpoint "$W/checkpoint.json"
full=$(get $((BASE + 52)) "/v1/attestations/$id" | wc -c)
short=$(wc -c < "$W/pinned.body")
echo "the same response: $full bytes from genesis, $short bytes from the checkpoint of epoch $cp_epoch"
[ "$short" -lt "$full" ] || { echo "FAIL: the pinned response is not shorter"; exit 1; }
# Without the checkpoint, the short response does not verify: its chain starts mid-way.
if "$A" verify "$W/pinned.json" --genesis "$D/genesis.json" >/dev/null 2>&1; then
  echo "FAIL: a response without the hand-overs from genesis verified from genesis"; exit 1
fi
echo "join devnet test: PASS"
