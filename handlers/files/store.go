//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package files

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/phpsessd/phpsessd/handlers"
)

func init() {
	handlers.Register("files", func(_ context.Context, u *url.URL) (handlers.Store, error) {
		o, err := ParseURL(u)
		if err != nil {
			return nil, err
		}
		return New(o)
	})
}

const (
	filePrefix = "sess_"     // PHP's FILE_PREFIX
	metaDir    = ".phpsessd" // sidecars; PHP's gc only looks at sess_*
	tmpPrefix  = ".phpsessd-tmp-"
	// staleTmp is how old a leftover temp file (a crash between create and
	// rename) must be before Sweep removes it.
	staleTmp = time.Hour
	// maxRetries bounds the reopen loop when another process keeps
	// replacing the file between our open and our lock.
	maxRetries = 100
)

// ErrClosed is returned by every call after Close.
var ErrClosed = fmt.Errorf("files store: closed: %w", handlers.ErrUnavailable)

// Store is the files store. Use New or handlers.Open("files:///dir").
type Store struct {
	dir     string
	depth   int
	mode    os.FileMode
	dirMode os.FileMode
	ttl     time.Duration
	fsync   bool
	meta    string

	locks  idLocks
	closed atomic.Bool
	// noXattr is set once the filesystem refused the metadata attribute;
	// records then go to sidecar files.
	noXattr atomic.Bool
}

// tmpSeq numbers temp files; with the pid in the name it makes every name
// this process picks unique, so creating one is a single open(O_EXCL)
// instead of a loop over random names. It is shared by all stores of the
// process because two of them may use one directory.
var (
	tmpSeq atomic.Uint64
	tmpPID = strconv.Itoa(os.Getpid())
)

// New opens a files store, creating its directory if needed.
func New(o Options) (*Store, error) {
	if o.Mode == 0 {
		o.Mode = DefaultMode
	}
	if o.TTL <= 0 {
		o.TTL = DefaultTTL
	}
	if o.Depth < 0 || o.Depth > MaxDepth {
		return nil, fmt.Errorf("files store: depth %d: want 0..%d", o.Depth, MaxDepth)
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, fmt.Errorf("files store: dir %q: %w", o.Dir, err)
	}
	s := &Store{
		dir:     dir,
		depth:   o.Depth,
		mode:    o.Mode.Perm(),
		dirMode: o.Mode.Perm() | (o.Mode.Perm()&0o444)>>2,
		ttl:     o.TTL,
		fsync:   o.Fsync,
		meta:    filepath.Join(dir, metaDir),
	}
	if err := os.MkdirAll(s.meta, 0o700); err != nil {
		return nil, fmt.Errorf("files store: %w: %w", handlers.ErrUnavailable, err)
	}
	return s, nil
}

// Dir returns the session directory.
func (s *Store) Dir() string { return s.dir }

func validID(id string) error {
	if id == "" || len(id) > MaxIDLength {
		return fmt.Errorf("files store: invalid session id of length %d", len(id))
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == ',' || c == '-') {
			return fmt.Errorf("files store: invalid character %q in session id", c)
		}
	}
	return nil
}

func (s *Store) begin(ctx context.Context, op, id string) error {
	if s.closed.Load() {
		return ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("files store: %s %s: %w", op, id, err)
	}
	if err := validID(id); err != nil {
		return err
	}
	if len(id) < s.depth {
		return fmt.Errorf("files store: session id %q shorter than depth %d", id, s.depth)
	}
	return nil
}

// sessPath is PHP's ps_files_path_create: depth one-character directories
// from the id's first characters, then sess_<id>.
func (s *Store) sessPath(id string) string {
	var b strings.Builder
	b.Grow(len(s.dir) + 2*s.depth + len(filePrefix) + len(id) + 1)
	b.WriteString(s.dir)
	for i := 0; i < s.depth; i++ {
		b.WriteByte(filepath.Separator)
		b.WriteByte(id[i])
	}
	b.WriteByte(filepath.Separator)
	b.WriteString(filePrefix)
	b.WriteString(id)
	return b.String()
}

func (s *Store) sidePath(id string) string { return filepath.Join(s.meta, id) }

