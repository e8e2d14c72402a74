#!/usr/bin/env bash
# A hostile guest: it floods a vsock port with 1100 simultaneous connections (the VMM accepts
# its documented cap, 1024, refuses the rest with RST, its host fds stay under the cap, and the
# port serves again afterwards), then sends TSI requests that are malformed (-EINVAL each),
# truncated, and 1100 connections to port 620 at once, after which a CONNECT still works.
# (Malformed vsock packets cannot be sent from guest userspace through AF_VSOCK: the unit
# tests and the fuzz-vsock target drive the device with them.)
source "$(dirname "$0")/80-vsock-common.sh"
rc=0
vsock_vm flood || rc=1
vsock_vm tsi-hostile || rc=1
exit $rc
