#!/usr/bin/env bash
# Run a command with the sanitizer run-time options used by make test-asan.
#
# usage: util/asan-env.sh LOGDIR COMMAND [ARG...]
#
# Reports go to LOGDIR/asan.PID: nginx points its stderr at error.log, which
# Test::Nginx wipes for every block, so stderr is no place for them. LOGDIR
# is made world-writable, as workers may run as another user.
# util/sanitizer-check.sh LOGDIR judges the result.
#
# detect_odr_violation=0: a dynamic module carries its own ngx_modules[] and
# ngx_module_names[] (objs/*_modules.c), which ASan reports as an ODR
# violation against the nginx binary's; that is how nginx modules work.
# handle_sigill=1: UBSan is built in trap mode (util/build-asan.sh), so
# undefined behaviour is an illegal instruction that ASan reports.
# handle_abort=1: assertion failures get a report and a stack too.

set -euo pipefail

logs=${1:?usage: $0 LOGDIR COMMAND [ARG...]}
shift
mkdir -p "$logs"
chmod 1777 "$logs"
logs=$(cd "$logs" && pwd)
util=$(cd "$(dirname "$0")" && pwd)

export ASAN_OPTIONS="detect_leaks=1:detect_odr_violation=0\
:handle_sigill=1:handle_abort=1\
:detect_stack_use_after_return=1:check_initialization_order=1\
:log_path=$logs/asan${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export LSAN_OPTIONS="suppressions=$util/lsan.supp:print_suppressions=0\
${LSAN_OPTIONS:+:$LSAN_OPTIONS}"

exec "$@"