// FNV-1a, 64 bit, written out so that hashing a buffer or a stream costs
// no allocation.
const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

func fnvAdd(h uint64, b []byte) uint64 {
	for _, c := range b {
		h ^= uint64(c)
		h *= fnvPrime
	}
	return h
}

// fnvVersion maps a hash onto a version; 0 is reserved for "absent".
func fnvVersion(h uint64) uint64 {
	if h == 0 {
		return 1
	}
	return h
}

// version is the content hash of data.
func version(data []byte) uint64 { return fnvVersion(fnvAdd(fnvOffset, data)) }

// readBufs holds the buffers a compare-and-swap hashes the current file
// with; that data is never handed out, so it need not be kept.
var readBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// hashFile is version() of f's content from the current offset on.
func hashFile(f *os.File) (uint64, error) {
	bp := readBufs.Get().(*[]byte)
	defer readBufs.Put(bp)
	h := uint64(fnvOffset)
	for {
		n, err := f.Read(*bp)
		h = fnvAdd(h, (*bp)[:n])
		if err == io.EOF {
			return fnvVersion(h), nil
		}
		if err != nil {
			return 0, err
		}
	}
}

// sidecar is what PHP's file format has no room for. It describes the data
// file it was written with (mtime, size, hash): when PHP later touches or
// rewrites the file, the mismatch tells which parts still apply. It is
// stored as an extended attribute of the session file (set on the temp
// file before the rename, so data and record are published together), or,
// where the filesystem has no user attributes or the record is too large
// for them, in the sidecar file .phpsessd/<id>. A session needs no record
// at all when its meta is empty and it expires: expiry is then mtime + TTL.
type sidecar struct {
	Expires int64  `msgpack:"e"` // unix ns; 0 never
	Mtime   int64  `msgpack:"m"` // data file mtime (ns) as written
	Size    int64  `msgpack:"s"`
	Hash    uint64 `msgpack:"h"`
	Meta    []byte `msgpack:"x,omitempty"`
}

// metaSource says where a session's record was found, so that a write
// knows which stale copy it has to clear.
type metaSource uint8

const (
	metaNone metaSource = iota
	metaXattr
	metaFile
)

func decodeSidecar(b []byte) *sidecar {
	var sc sidecar
	if msgpack.Unmarshal(b, &sc) != nil {
		return nil // unreadable: behave as for a session PHP wrote
	}
	return &sc
}

// needsRecord reports whether a session must carry a record: without one,
// meta reads as empty and expiry as mtime + TTL.
func needsRecord(meta []byte, expires time.Time) bool {
	return len(meta) > 0 || expires.IsZero()
}

// readSidecar reads .phpsessd/<id>; exists is true when the file is there,
// readable or not.
func (s *Store) readSidecar(id string) (sc *sidecar, exists bool) {
	b, err := os.ReadFile(s.sidePath(id))
	if err != nil {
		return nil, false
	}
	return decodeSidecar(b), true
}

// getRecord reads the attribute through get, growing the buffer when the
// record is larger than the usual few dozen bytes.
func getRecord(get func([]byte) (int, error)) ([]byte, error) {
	buf := make([]byte, 256)
	n, err := get(buf)
	if xattrTooBig(err) {
		if n, err = get(nil); err == nil {
			buf = make([]byte, n)
			n, err = get(buf)
		}
	}
	if err != nil {
		return nil, err
	}
	return buf[:n], nil
}

// readMeta returns the record of the session file f (whose flock the caller
// holds): its attribute, else its sidecar file.
func (s *Store) readMeta(f *os.File, id string) (*sidecar, metaSource) {
	if !s.noXattr.Load() {
		if b, err := getRecord(func(buf []byte) (int, error) { return fgetxattr(f, buf) }); err == nil {
			return decodeSidecar(b), metaXattr
		}
	}
	if sc, ok := s.readSidecar(id); ok {
		return sc, metaFile
	}
	return nil, metaNone
}

// readMetaPath is readMeta for Scan and Sweep, which hold no descriptor.
func (s *Store) readMetaPath(id string) *sidecar {
	if !s.noXattr.Load() {
		path := s.sessPath(id)
		if b, err := getRecord(func(buf []byte) (int, error) { return lgetxattr(path, buf) }); err == nil {
			return decodeSidecar(b)
		}
	}
	sc, _ := s.readSidecar(id)
	return sc
}

