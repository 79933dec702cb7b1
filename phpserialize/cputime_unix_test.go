//go:build unix

package phpserialize

import "syscall"

// processCPU returns the CPU time the process has used, in nanoseconds.
// On a shared machine it is a steadier base for throughput than wall time.
func processCPU() int64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
