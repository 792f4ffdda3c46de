#!/bin/sh
# Re-record the pytest outputs under ../ from the suites in this folder.
set -u
cd "$(dirname "$0")"
run() { name=$1; shift; pytest -p no:cacheprovider "$@" --junitxml="../$name.xml" > "../$name.log" 2>&1; echo "$name: exit $?"; }
run mixed -v test_mixed.py
run mixed-quiet test_mixed.py
run pass -v test_pass.py
run collect-error -v test_collect_error.py
run no-tests -v test_empty.py
run deselected -v test_pass.py -k export
run mixed-ra -rA test_mixed.py