// expiry applies the rule shared by Load, Scan and Sweep: the sidecar's
// expiry holds while the data file is the one it was written with;
// otherwise (PHP wrote or touched it, or there is no sidecar) the session
// lives TTL past its mtime, as PHP's gc sees it. 0 means never.
func (s *Store) expiry(fi fs.FileInfo, sc *sidecar) int64 {
	mt := fi.ModTime().UnixNano()
	if sc != nil && sc.Mtime == mt && sc.Size == fi.Size() {
		return sc.Expires
	}
	return mt + int64(s.ttl)
}

func expired(exp, now int64) bool { return exp != 0 && now > exp }

func expiresTime(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

func unavailable(op, id string, err error) error {
	return fmt.Errorf("files store: %s %s: %w: %w", op, id, handlers.ErrUnavailable, err)
}

// openLocked opens sess_<id> and takes flock(how) on it, making sure the
// locked inode is still the one at the path (another process may have
// replaced it while we waited). A missing file returns fs.ErrNotExist.
func (s *Store) openLocked(ctx context.Context, id string, how int) (*os.File, fs.FileInfo, error) {
	path := s.sessPath(id)
	flag := os.O_RDONLY
	if how == syscall.LOCK_EX {
		flag = os.O_RDWR // as PHP opens it; flock itself does not care
	}
	for i := 0; i < maxRetries; i++ {
		f, err := os.OpenFile(path, flag|syscall.O_NOFOLLOW, 0)
		if err != nil {
			return nil, nil, err
		}
		if err := lockFile(ctx, f, how); err != nil {
			f.Close()
			return nil, nil, err
		}
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, nil, err
		}
		if !fi.Mode().IsRegular() {
			f.Close()
			return nil, nil, fmt.Errorf("%s is not a regular file", path)
		}
		cur, err := os.Lstat(path)
		if err == nil && os.SameFile(fi, cur) {
			return f, fi, nil
		}
		f.Close()
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, nil, err
		}
	}
	return nil, nil, fmt.Errorf("%s keeps being replaced", path)
}

func readAll(f *os.File, size int64) ([]byte, error) {
	buf := bytes.NewBuffer(make([]byte, 0, size+1))
	_, err := buf.ReadFrom(f)
	return buf.Bytes(), err
}

// Load implements handlers.Store. It takes a shared flock so it never sees
// a write PHP is doing in place.
func (s *Store) Load(ctx context.Context, id string) (handlers.Record, error) {
	if err := s.begin(ctx, "load", id); err != nil {
		return handlers.Record{}, err
	}
	// Loads queue on the id lock as well: flock lets a stream of shared
	// lockers starve an exclusive one, so readers of this process must not
	// overlap each other while a Save waits. A read holds it for microseconds.
	unlock, err := s.locks.lock(ctx, id)
	if err != nil {
		return handlers.Record{}, fmt.Errorf("files store: load %s: %w", id, err)
	}
	defer unlock()
	f, fi, err := s.openLocked(ctx, id, syscall.LOCK_SH)
	if errors.Is(err, fs.ErrNotExist) {
		return handlers.Record{}, handlers.ErrNotFound
	}
	if err != nil {
		return handlers.Record{}, s.wrapErr(ctx, "load", id, err)
	}
	defer f.Close()
	data, err := readAll(f, fi.Size())
	if err != nil {
		return handlers.Record{}, unavailable("load", id, err)
	}
	// Read the record while the lock is held: writers replace a sidecar
	// file under the same lock, so both belong to one write.
	sc, _ := s.readMeta(f, id)
	exp := s.expiry(fi, sc)
	if expired(exp, time.Now().UnixNano()) {
		return handlers.Record{}, handlers.ErrNotFound
	}
	rec := handlers.Record{Data: data, Version: version(data), Expires: expiresTime(exp)}
	if sc != nil && sc.Hash == rec.Version && len(sc.Meta) > 0 {
		rec.Meta = sc.Meta
	}
	return rec, nil
}

