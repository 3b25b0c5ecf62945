#!/usr/bin/env bash
# A devnet appraises SEV-SNP and TDX requests through the same policy engine as TPM: real
# reports from ../shared/vectors (AMD Milan, Google Cloud TDX) are submitted by the VM agent
# (`attest --bundle`); their REPORT_DATA is not this request's binding (they were taken on other
# machines), so the network's verdict is contraindicated with that reason, certified, and the
# response verifies offline. Skips visibly without ../shared/vectors, fails under CI=true.
set -euo pipefail
A=$1
V=$2
if [ ! -d "$V" ]; then
  if [ "${CI:-}" = "true" ]; then echo "FAIL: CI=true but $V is missing"; exit 1; fi
  echo "SKIP: no vectors at $V (they live in ../shared/vectors beside the checkout)"; exit 77
fi
D=$(mktemp -d /tmp/attestnet-cc-node-test.XXXXXX)
BASE=$((10000 + RANDOM % 20000))
trap '"$A" devnet down --dir "$D/devnet" >/dev/null 2>&1 || true; rm -rf "$D"' EXIT
cd "$D"
"$A" evidence bundle --platform sev-snp --report "$V/sev-snp/milan-vcek-go-sev-guest/report.bin" \
  --vcek "$V/sev-snp/milan-vcek-go-sev-guest/vcek.der" --chain "$V/sev-snp/amd-roots/ask_ark_milan.pem" \
  --out snp.bundle >/dev/null
"$A" evidence bundle --platform tdx --quote "$V/tdx/v4-gce-cos113-ccel/quote.dat" --out tdx.bundle >/dev/null
intel=$(sha256sum "$V/tdx/intel-root/Intel_SGX_Provisioning_Certification_RootCA.cer" | cut -d' ' -f1)
cat > policy.json <<JSON
{ "id": "cc-fleet", "version": 1,
  "sev-snp": { "ark_fingerprints": ["69d063b45344d26a2e94e1f4210de49ef555308287d4c174445c95639a540bcd"] },
  "tdx": { "root_fingerprints": ["$intel"] } }
JSON
"$A" devnet up --nodes 4 --dir devnet --policy policy.json --base-port "$BASE" \
  --api-base-port $((BASE + 50)) >/dev/null
for p in sev-snp tdx; do
  b=snp.bundle; [ $p = tdx ] && b=tdx.bundle
  out=$("$A" attest --node "http://127.0.0.1:$((BASE + 50))" --bundle $b --platform $p \
    --vm-id "$p-vm" --out "$p.json")
  echo "$out"
  grep -q "committed: verdict contraindicated" <<<"$out" || { echo "FAIL: $p not appraised"; exit 1; }
  grep -qi "binding" <<<"$out" || { echo "FAIL: $p: the binding failure is not the reason"; exit 1; }
  "$A" verify "$p.json" --genesis devnet/genesis.json | tee verify.out | head -3
  grep -q "^VALID: vm $p-vm ($p) verdict contraindicated, policy cc-fleet v1" verify.out \
    || { echo "FAIL: $p response does not verify"; exit 1; }
done
echo "cc node test: PASS"
