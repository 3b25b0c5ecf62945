# shellcheck shell=bash
# Sourced by scripts/devnet-demo, scripts/bench-tpm, scripts/tpm-example and the devnet tests: a
# software-TPM "VM" (swtpm on 127.0.0.1) whose PCRs are extended as a measured boot would, with a
# matching event log. boot_vm needs A (the attestnet binary) and W (a work directory).
free_pair() { python3 -c 'import socket
while True:
    s=socket.socket(); s.bind(("127.0.0.1",0)); p=s.getsockname()[1]; s.close()
    t=socket.socket()
    try:
        t.bind(("127.0.0.1",p+1)); t.close(); print(p); break
    except OSError: pass'; }

# start_swtpm STATE_DIR PID_FILE: starts swtpm on a free port pair of 127.0.0.1 (server, then
# control on the next port) and waits until it answers; prints the server port. swtpm cannot be
# given port 0, so another process may take the pair between choosing and binding it: a start
# that fails is tried again on a fresh pair.
start_swtpm() {
  local port attempt
  for attempt in 1 2 3; do
    port=$(free_pair)
    if swtpm socket --tpm2 --server type=tcp,port="$port",bindaddr=127.0.0.1 \
      --ctrl type=tcp,port=$((port + 1)),bindaddr=127.0.0.1 --tpmstate dir="$1" \
      --flags not-need-init,startup-clear --daemon --pid file="$2" >&2; then
      for _ in $(seq 50); do
        if TPM2TOOLS_TCTI="swtpm:host=127.0.0.1,port=$port" tpm2_pcrread sha256:0 >/dev/null 2>&1
        then
          echo "$port"
          return 0
        fi
        sleep 0.1
      done
      [ -f "$2" ] && kill "$(cat "$2")" 2>/dev/null
    fi
    echo "swtpm did not start on 127.0.0.1:$port (attempt $attempt of 3)" >&2
  done
  return 1
}

boot_vm() {  # boot_vm NAME KERNEL_BYTE: a TPM, a measured boot, an event log
  local d="$W/$1" port
  mkdir -p "$d/state"
  swtpm_setup --tpm2 --tpmstate "$d/state" --pcr-banks sha1,sha256 --overwrite >/dev/null
  port=$(start_swtpm "$d/state" "$d/swtpm.pid")
  export TPM2TOOLS_TCTI="swtpm:host=127.0.0.1,port=$port"
  head -c 4096 /dev/zero | tr '\0' 'F' > "$d/firmware.bin"
  head -c 8192 /dev/zero | tr '\0' 'B' > "$d/grubx64.efi"
  head -c 65536 /dev/zero | tr '\0' "$2" > "$d/vmlinuz"
  head -c 32768 /dev/zero | tr '\0' 'I' > "$d/initrd.img"
  "$A" evidence simulate-boot --firmware "$d/firmware.bin" --boot-loader "$d/grubx64.efi" \
    --kernel "$d/vmlinuz" --initrd "$d/initrd.img" --cmdline "root=/dev/vda1 ro" \
    --log "$d/eventlog.bin" --policy-out "$d/policy.json" --policy-id fleet > "$d/extends.txt"
  while read -r e; do tpm2_pcrextend "$e"; done < "$d/extends.txt"
  echo "$port" > "$d/port"
  echo "$1: swtpm on 127.0.0.1:$port; $(wc -l < "$d/extends.txt") boot measurements extended"
}