// wrapErr keeps context errors recognisable and marks everything else as
// the store being unavailable.
func (s *Store) wrapErr(ctx context.Context, op, id string, err error) error {
	if ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		return fmt.Errorf("files store: %s %s: %w", op, id, err)
	}
	return unavailable(op, id, err)
}

// Save implements handlers.Store: under the in-process id lock and flock
// on the current file, it compares the content hash with expect and
// replaces the file by renaming a complete temp file over it.
func (s *Store) Save(ctx context.Context, id string, rec handlers.Record, expect uint64) (uint64, error) {
	if err := s.begin(ctx, "save", id); err != nil {
		return 0, err
	}
	unlock, err := s.locks.lock(ctx, id)
	if err != nil {
		return 0, fmt.Errorf("files store: save %s: %w", id, err)
	}
	defer unlock()
	v := version(rec.Data)
	for i := 0; i < maxRetries; i++ {
		f, fi, err := s.openLocked(ctx, id, syscall.LOCK_EX)
		if errors.Is(err, fs.ErrNotExist) {
			if expect != 0 {
				return 0, handlers.ErrVersionMismatch
			}
			ok, err := s.write(ctx, id, rec, v, true, metaNone)
			if err != nil {
				return 0, s.wrapErr(ctx, "save", id, err)
			}
			if !ok {
				continue // created by someone else meanwhile: compare with it
			}
			return v, nil
		}
		if err != nil {
			return 0, s.wrapErr(ctx, "save", id, err)
		}
		v, err := s.saveLocked(ctx, id, f, fi, rec, v, expect)
		f.Close()
		return v, err
	}
	return 0, unavailable("save", id, errors.New("session file keeps appearing and vanishing"))
}

// saveLocked is the compare-and-swap on an existing file whose flock we hold.
func (s *Store) saveLocked(ctx context.Context, id string, f *os.File, fi fs.FileInfo, rec handlers.Record, v, expect uint64) (uint64, error) {
	cur, err := hashFile(f)
	if err != nil {
		return 0, unavailable("save", id, err)
	}
	sc, src := s.readMeta(f, id)
	live := !expired(s.expiry(fi, sc), time.Now().UnixNano())
	switch {
	case live && cur != expect, !live && expect != 0:
		return 0, handlers.ErrVersionMismatch
	}
	if _, err := s.write(ctx, id, rec, v, false, src); err != nil {
		return 0, s.wrapErr(ctx, "save", id, err)
	}
	return v, nil
}

// mtimeFor maps an expiry onto the file's mtime so that PHP's gc (mtime +
// gc_maxlifetime, with gc_maxlifetime = TTL) expires the file when
// phpsessd does.
func (s *Store) mtimeFor(expires time.Time, now time.Time) time.Time {
	if expires.IsZero() {
		return now
	}
	return expires.Add(-s.ttl)
}

