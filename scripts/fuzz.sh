#!/usr/bin/env bash
# Runs every fuzz target of the repository for a bounded time each, one after
# the other, and prints one line a target: its package, name, executions and
# new interesting inputs. Not part of `go test ./...` (there the fuzz targets
# run only their seed corpora, as unit tests).
#
#   bash scripts/fuzz.sh                 # 30s a target (21 targets: ~11 min)
#   FUZZTIME=5m bash scripts/fuzz.sh     # longer
#   bash scripts/fuzz.sh Decimal Timestamp ValidateAgainstGoJOSE   # some targets
#
# A failure stops the script with status 1 and leaves the crashing input under
# the package's testdata/fuzz/<Target>/, where `go test` then replays it: commit
# it with the fix. Inputs found along the way stay in Go's cache, outside the repo.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${FUZZTIME:-30s}

targets=$(grep -rl --include='*_test.go' '^func Fuzz' . | sort | while read -r f; do
	pkg=./$(dirname "${f#./}")
	grep -o '^func Fuzz[A-Za-z0-9_]*' "$f" | sed "s|^func |$pkg |"
done)

status=0
while read -r pkg name; do
	[[ -z $pkg ]] && continue
	if (($# > 0)); then
		want=0
		for a in "$@"; do [[ $name == "Fuzz$a" || $name == "$a" ]] && want=1; done
		((want)) || continue
	fi
	log=$(mktemp)
	if go test "$pkg" -run '^$' -fuzz "^$name\$" -fuzztime "$fuzztime" >"$log" 2>&1; then
		execs=$(grep -o 'execs: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*' || true)
		found=$(grep -o 'new interesting: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*' || true)
		printf '%-40s %-28s ok   %s executions, %s new inputs in %s\n' "$pkg" "$name" "${execs:-?}" "${found:-?}" "$fuzztime"
	else
		printf '%-40s %-28s FAIL\n' "$pkg" "$name"
		tail -40 "$log"
		status=1
		rm -f "$log"
		break
	fi
	rm -f "$log"
done <<<"$targets"
exit $status
