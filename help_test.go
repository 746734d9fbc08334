package main

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestHelp: -h or --help anywhere, and `tokend help CMD`, print that
// command's help on stdout and succeed, doing nothing else; a usage error
// prints what was wrong, the synopsis and where the help is, on stderr.
func TestHelp(t *testing.T) {
	const mintHelp = "usage: tokend mint --identity NAME [--grant G]... [--room ROOM] [--ttl SECONDS] [--voice-param NAME=VALUE]... [--env-file FILE]\n\n" +
		"Print a token signed with the configured API key, checked as POST /token checks\na request. No users file is needed. With --zoom --session NAME, print a Zoom\nVideo SDK token instead (needs only the ZOOM_ settings).\n\nflags:\n"
	const userAddHelp = "usage: tokend user add [--env-file FILE] NAME\n\n" +
		"Add a user or change their password. The password is read from stdin, or\nprompted for twice without echo on a terminal; never from the command line.\n\nflags:\n" +
		"  -env-file FILE\n    \tread settings from FILE (default \".env\")\n"
	tests := []struct {
		args       []string
		wantErr    error
		wantStdout string // a prefix
		wantStderr string // exact
	}{
		{[]string{"-h"}, nil, "tokend trades a user's login for a short-lived Twilio access token.\n\nUsage:\n", ""},
		{[]string{"--help"}, nil, "tokend trades a user's login", ""},
		{[]string{"help"}, nil, "tokend trades a user's login", ""},
		{[]string{"mint", "-h"}, nil, mintHelp, ""},
		{[]string{"mint", "--identity", "alice", "--grant", "video", "--help"}, nil, mintHelp, ""},
		{[]string{"help", "mint"}, nil, mintHelp, ""},
		{[]string{"user", "add", "-h"}, nil, userAddHelp, ""},
		{[]string{"user", "add", "alice", "--help"}, nil, userAddHelp, ""},
		{[]string{"help", "user", "add"}, nil, userAddHelp, ""},
		{[]string{"help", "session", "revoke"}, nil, "usage: tokend session revoke [--env-file FILE] [--admin URL] [--user] USER|ID\n\nEnd every session of USER", ""},
		{[]string{"session"}, errUsage, "", "tokend session: name a subcommand: list or revoke\nusage: tokend session list|revoke [--env-file FILE] [--admin URL] [USER|ID]\nsee `tokend help session`\n"},
		{[]string{"user", "--help"}, nil, "usage: tokend user add|del|list [--env-file FILE] [NAME]\n\nEdit the users file", ""},
		{[]string{"serve", "-h"}, nil, "usage: tokend [serve] [--dev] [--pprof] [--env-file FILE]\n", ""},
		{[]string{"--dev", "-h"}, nil, "usage: tokend [serve] [--dev] [--pprof] [--env-file FILE]\n", ""},
		{[]string{"version", "-h"}, nil, "usage: tokend version\n\nPrint the version", ""},
		{[]string{"decode", "-h"}, nil, "usage: tokend decode [--env-file FILE] [TOKEN | -]\n", ""},
		{[]string{"mint", "--", "-h"}, errUsage, "", "tokend mint: want no arguments, got 1\nusage: " + commandHelp["mint"].synopsis + "\nsee `tokend help mint`\n"},
		{[]string{"user", "add"}, errUsage, "", "tokend user add: want 1 argument, got 0\nusage: tokend user add [--env-file FILE] NAME\nsee `tokend help user`\n"},
		{[]string{"user"}, errUsage, "", "tokend user: name a subcommand: add, del or list\nusage: tokend user add|del|list [--env-file FILE] [NAME]\nsee `tokend help user`\n"},
		{[]string{"user", "rename", "a", "b"}, errUsage, "", "tokend user: unknown subcommand \"rename\"\nusage: tokend user add|del|list [--env-file FILE] [NAME]\nsee `tokend help user`\n"},
		{[]string{"decode", "a.b.c", "d.e.f"}, errUsage, "", "tokend decode: want one token, or - to read it from stdin; got 2 arguments\nusage: tokend decode [--env-file FILE] [TOKEN | -]\nsee `tokend help decode`\n"},
		{[]string{"frobnicate"}, errUsage, "", "tokend: unknown command \"frobnicate\"\nsee `tokend help`\n"},
		{[]string{"help", "frobnicate"}, errUsage, "", "tokend: unknown command \"frobnicate\"\nsee `tokend help`\n"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var stdout, stderr syncBuffer
			err := run(context.Background(), append([]string{"tokend"}, tt.args...), mapEnv(nil), time.Now, strings.NewReader(""), &stdout, &stderr)
			if err != tt.wantErr {
				t.Errorf("err = %v, want %v", err, tt.wantErr)
			}
			if !strings.HasPrefix(stdout.String(), tt.wantStdout) || (tt.wantStdout == "") != (stdout.String() == "") {
				t.Errorf("stdout:\n%s\nwant it to start with:\n%s", stdout.String(), tt.wantStdout)
			}
			if stderr.String() != tt.wantStderr {
				t.Errorf("stderr:\n%q\nwant:\n%q", stderr.String(), tt.wantStderr)
			}
		})
	}
}

// TestHelpListsEverySetting: the help's settings come from the one table.
func TestHelpListsEverySetting(t *testing.T) {
	for _, name := range allSettings() {
		if !strings.Contains(usage, " "+name+" ") && !strings.Contains(usage, " "+name+"\n") {
			t.Errorf("the help does not list %s", name)
		}
	}
}

func TestFlagErrorsNameTheCommand(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"mint", "--identity"}, "tokend mint: flag needs an argument: -identity\nusage: " + commandHelp["mint"].synopsis + "\nsee `tokend help mint`\n"},
		{[]string{"serve", "--dev=maybe"}, "tokend serve: invalid boolean value \"maybe\" for -dev: parse error\nusage: " + commandHelp["serve"].synopsis + "\nsee `tokend help serve`\n"},
		{[]string{"user", "list", "--nope"}, "tokend user list: flag provided but not defined: -nope\nusage: tokend user list [--env-file FILE]\nsee `tokend help user`\n"},
	} {
		var stdout, stderr syncBuffer
		err := run(context.Background(), append([]string{"tokend"}, tt.args...), mapEnv(nil), time.Now, strings.NewReader(""), &stdout, &stderr)
		if err != errUsage || stderr.String() != tt.want || stdout.String() != "" {
			t.Errorf("%q: err %v, stdout %q, stderr:\n%q\nwant:\n%q", tt.args, err, stdout.String(), stderr.String(), tt.want)
		}
	}
}