// write puts rec in place as a complete new file: written to a temp file
// in the same directory, then renamed over sess_<id>, or, for a session
// that does not exist yet (create), hard-linked to the name so that a file
// another process created meanwhile is never overwritten (ok false). The
// record, when the session needs one, is set on the temp file as an
// attribute, so it is published by the same rename; a sidecar file is only
// written where attributes are unavailable. The new inode is flocked before
// it becomes visible, so a reader opening it waits until any sidecar file
// matches it too. had is where the replaced file's record was found.
func (s *Store) write(ctx context.Context, id string, rec handlers.Record, v uint64, create bool, had metaSource) (ok bool, err error) {
	path := s.sessPath(id)
	dir := filepath.Dir(path)
	tmp, tmpName, err := s.createTemp(dir)
	if errors.Is(err, fs.ErrNotExist) && s.depth > 0 {
		// PHP wants depth directories made by hand (mod_files.sh); we
		// make them on first use, with the search bits PHP needs.
		if err := os.MkdirAll(dir, s.dirMode); err != nil {
			return false, err
		}
		tmp, tmpName, err = s.createTemp(dir)
	}
	if err != nil {
		return false, err
	}
	published := false
	defer func() {
		tmp.Close() // releases the flock on the new inode
		if !published || create {
			os.Remove(tmpName)
		}
	}()
	if locked, err := tryLockFile(tmp, syscall.LOCK_EX); err != nil {
		return false, fmt.Errorf("lock new file: %w", err)
	} else if !locked {
		return false, fmt.Errorf("lock new file %s: held by someone else", tmpName)
	}
	// The umask may have narrowed the mode open applied.
	if err := tmp.Chmod(s.mode); err != nil {
		return false, err
	}
	if _, err := tmp.Write(rec.Data); err != nil {
		return false, err
	}
	now := time.Now()
	if err := os.Chtimes(tmpName, now, s.mtimeFor(rec.Expires, now)); err != nil {
		return false, err
	}
	var sideFile []byte // record that goes to a sidecar file after publishing
	if needsRecord(rec.Meta, rec.Expires) {
		// The record names the mtime as the filesystem stored it, which may
		// be coarser than what was asked for.
		fi, err := tmp.Stat()
		if err != nil {
			return false, err
		}
		b, err := msgpack.Marshal(&sidecar{
			Expires: expiresNano(rec.Expires),
			Mtime:   fi.ModTime().UnixNano(),
			Size:    fi.Size(),
			Hash:    v,
			Meta:    rec.Meta,
		})
		if err != nil {
			return false, fmt.Errorf("encode record: %w", err)
		}
		if sideFile, err = s.setRecord(tmp, b); err != nil {
			return false, err
		}
	}
	if s.fsync {
		// After the attribute and the mtime, so the flush covers them too.
		if err := tmp.Sync(); err != nil {
			return false, err
		}
	}
	if err := ctx.Err(); err != nil {
		return false, err // last point where giving up leaves the session untouched
	}
	if create {
		err = os.Link(tmpName, path)
		if errors.Is(err, fs.ErrExist) {
			return false, nil
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			// No hard links on this filesystem: rename, exclusive only
			// against this process (the id lock), not other processes.
			err = os.Rename(tmpName, path)
		}
	} else {
		err = os.Rename(tmpName, path)
	}
	if err != nil {
		return false, err
	}
	published = true
	if s.fsync {
		syncDir(dir)
	}
	switch {
	case sideFile != nil:
		// A failure here is reported although the data is already in
		// place: saying "saved" would silently drop meta, and a caller
		// that retries simply finds its own bytes on the next read.
		return true, s.writeSidecar(id, sideFile)
	case had == metaFile || create:
		// A sidecar file of the replaced file (or, for a new session, one
		// left behind when PHP's gc removed the previous one) would
		// otherwise be read as this file's record.
		s.removeSidecar(id)
	}
	return true, nil
}

// setRecord stores the encoded record b as f's attribute. When the
// filesystem cannot hold it, it returns b for a sidecar file instead.
func (s *Store) setRecord(f *os.File, b []byte) (sideFile []byte, err error) {
	if s.noXattr.Load() {
		return b, nil
	}
	err = fsetxattr(f, b)
	switch {
	case err == nil:
		return nil, nil
	case xattrUnsupported(err):
		s.noXattr.Store(true)
		return b, nil
	case xattrTooBig(err):
		return b, nil
	default:
		return nil, fmt.Errorf("set record attribute: %w", err)
	}
}

// createTemp creates a new, empty temp file in dir.
func (s *Store) createTemp(dir string) (*os.File, string, error) {
	for i := 0; ; i++ {
		name := dir + string(filepath.Separator) + tmpPrefix + tmpPID + "-" + strconv.FormatUint(tmpSeq.Add(1), 10)
		f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, s.mode)
		// An earlier process with our pid may have left this name behind
		// (it crashed between create and rename): take the next number.
		if errors.Is(err, fs.ErrExist) && i < maxRetries {
			continue
		}
		return f, name, err
	}
}

func expiresNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	if n := t.UnixNano(); n != 0 {
		return n
	}
	return 1
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}

