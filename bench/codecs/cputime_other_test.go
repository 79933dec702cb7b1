//go:build !unix

package codecs

func processCPU() int64 { return 0 }
