//go:build darwin || freebsd || netbsd || openbsd || dragonfly

package files

import (
	"errors"
	"os"
)

// Extended attribute interfaces differ between these systems; the store
// keeps its records in sidecar files there.
var errNoXattr = errors.New("extended attributes not used on this system")

func xattrUnsupported(err error) bool { return errors.Is(err, errNoXattr) }
func xattrAbsent(error) bool          { return false }
func xattrTooBig(error) bool          { return false }

func fgetxattr(*os.File, []byte) (int, error) { return 0, errNoXattr }
func fsetxattr(*os.File, []byte) error        { return errNoXattr }
func fremovexattr(*os.File) error             { return errNoXattr }
func lgetxattr(string, []byte) (int, error)   { return 0, errNoXattr }
