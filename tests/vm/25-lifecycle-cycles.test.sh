#!/usr/bin/env bash
# Issue 10.4: 200 create/start/stop/wait/free cycles across 4 threads in one process: no call
# fails, and the process's fds and RSS are flat (printed).
source "$(dirname "$0")/23-life-common.sh"
life cycles
