package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/phpsessd/phpsessd/protocol"
)

// The sessions command is an admin client of a running daemon, in the
// spirit of redis-cli: it talks the wire protocol over the daemon's socket
// and never opens a store itself, so it sees exactly what PHP sees and
// works against any backend.

const sessionsSynopsis = "[--address ADDR] [--token TOKEN] <ls|show|rm|stats> [args]"

// listPage is the page size ls asks LIST for (the daemon's maximum).
const listPage = 1000

func init() {
	register("sessions", command{
		Summary: "list, inspect and remove sessions of a running daemon",
		Run:     sessionsMain,
	})
}

// sessionsOpts are the connection flags every subcommand accepts, before
// or after the subcommand name.
type sessionsOpts struct {
	address string
	token   string
	timeout time.Duration
}

func (o *sessionsOpts) register(fs *flag.FlagSet) {
	fs.StringVar(&o.address, "address", o.address, "daemon address, unix:///path or tcp://host:port (env PHPSESSD_ADDRESS; default: the socket 'phpsessd serve' listens on by default)")
	fs.StringVar(&o.token, "token", o.token, "auth token, needed over TCP (env PHPSESSD_TOKEN)")
	fs.DurationVar(&o.timeout, "timeout", o.timeout, "time limit of the whole command")
}

// defaultSocketAddress is where `phpsessd serve` listens without --listen;
// serve derives it from the same two functions.
func defaultSocketAddress(getenv func(string) string) string {
	euid := os.Geteuid()
	dataDir := getenv("PHPSESSD_DATA_DIR")
	if dataDir == "" {
		dataDir = defaultDataDir(getenv, euid)
	}
	return "unix://" + filepath.Join(defaultRuntimeDir(getenv, euid, dataDir), "phpsessd.sock")
}

func sessionsMain(env *cmdEnv, args []string) int {
	opts := sessionsOpts{
		address: env.Getenv("PHPSESSD_ADDRESS"),
		token:   env.Getenv("PHPSESSD_TOKEN"),
		timeout: 30 * time.Second,
	}
	if opts.address == "" {
		opts.address = defaultSocketAddress(env.Getenv)
	}
	fs := newFlagSet(env, "sessions", sessionsSynopsis)
	opts.register(fs)
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "Usage: phpsessd sessions %s\n\n", sessionsSynopsis)
		fmt.Fprintln(w, "Subcommands:")
		fmt.Fprintln(w, "  ls [--ref REF] [--json] [--limit N]   list session ids (all, or those carrying a reference)")
		fmt.Fprintln(w, "  show ID                                one session as JSON: version, expiry, refs, lock holder, data")
		fmt.Fprintln(w, "  rm ID | rm --ref REF                   destroy one session, or every session carrying a reference")
		fmt.Fprintln(w, "  stats                                  the daemon's counters as JSON")
		fmt.Fprintln(w, "\nFlags:")
		fs.PrintDefaults()
	}
	if code := parseFlags(env, fs, args); code >= 0 {
		return code
	}
	if fs.NArg() == 0 {
		return usageError(env, "sessions", "missing subcommand (ls, show, rm or stats)")
	}
	sub, rest := fs.Arg(0), fs.Args()[1:]
	switch sub {
	case "ls":
		return sessionsLs(env, opts, rest)
	case "show":
		return sessionsShow(env, opts, rest)
	case "rm":
		return sessionsRm(env, opts, rest)
	case "stats":
		return sessionsStats(env, opts, rest)
	}
	return usageError(env, "sessions", "unknown subcommand %q (ls, show, rm or stats)", sub)
}

