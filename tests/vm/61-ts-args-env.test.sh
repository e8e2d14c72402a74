#!/usr/bin/env bash
# mod.ts under Deno and Bun: arguments and environment reach the guest byte-exact (spaces,
# quotes, backslashes, unicode, empty strings, "$HOME" left unexpanded).
source "$(dirname "$0")/../ts/vm-common.sh"
scenario args-env
[[ $fails -eq 0 ]]
