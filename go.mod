module github.com/phpsessd/phpsessd

go 1.22

require (
	github.com/hashicorp/golang-lru/v2 v2.0.7 // indirect
	github.com/vmihailenco/msgpack/v5 v5.4.1 // indirect
	github.com/vmihailenco/tagparser/v2 v2.0.0 // indirect
	github.com/yookoala/gofast v0.8.0 // indirect
	golang.org/x/tools v0.0.0-20200908211811-12e1bf57a112 // indirect
)
