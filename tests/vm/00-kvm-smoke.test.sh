#!/usr/bin/env bash
# Inside the test host: /dev/kvm is real (nested) KVM from kvm_amd with nested paging, and the KVM
# smoke program (tests/host/kvm-smoke.c) runs its real-mode and long-mode guests with a large
# loop and many exits (fast here, unlike on the machine's own /dev/kvm).
set -uo pipefail
cd "$(dirname "$0")/../.."
[[ -c /dev/kvm ]] || { echo "SKIP: no /dev/kvm (run inside the test host: tests/host/run)"; exit 77; }
fails=0
npt=$(cat /sys/module/kvm_amd/parameters/npt 2>/dev/null)
if [[ $npt == Y || $npt == 1 ]]; then echo "ok   kvm_amd with nested paging (npt=$npt)"
elif [[ -d /sys/module/kvm_intel ]]; then echo "ok   kvm_intel (ept=$(cat /sys/module/kvm_intel/parameters/ept 2>/dev/null))"
else echo "FAIL no kvm_amd with npt=Y nor kvm_intel in the host (npt='$npt')"; fails=1; fi
bin=$(tests/host/build-kvm-smoke.sh) || { echo "FAIL kvm-smoke build"; exit 1; }
"$bin" --loop 10000000 --exits 5000 --timeout 120 || fails=1
[[ $fails -eq 0 ]]
