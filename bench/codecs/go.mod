module github.com/phpsessd/phpsessd/bench/codecs

go 1.22.12

require (
	github.com/elliotchance/phpserialize v1.4.0
	github.com/leeqvip/gophp v1.0.0
	github.com/phpsessd/phpsessd v0.0.0
	github.com/trim21/go-phpserialize v0.1.0
	github.com/yvasiyarov/php_session_decoder v0.0.0-20180803065642-a065a3b0b7d1
)

require go4.org/unsafe/assume-no-moving-gc v0.0.0-20231121144256-b99613f794b6 // indirect

replace github.com/phpsessd/phpsessd => ../..
