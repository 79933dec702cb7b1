package main

import (
	"fmt"
	"runtime"
)

func init() {
	register("version", command{
		Summary: "print the version",
		Run: func(env *cmdEnv, args []string) int {
			fs := newFlagSet(env, "version", "")
			if code := parseFlags(env, fs, args); code >= 0 {
				return code
			}
			if fs.NArg() > 0 {
				return usageError(env, "version", "unexpected argument %q", fs.Arg(0))
			}
			fmt.Fprintf(env.Stdout, "phpsessd %s %s %s/%s\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return exitOK
		},
	})
	register("help", command{
		Summary: "list the commands",
		Run: func(env *cmdEnv, args []string) int {
			if len(args) == 1 && args[0] != "-h" && args[0] != "--help" && args[0] != "-help" {
				if c, ok := commands[args[0]]; ok && args[0] != "help" {
					return c.Run(env, []string{"--help"})
				}
				return usageError(env, "help", "unknown command %q", args[0])
			}
			if len(args) > 1 {
				return usageError(env, "help", "takes at most one command name")
			}
			usage(env.Stdout)
			return exitOK
		},
	})
}
