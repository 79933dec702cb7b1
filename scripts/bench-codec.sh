#!/usr/bin/env bash
# Compares phpserialize's round trip (decode + encode) with PHP's own
# unserialize()+serialize() on the same golden payloads, in one run, and
# with the fastest Go library from bench/codecs. Go and PHP take turns
# ROUNDS times; the medians are compared. Throughput is reported per CPU
# second (steady on a shared machine) and per wall-clock second.
#
#   scripts/bench-codec.sh            # needs go and php on PATH
#   ROUNDS=5 BENCHTIME=2s scripts/bench-codec.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
BENCHTIME=${BENCHTIME:-1s}
PHP_SECONDS=${PHP_SECONDS:-1}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

command -v php >/dev/null || { echo "bench-codec: php not found on PATH" >&2; exit 1; }

go test -c -o "$tmp/phpserialize.test" ./phpserialize
(cd bench/codecs && go test -c -o "$tmp/codecs.test" .)

for r in $(seq "$ROUNDS"); do
	(cd phpserialize && "$tmp/phpserialize.test" -test.run '^$' -test.bench 'RoundTrip/(4k|64k)/php_serialize$' \
		-test.benchtime "$BENCHTIME" -test.benchmem) >>"$tmp/go.txt"
	php scripts/php/bench-php.php phpserialize/testdata "$PHP_SECONDS" >>"$tmp/php.txt"
	(cd bench/codecs && "$tmp/codecs.test" -test.run '^$' -test.bench 'RoundTrip/plain-(4k|64k)/' \
		-test.benchtime "$BENCHTIME" -test.benchmem) >>"$tmp/libs.txt"
done

calc() { awk "BEGIN { print $1 }"; }

median() { sort -g | awk '{a[NR]=$1} END {if (NR==0) print "nan"; else if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

# go test -bench lines: name-GOMAXPROCS N ns/op "ns/op" MB/s "MB/s" cpuMB/s "cpuMB/s" B/op "B/op" allocs "allocs/op"
gofield() { # file benchmark-name unit
	awk -v name="$2" -v unit="$3" '{n = $1; sub(/-[0-9]+$/, "", n)} n == name {for (i=2;i<NF;i++) if ($(i+1)==unit) print $i}' "$1" | median
}

echo "machine: $(nproc) cores, $(uname -m), $(go version | awk '{print $3}'), $(php -r 'echo "PHP ", PHP_VERSION;'), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "rounds: $ROUNDS (medians)"
echo
printf '%-8s %-32s %12s %12s %10s\n' payload "round trip (decode+encode)" "cpu MB/s" "wall MB/s" "allocs/op"
for size in 4k 64k; do
	php_cpu=$(awk -v s="$size" '$1==s && $2=="roundtrip" {print $4}' "$tmp/php.txt" | median)
	php_wall=$(awk -v s="$size" '$1==s && $2=="roundtrip" {print $3}' "$tmp/php.txt" | median)
	go_cpu=$(gofield "$tmp/go.txt" "BenchmarkRoundTrip/$size/php_serialize" cpuMB/s)
	go_wall=$(gofield "$tmp/go.txt" "BenchmarkRoundTrip/$size/php_serialize" MB/s)
	go_allocs=$(gofield "$tmp/go.txt" "BenchmarkRoundTrip/$size/php_serialize" allocs/op)
	printf '%-8s %-32s %12.1f %12.1f %10s\n' "$size" "PHP unserialize+serialize" "$php_cpu" "$php_wall" "-"
	printf '%-8s %-32s %12.1f %12.1f %10s\n' "$size" "phpserialize Decoder+Append" "$go_cpu" "$go_wall" "$go_allocs"
	printf '%-8s %-32s %11.2fx %11.2fx\n' "$size" "ratio phpserialize / PHP" "$(calc "$go_cpu / $php_cpu")" "$(calc "$go_wall / $php_wall")"
done
echo
echo "Go libraries, round trip of the plain payloads (arrays and scalars only; none of them reads the object payloads):"
printf '%-8s %-40s %12s %12s %10s\n' payload library "cpu MB/s" "wall MB/s" "allocs/op"
for size in 4k 64k; do
	best=0
	ours=0
	for lib in $(awk -v p="BenchmarkRoundTrip/plain-$size/" 'index($1, p) == 1 {n = $1; sub(/-[0-9]+$/, "", n); print n}' "$tmp/libs.txt" | sort -u); do
		cpu=$(gofield "$tmp/libs.txt" "$lib" cpuMB/s)
		wall=$(gofield "$tmp/libs.txt" "$lib" MB/s)
		allocs=$(gofield "$tmp/libs.txt" "$lib" allocs/op)
		name=${lib#BenchmarkRoundTrip/plain-$size/}
		printf '%-8s %-40s %12.1f %12.1f %10s\n' "$size" "$name" "$cpu" "$wall" "$allocs"
		case "$name" in
		phpsessd_Value*) ours=$cpu ;;
		phpsessd*) ;;
		*) if [ "$(calc "($cpu > $best) ? 1 : 0")" = 1 ]; then best=$cpu; fi ;;
		esac
	done
	if [ "$(calc "($best > 0) ? 1 : 0")" = 1 ]; then
		printf '%-8s %-40s %11.1fx\n' "$size" "ratio phpsessd Value / fastest library" "$(calc "$ours / $best")"
	fi
done
