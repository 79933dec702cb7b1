package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func runDecodeCmd(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	env := &cmdEnv{Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }}
	code := run(env, append([]string{"decode"}, args...))
	return code, out.String(), errb.String()
}

func TestDecodeSessionFormats(t *testing.T) {
	cases := []struct {
		args []string
		in   string
		want string
	}{
		{nil, `a|i:1;b|s:3:"hé";`, `{"a":1,"b":"hé"}`},
		{[]string{"--format", "php"}, ``, `{}`},
		{[]string{"--format", "php_binary"}, "\x04usera:2:{i:0;d:0.5;i:1;d:5;}", `{"user":[0.5,5.0]}`},
		{[]string{"--format", "php_serialize"}, `a:2:{s:1:"x";N;i:5;b:1;}`, `{"x":null,"5":true}`},
		{[]string{"--format", "value"}, `O:3:"Foo":2:{s:1:"a";E:11:"Suit:Hearts";s:6:"` + "\x00*\x00bin" + `";s:2:"` + "\xff\xfe" + `";}`,
			`{"__class":"Foo","a":{"__enum":"Suit:Hearts"},"\u0000*\u0000bin":{"__base64":"//4="}}`},
		{[]string{"--format", "value"}, "a:2:{i:0;O:8:\"stdClass\":0:{}i:1;r:2;}\n", `[{"__class":"stdClass"},{"__objref":2}]`},
		{[]string{"--format=value"}, `d:INF;`, `{"__float":"INF"}`},
	}
	for _, c := range cases {
		code, out, errOut := runDecodeCmd(t, c.in, c.args...)
		if code != exitOK {
			t.Errorf("%v %q: exit %d, stderr %q", c.args, c.in, code, errOut)
			continue
		}
		if strings.TrimSuffix(out, "\n") != c.want {
			t.Errorf("%v %q:\n got %s\nwant %s", c.args, c.in, out, c.want)
		}
		if !json.Valid([]byte(out)) {
			t.Errorf("%v: output is not JSON: %s", c.args, out)
		}
	}
}

func TestDecodeIndent(t *testing.T) {
	code, out, _ := runDecodeCmd(t, `a|a:1:{i:0;i:1;}`, "--indent")
	if code != exitOK || out != "{\n  \"a\": [\n    1\n  ]\n}\n" {
		t.Errorf("exit %d, %q", code, out)
	}
}

func TestDecodeErrors(t *testing.T) {
	code, out, errOut := runDecodeCmd(t, `a|i:1;b|i:x;`, "--format", "php")
	if code != exitFail || out != "" {
		t.Errorf("malformed: exit %d, out %q", code, out)
	}
	if !strings.Contains(errOut, "offset 10") || strings.Count(errOut, "\n") != 1 {
		t.Errorf("malformed: stderr %q, want one line with the offset", errOut)
	}
	code, _, errOut = runDecodeCmd(t, `i:5;`, "--format", "bogus")
	if code != exitUsage || !strings.Contains(errOut, "unknown format") {
		t.Errorf("bad format: exit %d, %q", code, errOut)
	}
	code, _, _ = runDecodeCmd(t, ``, "extra")
	if code != exitUsage {
		t.Errorf("extra argument: exit %d", code)
	}
	code, out, _ = runDecodeCmd(t, ``, "--help")
	if code != exitOK || !strings.Contains(out, "--format") {
		t.Errorf("--help: exit %d, %q", code, out)
	}
	code, _, errOut = runDecodeCmd(t, `i:5;`, "--format", "php_serialize")
	if code != exitOK {
		t.Errorf("scalar php_serialize root: exit %d, %q", code, errOut)
	}
}