// subFlags parses a subcommand's flags; flags may come before and after
// its positional arguments, which are returned.
func subFlags(env *cmdEnv, opts *sessionsOpts, name, synopsis string, args []string, extra func(*flag.FlagSet)) ([]string, int) {
	fs := newFlagSet(env, "sessions "+name, synopsis)
	opts.register(fs)
	if extra != nil {
		extra(fs)
	}
	var pos []string
	for {
		if code := parseFlags(env, fs, args); code >= 0 {
			return nil, code
		}
		if fs.NArg() == 0 {
			return pos, -1
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// dialDaemon connects and says HELLO (authenticating when a token is set).
func dialDaemon(ctx context.Context, opts sessionsOpts) (*protocol.Client, error) {
	c, err := protocol.Dial(ctx, opts.address)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", opts.address, err)
	}
	if _, err := c.Hello(ctx, opts.token, "phpsessd-sessions"); err != nil {
		c.Close()
		if protocol.IsCode(err, "NOAUTH") {
			return nil, fmt.Errorf("%s needs a token (--token or PHPSESSD_TOKEN): %w", opts.address, err)
		}
		return nil, fmt.Errorf("handshake with %s: %w", opts.address, err)
	}
	return c, nil
}

// withDaemon runs fn on a connection and turns its error into exit 1.
func withDaemon(env *cmdEnv, name string, opts sessionsOpts, fn func(ctx context.Context, c *protocol.Client) error) int {
	ctx, cancel := context.WithTimeout(context.Background(), opts.timeout)
	defer cancel()
	c, err := dialDaemon(ctx, opts)
	if err == nil {
		defer c.Close()
		err = fn(ctx, c)
	}
	if err != nil {
		fmt.Fprintf(env.Stderr, "phpsessd sessions %s: %v\n", name, err)
		return exitFail
	}
	return exitOK
}

func sessionsLs(env *cmdEnv, opts sessionsOpts, args []string) int {
	var ref string
	var asJSON bool
	limit := 100
	pos, code := subFlags(env, &opts, "ls", "[--ref REF] [--json] [--limit N]", args, func(fs *flag.FlagSet) {
		fs.StringVar(&ref, "ref", "", "only sessions carrying this reference (e.g. user:42)")
		fs.BoolVar(&asJSON, "json", false, "print a JSON array instead of one id per line")
		fs.IntVar(&limit, "limit", limit, "print at most N ids; 0: all")
	})
	if code >= 0 {
		return code
	}
	if len(pos) > 0 {
		return usageError(env, "sessions ls", "unexpected argument %q", pos[0])
	}
	if limit < 0 {
		return usageError(env, "sessions ls", "--limit must not be negative")
	}
	return withDaemon(env, "ls", opts, func(ctx context.Context, c *protocol.Client) error {
		ids := []string{}
		if ref != "" {
			rep, err := c.Do(ctx, "REF", "LIST", ref)
			if err != nil {
				return fmt.Errorf("REF LIST: %w", err)
			}
			for _, r := range rep.Array {
				ids = append(ids, r.Text())
			}
			if limit > 0 && len(ids) > limit {
				ids = ids[:limit]
			}
		} else {
			cursor := ""
			for {
				n := listPage
				if limit > 0 {
					n = min(n, limit-len(ids))
				}
				args := []any{"LIST", "LIMIT", n}
				if cursor != "" {
					args = append(args, "CURSOR", cursor)
				}
				rep, err := c.Do(ctx, args...)
				if err != nil {
					return fmt.Errorf("LIST: %w", err)
				}
				if rep.Kind != protocol.KindArray || len(rep.Array) != 2 {
					return fmt.Errorf("LIST: unexpected reply %s", rep)
				}
				for _, r := range rep.Array[1].Array {
					ids = append(ids, r.Text())
				}
				cursor = rep.Array[0].Text()
				if cursor == "" || (limit > 0 && len(ids) >= limit) {
					break
				}
			}
		}
		if asJSON {
			return writeJSON(env, ids)
		}
		for _, id := range ids {
			fmt.Fprintln(env.Stdout, id)
		}
		return nil
	})
}

func sessionsShow(env *cmdEnv, opts sessionsOpts, args []string) int {
	pos, code := subFlags(env, &opts, "show", "ID", args, nil)
	if code >= 0 {
		return code
	}
	if len(pos) != 1 {
		return usageError(env, "sessions show", "needs exactly one session id")
	}
	return withDaemon(env, "show", opts, func(ctx context.Context, c *protocol.Client) error {
		rep, err := c.Do(ctx, "INFO", pos[0])
		if err != nil {
			return fmt.Errorf("INFO: %w", err)
		}
		var info map[string]any
		dec := json.NewDecoder(bytes.NewReader(rep.Str))
		dec.UseNumber() // keep versions (uint64) exact
		if err := dec.Decode(&info); err != nil {
			return fmt.Errorf("INFO: undecodable reply: %w", err)
		}
		if exists, _ := info["exists"].(bool); !exists {
			return fmt.Errorf("no session %s", pos[0])
		}
		if s, ok := info["expires"].(string); ok {
			if t, err := time.Parse(time.RFC3339Nano, s); err == nil && !t.IsZero() && t.Year() > 1 {
				info["ttl_seconds"] = int64(time.Until(t).Round(time.Second) / time.Second)
			} else {
				delete(info, "expires") // the zero time: never expires
			}
		}
		return writeJSON(env, info)
	})
}

func sessionsRm(env *cmdEnv, opts sessionsOpts, args []string) int {
	var ref string
	pos, code := subFlags(env, &opts, "rm", "ID | --ref REF", args, func(fs *flag.FlagSet) {
		fs.StringVar(&ref, "ref", "", "destroy every session carrying this reference (log out everywhere)")
	})
	if code >= 0 {
		return code
	}
	if (ref == "") == (len(pos) == 0) || len(pos) > 1 {
		return usageError(env, "sessions rm", "needs one session id or --ref REF")
	}
	return withDaemon(env, "rm", opts, func(ctx context.Context, c *protocol.Client) error {
		if ref != "" {
			rep, err := c.Do(ctx, "REF", "KILL", ref)
			if err != nil {
				return fmt.Errorf("REF KILL: %w", err)
			}
			fmt.Fprintf(env.Stdout, "%d sessions destroyed\n", rep.Int)
			return nil
		}
		rep, err := c.Do(ctx, "DESTROY", pos[0])
		if err != nil {
			return fmt.Errorf("DESTROY: %w", err)
		}
		if rep.Int == 0 {
			return fmt.Errorf("no session %s", pos[0])
		}
		fmt.Fprintln(env.Stdout, "1 session destroyed")
		return nil
	})
}

func sessionsStats(env *cmdEnv, opts sessionsOpts, args []string) int {
	pos, code := subFlags(env, &opts, "stats", "", args, nil)
	if code >= 0 {
		return code
	}
	if len(pos) > 0 {
		return usageError(env, "sessions stats", "unexpected argument %q", pos[0])
	}
	return withDaemon(env, "stats", opts, func(ctx context.Context, c *protocol.Client) error {
		rep, err := c.Do(ctx, "STATS")
		if err != nil {
			return fmt.Errorf("STATS: %w", err)
		}
		var out bytes.Buffer
		if err := json.Indent(&out, rep.Str, "", "  "); err != nil {
			return fmt.Errorf("STATS: undecodable reply: %w", err)
		}
		out.WriteByte('\n')
		_, err = env.Stdout.Write(out.Bytes())
		return err
	})
}

func writeJSON(env *cmdEnv, v any) error {
	enc := json.NewEncoder(env.Stdout)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write JSON: %w", err)
	}
	return nil
}
