#!/usr/bin/env bash
# vsock ports, guest → host (krun_add_vsock_port / krun_add_vsock_port2 without listen): a guest
# program using AF_VSOCK directly reaches host unix sockets by port: a message echo, 1 MiB
# streamed both ways at once with a checksum (credit-based flow control in both directions), an
# unbridged port refused; duplicate ports and port 620 rejected at the C API.
source "$(dirname "$0")/80-vsock-common.sh"
vsock_vm port