// writeSidecar replaces .phpsessd/<id> with the encoded record b.
func (s *Store) writeSidecar(id string, b []byte) error {
	tmp, name, err := s.createTemp(s.meta)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("sidecar: %w", err)
		}
		// Someone removed .phpsessd (a cleanup script): recreate it.
		if err := os.MkdirAll(s.meta, 0o700); err != nil {
			return fmt.Errorf("sidecar: %w", err)
		}
		if tmp, name, err = s.createTemp(s.meta); err != nil {
			return fmt.Errorf("sidecar: %w", err)
		}
	}
	_, err = tmp.Write(b)
	if err == nil && s.fsync {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(name, s.sidePath(id))
	}
	if err != nil {
		os.Remove(name)
		return fmt.Errorf("sidecar: %w", err)
	}
	if s.fsync {
		syncDir(s.meta)
	}
	return nil
}

// Touch implements handlers.Store: it moves the file's mtime (for PHP's
// gc) and the sidecar's expiry without rewriting the data.
func (s *Store) Touch(ctx context.Context, id string, expires time.Time) error {
	if err := s.begin(ctx, "touch", id); err != nil {
		return err
	}
	unlock, err := s.locks.lock(ctx, id)
	if err != nil {
		return fmt.Errorf("files store: touch %s: %w", id, err)
	}
	defer unlock()
	f, fi, err := s.openLocked(ctx, id, syscall.LOCK_EX)
	if errors.Is(err, fs.ErrNotExist) {
		return handlers.ErrNotFound
	}
	if err != nil {
		return s.wrapErr(ctx, "touch", id, err)
	}
	defer f.Close()
	sc, src := s.readMeta(f, id)
	now := time.Now()
	if expired(s.expiry(fi, sc), now.UnixNano()) {
		return handlers.ErrNotFound
	}
	var meta []byte
	var v uint64
	if sc != nil {
		// Meta only applies to the bytes it was written with; without a
		// record there is no meta to keep and no need to hash.
		if v, err = hashFile(f); err != nil {
			return unavailable("touch", id, err)
		}
		if sc.Hash == v {
			meta = sc.Meta
		}
	}
	path := s.sessPath(id)
	if err := os.Chtimes(path, now, s.mtimeFor(expires, now)); err != nil {
		return unavailable("touch", id, err)
	}
	if err := s.touchRecord(f, id, src, meta, expires, v); err != nil {
		return unavailable("touch", id, err)
	}
	return nil
}

// touchRecord brings the record of the file f, found at src, in line with
// a new mtime: rewritten when the session still needs one, else removed so
// that a stale "never" or meta cannot apply.
func (s *Store) touchRecord(f *os.File, id string, src metaSource, meta []byte, expires time.Time, v uint64) error {
	if !needsRecord(meta, expires) {
		switch src {
		case metaXattr:
			if err := fremovexattr(f); err != nil && !xattrAbsent(err) {
				return fmt.Errorf("remove record attribute: %w", err)
			}
		case metaFile:
			s.removeSidecar(id)
		}
		return nil
	}
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	b, err := msgpack.Marshal(&sidecar{
		Expires: expiresNano(expires),
		Mtime:   fi.ModTime().UnixNano(),
		Size:    fi.Size(),
		Hash:    v,
		Meta:    meta,
	})
	if err != nil {
		return fmt.Errorf("encode record: %w", err)
	}
	sideFile, err := s.setRecord(f, b)
	if err != nil {
		return err
	}
	if sideFile != nil {
		if src == metaXattr {
			// The attribute was there but the new record does not fit:
			// the sidecar file takes over, so the old one must go.
			if err := fremovexattr(f); err != nil && !xattrAbsent(err) {
				return fmt.Errorf("remove record attribute: %w", err)
			}
		}
		return s.writeSidecar(id, sideFile)
	}
	if src == metaFile {
		s.removeSidecar(id)
	}
	return nil
}

