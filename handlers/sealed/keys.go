package sealed

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"strings"
)

// EnvKeys is the environment variable ParseKeys reads with KeysFromEnv:
// the same "id:base64key" entries as a key file, separated by commas,
// spaces or newlines.
const EnvKeys = "PHPSESSD_KEYS"

// ParseKeys parses key entries "id:base64key", one per line (or separated
// by commas or spaces). Blank lines and lines starting with '#' are
// ignored. The first entry is the current key. Secrets are 32 bytes in
// standard or URL-safe base64, padded or not (`openssl rand -base64 32`).
// Errors name the entry but never echo the secret.
func ParseKeys(text []byte) ([]Key, error) {
	var keys []Key
	sc := bufio.NewScanner(bytes.NewReader(text))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		for _, f := range strings.FieldsFunc(l, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
			k, err := parseKey(f)
			if err != nil {
				return nil, fmt.Errorf("keys line %d: %w", line, err)
			}
			for _, prev := range keys {
				if prev.ID == k.ID {
					return nil, fmt.Errorf("keys line %d: key id %q listed twice", line, k.ID)
				}
			}
			keys = append(keys, k)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("keys: no key entries")
	}
	return keys, nil
}

func parseKey(entry string) (Key, error) {
	id, b64, ok := strings.Cut(entry, ":")
	if !ok {
		return Key{}, fmt.Errorf("entry %.8q…: want id:base64key", entry)
	}
	if err := checkKeyID(id); err != nil {
		return Key{}, err
	}
	var raw []byte
	var err error
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if raw, err = enc.DecodeString(b64); err == nil {
			break
		}
	}
	if err != nil {
		return Key{}, fmt.Errorf("key %q: secret is not base64", id)
	}
	if len(raw) != 32 {
		return Key{}, fmt.Errorf("key %q: secret is %d bytes, want 32 (AES-256)", id, len(raw))
	}
	k := Key{ID: id}
	copy(k.Secret[:], raw)
	return k, nil
}

// LoadKeyFile reads a key file. It refuses files that other users can read
// or write: the keys are the only thing protecting sealed sessions.
func LoadKeyFile(path string) ([]Key, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("key file %s: not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o007 != 0 {
		return nil, fmt.Errorf("key file %s: mode %04o gives other users access; chmod 0600 or 0640", path, perm)
	}
	text, err := readLimited(f, 1<<20)
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	keys, err := ParseKeys(text)
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	return keys, nil
}

// KeysFromEnv parses $PHPSESSD_KEYS through getenv; (nil, nil) when unset.
func KeysFromEnv(getenv func(string) string) ([]Key, error) {
	v := getenv(EnvKeys)
	if strings.TrimSpace(v) == "" {
		return nil, nil
	}
	keys, err := ParseKeys([]byte(v))
	if err != nil {
		return nil, fmt.Errorf("$%s: %w", EnvKeys, err)
	}
	return keys, nil
}

func readLimited(f *os.File, max int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("larger than %d bytes", max)
	}
	return b, nil
}
