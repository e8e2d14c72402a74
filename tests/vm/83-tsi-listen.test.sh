#!/usr/bin/env bash
# TSI's host side, inbound, and the exposure rule (include/libkrun.h at krun_set_port_map):
# without a port map a guest listener asking for the wildcard is bound on the host's loopback
# only, at the same port, and bind(port 0) reports the real host port; with a map, a mapped port
# is bound where the guest asked at the mapped host port and an unmapped one is -EPERM. Host
# clients reach the guest's listener through connections the VMM opens toward it, headed by the
# client's address.
source "$(dirname "$0")/80-vsock-common.sh"
vsock_vm tsi-listen
