#!/usr/bin/env bash
# TSI's host side, outbound (tsi/PROTOCOL.md spoken by hand over AF_VSOCK, so any guest kernel
# will do): CONNECT to a TCP echo server on the test host's loopback (the only address a test
# may use: the host has no NIC) answers 0 with the host socket's address, and 1 MiB goes both
# ways at once with a checksum (credit both ways, back-pressure); a DGRAM socket sends a
# datagram to a UDP echo server and gets the echo back, framed with its source.
source "$(dirname "$0")/80-vsock-common.sh"
vsock_vm tsi-connect
