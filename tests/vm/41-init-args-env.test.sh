#!/usr/bin/env bash
# argv, env, workdir and rlimits arrive intact through krun_set_exec/workdir/rlimits, both on
# the kernel cmdline (plain values) and through /.zkrun_config.json (values the cmdline cannot
# carry: spaces in the workdir, quotes, backslashes, unicode, 200 env vars).
source "$(dirname "$0")/40-init-lib.sh"
mkdir -p "$ROOTFS/tmp/dir with spaces"

vm env -i PLAIN=1 "$RUN" -w /tmp -r 7=123:456 "$ROOTFS" /report.sh a b=c
expect "plain: ran (rc $rc)" '[[ $rc -eq 0 ]] && has "R argc=2" && has "R arg1=[a]" && has "R arg2=[b=c]"' "$out"
expect "plain: env, workdir, rlimits" 'has "R env PLAIN=1" && has "R pwd=[/tmp]" && has "R nofile=[123:456]"' "$out"
expect "plain: no KRUN_* in the workload env" '! grep -q "^R env KRUN_" <<<"$r"' "$out"

envs=()
for i in $(seq 1 200); do envs+=("VAR_$i=value $i"); done
vm env -i "${envs[@]}" 'QUOTE=say "hi" \ back' 'UNI=héllo ✓' "$RUN" -w "/tmp/dir with spaces" -r 7=77:88 \
  "$ROOTFS" /report.sh 'arg with spaces' 'quote"d' '' '--' 'init=/bin/evil'
expect "hostile: ran (rc $rc)" '[[ $rc -eq 0 ]]' "$out"
expect "hostile: argv with spaces, quotes, empty, --, init=" 'has "R argc=5" && has "R arg1=[arg with spaces]" && has "R arg2=[quote\"d]" && has "R arg3=[]" && has "R arg4=[--]" && has "R arg5=[init=/bin/evil]"' "$out"
n=$(grep -c '^R env VAR_[0-9]*=value [0-9]*$' <<<"$r")
expect "hostile: 200 env vars ($n)" '[[ $n -eq 200 ]]' "$out"
expect "hostile: env with quotes, backslash, unicode" 'has "R env QUOTE=say \"hi\" \\ back" && has "R env UNI=héllo ✓"' "$out"
expect "hostile: workdir with spaces (no cmdline injection)" 'has "R pwd=[/tmp/dir with spaces]"' "$out"
expect "hostile: rlimits" 'has "R nofile=[77:88]"' "$out"

vm env -i "$RUN" "$ROOTFS" /report.sh
expect "REPORT_EXIT unset: status 0; empty env gives only the kernel's HOME/TERM" '[[ $rc -eq 0 ]] && has "R env HOME=/" && has "R env TERM=linux"' "$out"
vm env -i REPORT_EXIT=42 "$RUN" "$ROOTFS" /report.sh
expect "status from the env-driven script: 42 (got $rc)" '[[ $rc -eq 42 ]]' "$out"
[[ $fails -eq 0 ]]
