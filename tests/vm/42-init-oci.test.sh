#!/usr/bin/env bash
# crun's way: no krun_set_exec; the OCI config.json sits in the rootfs as /.krun_config.json and
# our init runs process.args with process.env in process.cwd. A malformed one is status 125.
source "$(dirname "$0")/40-init-lib.sh"
cat >"$ROOTFS/.krun_config.json" <<'JSON'
{"ociVersion":"1.0.2","process":{"terminal":false,"user":{"uid":0,"gid":0},
 "args":["/report.sh","oci arg"],"env":["PATH=/usr/bin:/bin","OCI=1","REPORT_EXIT=9"],"cwd":"/etc"},
 "root":{"path":"rootfs"},"hostname":"oci"}
JSON
vm env -i "$RUN" "$ROOTFS"
expect "OCI workload ran with its status 9 (got $rc)" '[[ $rc -eq 9 ]] && has "R argc=1" && has "R arg1=[oci arg]"' "$out"
expect "OCI env and cwd" 'has "R env OCI=1" && has "R pwd=[/etc]"' "$out"
printf '{"process":{"args":["/bin/true"' >"$ROOTFS/.krun_config.json"
vm env -i "$RUN" "$ROOTFS"
# init moves its own stderr onto the krun-stderr port first, so its reason reaches our stderr
# (a blocking port write waits for the host to take the buffer: it cannot be lost to the reboot).
expect "malformed config.json: 125 and the reason (got $rc)" '[[ $rc -eq 125 ]] && grep -q "init.krun: exec config: ConfigSyntax" <<<"$out"' "$out"
[[ $fails -eq 0 ]]
