//go:build linux

package files

import (
	"errors"
	"os"
	"syscall"
	"unsafe"
)

// xattrName holds the metadata record on the session file itself, so it
// travels with the inode through rename: one file replacement publishes
// data and metadata together. The user namespace is the only one an
// unprivileged daemon may write.
var xattrName = []byte("user.phpsessd\x00")

// xattrUnsupported reports the errors after which the filesystem (or this
// file) cannot hold the attribute and the sidecar file takes over.
func xattrUnsupported(err error) bool {
	return errors.Is(err, syscall.ENOTSUP) || errors.Is(err, syscall.EOPNOTSUPP) ||
		errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES)
}

// xattrAbsent reports "this file carries no record".
func xattrAbsent(err error) bool { return errors.Is(err, syscall.ENODATA) }

// xattrTooBig reports a value over the filesystem's attribute space.
func xattrTooBig(err error) bool {
	return errors.Is(err, syscall.E2BIG) || errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.ERANGE)
}

func bufPtr(b []byte) uintptr {
	if len(b) == 0 {
		return 0
	}
	return uintptr(unsafe.Pointer(&b[0]))
}

// fdCall runs fn on f's descriptor while f cannot be closed under it.
func fdCall(f *os.File, fn func(fd uintptr) syscall.Errno) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var errno syscall.Errno
	if err := rc.Control(func(fd uintptr) {
		for {
			if errno = fn(fd); errno != syscall.EINTR {
				return
			}
		}
	}); err != nil {
		return err
	}
	if errno != 0 {
		return errno
	}
	return nil
}

// fgetxattr reads the record of an open file into buf; ERANGE when buf is
// too small.
func fgetxattr(f *os.File, buf []byte) (int, error) {
	var n uintptr
	err := fdCall(f, func(fd uintptr) syscall.Errno {
		var e syscall.Errno
		n, _, e = syscall.Syscall6(syscall.SYS_FGETXATTR, fd, uintptr(unsafe.Pointer(&xattrName[0])), bufPtr(buf), uintptr(len(buf)), 0, 0)
		return e
	})
	return int(n), err
}

func fsetxattr(f *os.File, val []byte) error {
	return fdCall(f, func(fd uintptr) syscall.Errno {
		_, _, e := syscall.Syscall6(syscall.SYS_FSETXATTR, fd, uintptr(unsafe.Pointer(&xattrName[0])), bufPtr(val), uintptr(len(val)), 0, 0)
		return e
	})
}

func fremovexattr(f *os.File) error {
	return fdCall(f, func(fd uintptr) syscall.Errno {
		_, _, e := syscall.Syscall(syscall.SYS_FREMOVEXATTR, fd, uintptr(unsafe.Pointer(&xattrName[0])), 0)
		return e
	})
}

// lgetxattr reads the record by path without following a symlink; Scan
// and Sweep use it where no descriptor is open.
func lgetxattr(path string, buf []byte) (int, error) {
	p, err := syscall.BytePtrFromString(path)
	if err != nil {
		return 0, err
	}
	for {
		n, _, e := syscall.Syscall6(syscall.SYS_LGETXATTR, uintptr(unsafe.Pointer(p)), uintptr(unsafe.Pointer(&xattrName[0])), bufPtr(buf), uintptr(len(buf)), 0, 0)
		if e == syscall.EINTR {
			continue
		}
		if e != 0 {
			return 0, e
		}
		return int(n), nil
	}
}
