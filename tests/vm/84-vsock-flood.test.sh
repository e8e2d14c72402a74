#!/usr/bin/env bash
# A hostile guest floods a vsock port with 1100 simultaneous connections: the VMM accepts its
# documented cap (1024, include/libkrun.h), refuses the rest with RST, its host fds stay under
# the cap, and the port serves again once the guest lets go. (Malformed vsock packets cannot be
# sent from guest userspace through AF_VSOCK: the unit tests and the fuzz-vsock target drive the
# device with them.)
source "$(dirname "$0")/80-vsock-common.sh"
vsock_vm flood
