#!/usr/bin/env bash
# vsock ports, host → guest (krun_add_vsock_port2 with listen): the VMM listens on a unix socket
# path and each host client becomes a vsock connection toward the guest's port (a guest server
# using AF_VSOCK directly echoes three clients); an existing path is -EEXIST, port 620 -EINVAL,
# and the socket file goes with the VM.
source "$(dirname "$0")/80-vsock-common.sh"
vsock_vm listen
