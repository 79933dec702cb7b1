package main

import (
	"bytes"
	"strings"
	"testing"
)

func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	env := &cmdEnv{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }}
	code = run(env, args)
	return code, out.String(), errb.String()
}

func TestTopLevelHelpListsEveryCommand(t *testing.T) {
	code, out, _ := runCLI(t, "--help")
	if code != exitOK {
		t.Fatalf("--help exit %d, want 0", code)
	}
	for name := range commands {
		if !strings.Contains(out, "  "+name+" ") {
			t.Errorf("--help does not list %q:\n%s", name, out)
		}
	}
}

func TestNoArgumentsIsUsageError(t *testing.T) {
	code, _, errOut := runCLI(t)
	if code != exitUsage {
		t.Fatalf("no args exit %d, want %d", code, exitUsage)
	}
	if !strings.Contains(errOut, "Usage: phpsessd") {
		t.Errorf("no usage text on stderr: %q", errOut)
	}
}

func TestUnknownCommandExits2WithOneLine(t *testing.T) {
	code, _, errOut := runCLI(t, "frobnicate")
	if code != exitUsage {
		t.Fatalf("exit %d, want %d", code, exitUsage)
	}
	if got := strings.Count(strings.TrimSpace(errOut), "\n"); got != 0 || !strings.Contains(errOut, `unknown command "frobnicate"`) {
		t.Errorf("want one line naming the command, got %q", errOut)
	}
}

// Every subcommand must answer --help on stdout with exit 0 and refuse an
// unknown flag with exit 2 and a single line.
func TestEverySubcommandHasHelpAndRejectsBadFlags(t *testing.T) {
	for name := range commands {
		if name == "help" {
			continue
		}
		t.Run(name, func(t *testing.T) {
			code, out, _ := runCLI(t, name, "--help")
			if code != exitOK || !strings.Contains(out, "Usage: phpsessd "+name) {
				t.Errorf("%s --help: exit %d, stdout %q", name, code, out)
			}
			code, _, errOut := runCLI(t, name, "--no-such-flag")
			if code != exitUsage {
				t.Errorf("%s --no-such-flag: exit %d, want %d", name, code, exitUsage)
			}
			if strings.Count(strings.TrimSpace(errOut), "\n") != 0 || !strings.Contains(errOut, "no-such-flag") {
				t.Errorf("%s --no-such-flag: want one line naming the flag, got %q", name, errOut)
			}
		})
	}
}

func TestHelpSubcommand(t *testing.T) {
	if code, out, _ := runCLI(t, "help", "version"); code != exitOK || !strings.Contains(out, "Usage: phpsessd version") {
		t.Errorf("help version: exit %d, %q", code, out)
	}
	if code, _, _ := runCLI(t, "help", "nope"); code != exitUsage {
		t.Errorf("help nope: exit %d, want %d", code, exitUsage)
	}
}

func TestVersion(t *testing.T) {
	code, out, _ := runCLI(t, "version")
	if code != exitOK || !strings.HasPrefix(out, "phpsessd "+version) {
		t.Errorf("version: exit %d, %q", code, out)
	}
	if code, _, _ := runCLI(t, "version", "extra"); code != exitUsage {
		t.Errorf("version extra: exit %d, want %d", code, exitUsage)
	}
}
