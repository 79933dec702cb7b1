//go:build !unix

package phpserialize

func processCPU() int64 { return 0 }