// Delete implements handlers.Store.
func (s *Store) Delete(ctx context.Context, id string) (bool, error) {
	if err := s.begin(ctx, "delete", id); err != nil {
		return false, err
	}
	unlock, err := s.locks.lock(ctx, id)
	if err != nil {
		return false, fmt.Errorf("files store: delete %s: %w", id, err)
	}
	defer unlock()
	f, fi, err := s.openLocked(ctx, id, syscall.LOCK_EX)
	if errors.Is(err, fs.ErrNotExist) {
		s.removeSidecar(id)
		return false, nil
	}
	if err != nil {
		return false, s.wrapErr(ctx, "delete", id, err)
	}
	defer f.Close()
	sc, src := s.readMeta(f, id)
	live := !expired(s.expiry(fi, sc), time.Now().UnixNano())
	if err := os.Remove(s.sessPath(id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, unavailable("delete", id, err)
	}
	// An attribute goes with the inode; only a sidecar file is left over.
	if src == metaFile {
		s.removeSidecar(id)
	}
	return live, nil
}

func (s *Store) removeSidecar(id string) {
	_ = os.Remove(s.sidePath(id))
}

// walk calls fn for every sess_<id> file at the place PHP would look for
// it, and removes leftover temp files older than staleTmp when sweeping.
func (s *Store) walk(ctx context.Context, sweepTmp bool, now time.Time, fn func(id string, fi fs.FileInfo) error) error {
	var rec func(dir string, level int) error
	rec = func(dir string, level int) error {
		entries, err := os.ReadDir(dir)
		if err != nil {
			if level > 0 && errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		for _, e := range entries {
			if err := ctx.Err(); err != nil {
				return err
			}
			name := e.Name()
			if level < s.depth {
				if e.IsDir() && len(name) == 1 && validID(name) == nil {
					if err := rec(filepath.Join(dir, name), level+1); err != nil {
						return err
					}
				}
				continue
			}
			if sweepTmp && strings.HasPrefix(name, tmpPrefix) {
				if fi, err := e.Info(); err == nil && now.Sub(fi.ModTime()) > staleTmp {
					os.Remove(filepath.Join(dir, name))
				}
				continue
			}
			id, ok := strings.CutPrefix(name, filePrefix)
			if !ok || !e.Type().IsRegular() || validID(id) != nil || len(id) < s.depth || s.sessPath(id) != filepath.Join(dir, name) {
				continue
			}
			fi, err := e.Info()
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return err
			}
			if err := fn(id, fi); err != nil {
				return err
			}
		}
		return nil
	}
	return rec(s.dir, 0)
}

// errStop carries fn's error out of walk unwrapped.
type errStop struct{ err error }

func (e errStop) Error() string { return e.err.Error() }

// Scan implements handlers.Store. It reads directories and sidecars but no
// session data and takes no locks.
func (s *Store) Scan(ctx context.Context, fn func(id string, expires time.Time) error) error {
	if s.closed.Load() {
		return ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("files store: scan: %w", err)
	}
	now := time.Now().UnixNano()
	err := s.walk(ctx, false, time.Time{}, func(id string, fi fs.FileInfo) error {
		exp := s.expiry(fi, s.readMetaPath(id))
		if expired(exp, now) {
			return nil
		}
		if err := fn(id, expiresTime(exp)); err != nil {
			return errStop{err}
		}
		return nil
	})
	var stop errStop
	if errors.As(err, &stop) {
		return stop.err
	}
	if err != nil {
		return s.wrapErr(ctx, "scan", s.dir, err)
	}
	return nil
}

var _ handlers.Sizer = (*Store)(nil)

// Size implements handlers.Sizer with the same directory walk as Scan
// (the sizes come from the directory entries' stat, read anyway for the
// expiry), so it costs what a Scan costs and replaces it for metrics.
// Expired sessions are left out, as Scan leaves them out. Bytes are the
// sess_ files' sizes, i.e. the session data PHP would read: the engine's
// records (extended attributes or .phpsessd/ sidecars), filesystem block
// rounding and directories are not counted.
func (s *Store) Size(ctx context.Context) (sessions, bytes int64, err error) {
	if s.closed.Load() {
		return 0, 0, ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return 0, 0, fmt.Errorf("files store: size: %w", err)
	}
	now := time.Now().UnixNano()
	err = s.walk(ctx, false, time.Time{}, func(id string, fi fs.FileInfo) error {
		if expired(s.expiry(fi, s.readMetaPath(id)), now) {
			return nil
		}
		sessions++
		bytes += fi.Size()
		return nil
	})
	if err != nil {
		return 0, 0, s.wrapErr(ctx, "size", s.dir, err)
	}
	return sessions, bytes, nil
}

// Sweep implements handlers.Store. A session whose file is flocked (a PHP
// request or one of our writes is using it) is left for the next sweep.
func (s *Store) Sweep(ctx context.Context, now time.Time) (int, error) {
	if s.closed.Load() {
		return 0, ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("files store: sweep: %w", err)
	}
	nowN := now.UnixNano()
	removed := 0
	err := s.walk(ctx, true, time.Now(), func(id string, fi fs.FileInfo) error {
		if !expired(s.expiry(fi, s.readMetaPath(id)), nowN) {
			return nil
		}
		ok, err := s.sweepOne(id, nowN)
		if ok {
			removed++
		}
		return err
	})
	if err == nil {
		err = s.sweepSidecars(ctx, time.Now())
	}
	if err != nil {
		return removed, s.wrapErr(ctx, "sweep", s.dir, err)
	}
	return removed, nil
}

func (s *Store) sweepOne(id string, now int64) (bool, error) {
	unlock, ok := s.locks.tryLock(id)
	if !ok {
		return false, nil
	}
	defer unlock()
	f, err := os.OpenFile(s.sessPath(id), os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return false, nil // gone meanwhile, or not ours to judge
	}
	defer f.Close()
	if ok, err := tryLockFile(f, syscall.LOCK_EX); err != nil || !ok {
		return false, nil
	}
	fi, err := f.Stat()
	if err != nil {
		return false, err
	}
	cur, err := os.Lstat(s.sessPath(id))
	if err != nil || !os.SameFile(fi, cur) {
		return false, nil // replaced meanwhile: alive
	}
	sc, _ := s.readMeta(f, id)
	if !expired(s.expiry(fi, sc), now) {
		return false, nil
	}
	if err := os.Remove(s.sessPath(id)); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil
		}
		return false, err
	}
	s.removeSidecar(id)
	return true, nil
}

