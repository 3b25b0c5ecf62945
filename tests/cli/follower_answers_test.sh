#!/usr/bin/env bash
# A node outside the committee (a follower) answers its clients once it holds the header
# certificate of their block. It used to get certificates only by its own fetch, which skipped
# the newest 4 blocks while any block was still to come: when the load stopped, the clients of
# a follower whose requests were in the last blocks waited out their 20 s deadline ("4 ok,
# 1 failed" in each round below). That is how every client of the epochs devnet test could wait
# 20-40 s. Members now send each certificate to the followers as they form it, and the fetch
# reaches the tip once nothing is executed.
# 5 registered nodes, 4 seats, epochs long enough that no endorsement adds a block; each round
# sends one request to every node at once and then nothing. Real processes on 127.0.0.1.
set -euo pipefail
A="$1"
W=$(mktemp -d)
D="$W/devnet"
BASE=$((30000 + (RANDOM % 27) * 100))  # below the ephemeral range (32768-)
cleanup() { "$A" devnet down --dir "$D" >/dev/null 2>&1 || true; rm -rf "$W"; }
trap cleanup EXIT

echo "== a devnet of 5 registered nodes, 4 seats (node4 follows the ledger), node i on CPU i mod n"
"$A" bench --dir "$D" --base-port "$BASE" --nodes 5 --committee-size 4 --epoch-length 100000 \
  --duration 1 --concurrency 5 --pin-cpus | grep -E 'attestnet +[0-9]'
"$A" devnet up --dir "$D" >/dev/null
sleep 1
"$A" devnet status --dir "$D"
ncpu=$(nproc)
for i in 0 1 2 3 4; do  # [node] cpus = [i mod n], and every thread of the process runs there
  grep -q "^cpus = \[$((i % ncpu))\]" "$D/node$i.toml" || { echo "FAIL: node$i.toml has no cpus"; exit 1; }
  for t in /proc/"$(cat "$D/node$i.pid")"/task/*; do
    got=$(sed -n 's/^Cpus_allowed_list:[[:space:]]*//p' "$t/status")
    [ "$got" = "$((i % ncpu))" ] || { echo "FAIL: node$i thread $t runs on CPUs $got"; exit 1; }
  done
done
echo "each node's threads run on its one CPU"
for i in 0 1 2 3 4; do  # nodes sharing a host run one io thread each
  grep -q "^io_threads = 1$" "$D/node$i.toml" || { echo "FAIL: node$i.toml: io_threads"; exit 1; }
done
echo "each node runs one io thread"

for round in 1 2 3; do
  echo "== round $round: one request at each of the 5 nodes, then no load"
  out=$("$A" bench --target "$D" --duration 0.01 --concurrency 5 --timeline "$W/t$round.csv" 2>&1) ||
    true
  grep -E 'attestnet +[0-9]' <<<"$out" || { echo "$out"; echo "FAIL: load"; exit 1; }
  # Each client sends until 10 ms have passed: one request, or two when the first is answered
  # within 10 ms. Every one must be answered.
  ok=$(sed -n 's/.*(\([0-9]*\) ok, 0 failed).*/\1/p' <<<"$out")
  [ "${ok:-0}" -ge 5 ] || { echo "FAIL: a client was not answered"; exit 1; }
  # --timeline: a header, then one line per answered request
  [ "$(head -1 "$W/t$round.csv")" = "phase,due_ms,latency_ms" ] || { echo "FAIL: timeline header"; exit 1; }
  [ "$(grep -c '^peak,' "$W/t$round.csv")" = "$ok" ] || { echo "FAIL: timeline lines"; cat "$W/t$round.csv"; exit 1; }
done
echo "== bench --target refuses a devnet whose ports answer for another network"
mkdir "$W/other"
cp "$D"/node*.toml "$W/other/"
"$A" genesis init --nodes 4 --keys-dir "$W/other/keys" --out "$W/other/genesis.json" >/dev/null
if out=$("$A" bench --target "$W/other" --duration 0.01 --concurrency 1 2>&1); then
  echo "$out"; echo "FAIL: bench drove another network's nodes"; exit 1
fi
grep -q "answers for another network" <<<"$out" || { echo "$out"; echo "FAIL: reason"; exit 1; }
echo "refused: $(head -1 <<<"$out")"
echo "follower answers test: PASS"
