package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"

	"github.com/phpsessd/phpsessd/phpserialize"
)

func init() {
	register("decode", command{
		Summary: "print PHP session data or a serialize()d value as JSON",
		Run:     runDecode,
	})
}

func runDecode(env *cmdEnv, args []string) int {
	fs := newFlagSet(env, "decode", "[--format php|php_binary|php_serialize|value] [--indent] < data")
	format := fs.String("format", phpserialize.FormatPHP,
		"how stdin is encoded: a session in the php, php_binary or php_serialize format, or one serialize()d value")
	indent := fs.Bool("indent", false, "indent the JSON output")
	if code := parseFlags(env, fs, args); code >= 0 {
		return code
	}
	if fs.NArg() > 0 {
		return usageError(env, "decode", "unexpected argument %q", fs.Arg(0))
	}
	switch *format {
	case phpserialize.FormatPHP, phpserialize.FormatPHPBinary, phpserialize.FormatPHPSerialize, "value":
	default:
		return usageError(env, "decode", "unknown format %q", *format)
	}
	data, err := io.ReadAll(env.Stdin)
	if err != nil {
		fmt.Fprintf(env.Stderr, "phpsessd decode: reading stdin: %v\n", err)
		return exitFail
	}
	out, err := decodeJSON(data, *format)
	if err != nil && (bytes.HasSuffix(data, []byte("\n"))) {
		// A newline added by echo or an editor is never part of valid
		// data (values end in ';' or '}'), so retry without it.
		if o, e := decodeJSON(bytes.TrimRight(data, "\r\n"), *format); e == nil {
			out, err = o, nil
		}
	}
	if err != nil {
		fmt.Fprintf(env.Stderr, "phpsessd decode: invalid %s data: %v\n", *format, err)
		return exitFail
	}
	if *indent {
		var buf bytes.Buffer
		if err := json.Indent(&buf, out, "", "  "); err != nil {
			fmt.Fprintf(env.Stderr, "phpsessd decode: %v\n", err)
			return exitFail
		}
		out = buf.Bytes()
	}
	out = append(out, '\n')
	if _, err := env.Stdout.Write(out); err != nil {
		fmt.Fprintf(env.Stderr, "phpsessd decode: writing output: %v\n", err)
		return exitFail
	}
	return exitOK
}

func decodeJSON(data []byte, format string) ([]byte, error) {
	if format == "value" {
		return phpserialize.JSON(data)
	}
	return phpserialize.SessionJSON(data, format)
}
