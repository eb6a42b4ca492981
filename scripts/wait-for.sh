#!/usr/bin/env bash
# wait_for SECONDS WHAT LOG PID COMMAND...: run COMMAND every quarter second until it succeeds. After
# SECONDS, or as soon as process PID (when not empty) has ended, say that WHAT did not answer, show
# the end of LOG and return 1. Sourced by the scripts that start the test services.

wait_for() {
    local limit=$1 what=$2 log=$3 pid=$4 waited=0
    shift 4
    until "$@" >/dev/null 2>&1; do
        if [ "$waited" -ge $((limit * 4)) ]; then
            echo "$what did not answer within ${limit}s; its log:" >&2
            tail -n 40 "$log" >&2
            return 1
        fi
        if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
            echo "$what ended before it answered; its log:" >&2
            tail -n 40 "$log" >&2
            return 1
        fi
        sleep 0.25
        waited=$((waited + 1))
    done
}
