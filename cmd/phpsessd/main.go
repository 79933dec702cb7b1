// Command phpsessd is the phpsessd daemon and its command-line tools.
//
// Each subcommand lives in a file of its own and registers itself in
// commands from an init function, so adding one never touches this file.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// version is overridden at link time (-ldflags "-X main.version=...").
var version = "0.1.0-dev"

// command is one subcommand. Run gets the arguments after the subcommand
// name and returns the process exit code.
type command struct {
	Summary string
	Run     func(env *cmdEnv, args []string) int
}

// cmdEnv carries the process streams so commands are testable in-process.
type cmdEnv struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	Getenv func(string) string
}

var commands = map[string]command{}

func register(name string, c command) {
	if _, dup := commands[name]; dup {
		panic("phpsessd: command registered twice: " + name)
	}
	commands[name] = c
}

func main() {
	env := &cmdEnv{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv}
	os.Exit(run(env, os.Args[1:]))
}

// Exit codes shared by every subcommand.
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

func run(env *cmdEnv, args []string) int {
	if len(args) == 0 {
		usage(env.Stderr)
		return exitUsage
	}
	name := args[0]
	switch name {
	case "-h", "--help", "-help":
		usage(env.Stdout)
		return exitOK
	case "--version", "-version", "-v":
		name = "version"
	}
	c, ok := commands[name]
	if !ok {
		fmt.Fprintf(env.Stderr, "phpsessd: unknown command %q (run 'phpsessd help' for the list)\n", name)
		return exitUsage
	}
	return c.Run(env, args[1:])
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "phpsessd %s: session store for PHP that lets parallel requests of one session run without losing writes\n\n", version)
	fmt.Fprintln(w, "Usage: phpsessd <command> [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-12s %s\n", n, commands[n].Summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'phpsessd <command> --help' for the flags of one command.")
}

// newFlagSet returns a FlagSet whose usage text names the command and which
// reports errors instead of exiting, so parse failures map to exitUsage.
func newFlagSet(env *cmdEnv, name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: phpsessd %s %s\n\n", name, synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args and turns the outcome into an exit code: -1 means
// "go on", anything else is the code to return. --help prints to stdout
// and exits 0; a bad flag prints one line and exits 2.
func parseFlags(env *cmdEnv, fs *flag.FlagSet, args []string) int {
	var sink strings.Builder
	fs.SetOutput(&sink)
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fs.SetOutput(env.Stdout)
		fs.Usage()
		return exitOK
	case err != nil:
		fmt.Fprintf(env.Stderr, "phpsessd %s: %v (run 'phpsessd %s --help')\n", fs.Name(), err, fs.Name())
		return exitUsage
	}
	fs.SetOutput(env.Stderr)
	return -1
}

// usageError prints a one-line reason and returns exitUsage.
func usageError(env *cmdEnv, cmd, format string, a ...any) int {
	fmt.Fprintf(env.Stderr, "phpsessd %s: %s (run 'phpsessd %s --help')\n", cmd, fmt.Sprintf(format, a...), cmd)
	return exitUsage
}
