// Package codecs benchmarks phpsessd's phpserialize package against the Go
// PHP-serialize libraries available from the module proxy. It is a module
// of its own so the main module never depends on those libraries.
//
//	cd bench/codecs && go test -run Fidelity -v . && go test -bench . -benchmem .
package codecs
