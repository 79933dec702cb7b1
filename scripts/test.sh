#!/usr/bin/env bash
# Runs every test of phpsessd: formatting and vet, Go tests with -race
# (unit, real-socket, Redis and php-fpm integration), brief fuzzing of every
# fuzz target, the WebAssembly builds of the portable packages, and the
# PHPUnit suite of php-client. Missing Debian packages are installed when
# run as root; otherwise the script names them and stops.
#
# Usage: scripts/test.sh            run everything
#        FUZZTIME=1000000x scripts/test.sh   (fuzz executions per target)
set -uo pipefail

cd "$(dirname "$0")/.." || exit 1
root=$(pwd)
export PATH="$PATH:/usr/local/go/bin"
if ! command -v go >/dev/null 2>&1; then
	echo "test.sh: Go is required (https://go.dev/dl/); not found on PATH or in /usr/local/go/bin" >&2
	exit 1
fi
export PATH="$PATH:$(go env GOPATH)/bin"
# Integration tests skip themselves when PHP or Redis is absent on a
# developer laptop; here they must run, so absence is a failure.
export PHPSESSD_REQUIRE_PHP=1

# A count, not a duration: with a duration, Go 1.26's fuzz coordinator can
# report a spurious "context deadline exceeded" at the end of the window
# (golang/go#75804, fixed in Go 1.27); a count has no deadline to race.
FUZZTIME=${FUZZTIME:-100000x}
WAZERO_VERSION=v1.11.0

# ---------------------------------------------------------------- packages
debs=(php8.2-cli php8.2-fpm php8.2-redis php8.2-memcached redis-server memcached phpunit nodejs
	php-symfony-http-foundation php-laravel-framework)
missing=()
for p in "${debs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
	if [[ $(id -u) -ne 0 ]]; then
		echo "test.sh: missing Debian packages: ${missing[*]}" >&2
		echo "test.sh: install them with: sudo apt-get install -y ${missing[*]}" >&2
		exit 1
	fi
	echo "test.sh: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq || { echo "test.sh: apt-get update failed" >&2; exit 1; }
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/tmp/phpsessd-apt.log 2>&1 || {
		tail -20 /tmp/phpsessd-apt.log >&2
		echo "test.sh: apt-get install failed" >&2
		exit 1
	}
fi

# ------------------------------------------------------------------- steps
passed=0
failed=0
failures=()
step() {
	local name=$1
	shift
	echo
	echo "=== $name"
	local start=$SECONDS
	if "$@"; then
		passed=$((passed + 1))
		echo "=== $name: ok ($((SECONDS - start))s)"
	else
		failed=$((failed + 1))
		failures+=("$name")
		echo "=== $name: FAILED ($((SECONDS - start))s)"
	fi
}

gofmt_check() {
	local out
	out=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './bench/*'))
	[[ -z $out ]] || { echo "gofmt would change:"; echo "$out"; return 1; }
}

go_test() {
	go test -race -count=1 -timeout 20m ./...
}

# The server's tests run once more with every connection on event loops,
# the transport the daemon picks for the memory store.
go_test_loops() {
	PHPSESSD_TEST_LOOPS=2 go test -race -count=1 -timeout 10m ./server/
}

# Every Fuzz* function of the module gets a short run; the committed corpus
# in testdata/fuzz is replayed by go_test already, this looks for new bugs.
fuzz_all() {
	local ok=0 pkg name
	while read -r file; do
		pkg="./$(dirname "$file")"
		for name in $(grep -oE '^func (Fuzz[A-Za-z0-9_]+)\(' "$file" | sed -E 's/^func (Fuzz[A-Za-z0-9_]+)\(/\1/'); do
			echo "--- fuzz $pkg $name ($FUZZTIME)"
			go test -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME" -timeout 5m "$pkg" || ok=1
		done
	done < <(git ls-files '*_test.go' | xargs grep -l '^func Fuzz' 2>/dev/null)
	return $ok
}

# Packages that must run wherever PHP runs, including WebAssembly hosts.
wasm_pkgs() {
	local p out=()
	for p in phpserialize protocol; do
		[[ -d $p ]] && out+=("./$p")
	done
	echo "${out[@]}"
}

wasip1_test() {
	local pkgs
	pkgs=$(wasm_pkgs)
	[[ -n $pkgs ]] || return 0
	command -v wazero >/dev/null 2>&1 || go install "github.com/tetratelabs/wazero/cmd/wazero@$WAZERO_VERSION" || return 1
	mkdir -p /tmp/phpsessd-wazero-cache
	# shellcheck disable=SC2086
	GOOS=wasip1 GOARCH=wasm go test -count=1 \
		-exec "wazero run -mount /:/ -env-inherit -cachedir /tmp/phpsessd-wazero-cache" $pkgs
}

js_test() {
	local pkgs
	pkgs=$(wasm_pkgs)
	[[ -n $pkgs ]] || return 0
	# shellcheck disable=SC2086
	PATH="$(go env GOROOT)/lib/wasm:$PATH" GOOS=js GOARCH=wasm go test -count=1 $pkgs
}

phpunit_test() {
	[[ -f php-client/phpunit.xml.dist ]] || { echo "no php-client/phpunit.xml.dist"; return 1; }
	go build -o /tmp/phpsessd-test-bin/phpsessd ./cmd/phpsessd || return 1
	PHPSESSD_REQUIRE_DAEMON=1 PHPSESSD_BIN=/tmp/phpsessd-test-bin/phpsessd phpunit -c php-client/phpunit.xml.dist
}

wasm_php_test() {
	# PHP.wasm matrix: tests/wasm holds its own pinned package.json.
	[[ -f tests/wasm/run.sh ]] || return 0
	bash tests/wasm/run.sh
}

step "gofmt" gofmt_check
step "go vet" go vet ./...
step "go test -race" go_test
step "go test -race (event loops)" go_test_loops
step "fuzz" fuzz_all
step "wasip1" wasip1_test
step "js/wasm" js_test
step "phpunit" phpunit_test
step "php.wasm" wasm_php_test

echo
if ((failed)); then
	echo "failed steps: ${failures[*]}"
fi
echo "test.sh: $passed passed, $failed failed"
((failed == 0))