// sweepSidecars removes sidecars whose session file is gone (PHP's gc or
// session_destroy removed it) and stale temp files in the sidecar dir.
func (s *Store) sweepSidecars(ctx context.Context, now time.Time) error {
	entries, err := os.ReadDir(s.meta)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		name := e.Name()
		if strings.HasPrefix(name, tmpPrefix) {
			if fi, err := e.Info(); err == nil && now.Sub(fi.ModTime()) > staleTmp {
				os.Remove(filepath.Join(s.meta, name))
			}
			continue
		}
		if validID(name) != nil || len(name) < s.depth {
			continue
		}
		if _, err := os.Lstat(s.sessPath(name)); !errors.Is(err, fs.ErrNotExist) {
			continue
		}
		unlock, ok := s.locks.tryLock(name)
		if !ok {
			continue
		}
		// Re-check under the id lock: a Save of this process may have
		// created the session since.
		if _, err := os.Lstat(s.sessPath(name)); errors.Is(err, fs.ErrNotExist) {
			s.removeSidecar(name)
		}
		unlock()
	}
	return nil
}

// Close implements handlers.Store; writes are complete when they return,
// so there is nothing to flush.
func (s *Store) Close() error {
	s.closed.Store(true)
	return nil
}

// Fingerprint returns a cheap value (one stat, no read, no lock) that
// changes whenever sess_<id> is replaced, rewritten or touched: our writes
// always create a new inode and set mtime, PHP's in-place writes and
// lazy-write touches move mtime. The cache decorator uses it to notice
// changes made by other processes. ErrNotFound if the file is absent.
func (s *Store) Fingerprint(ctx context.Context, id string) (uint64, error) {
	if err := s.begin(ctx, "stat", id); err != nil {
		return 0, err
	}
	fi, err := os.Lstat(s.sessPath(id))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, handlers.ErrNotFound
	}
	if err != nil {
		return 0, unavailable("stat", id, err)
	}
	var b [32]byte
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		binary.LittleEndian.PutUint64(b[0:], uint64(st.Ino))
		binary.LittleEndian.PutUint64(b[8:], uint64(st.Dev))
	}
	binary.LittleEndian.PutUint64(b[16:], uint64(fi.Size()))
	binary.LittleEndian.PutUint64(b[24:], uint64(fi.ModTime().UnixNano()))
	return version(b[:]), nil
}
