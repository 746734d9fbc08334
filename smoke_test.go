package main

import (
	"context"
	"encoding/json"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// readmeExample is a curl or http command from README.md, with the blocks
// that follow it in the README to show its answer.
type readmeExample struct {
	command string
	shown   []readmeBlock
}

type readmeBlock struct {
	lang string
	text string
}

// readmeExamples returns every curl and http command in the README's sh
// blocks, continuation lines joined. The code blocks right after a block
// (with nothing but blank lines between) show the answer of its last command.
func readmeExamples(t *testing.T, readme string) []*readmeExample {
	t.Helper()
	var (
		examples []*readmeExample
		last     *readmeExample // of the previous block, while only blank lines follow it
		block    *readmeBlock
		lines    []string
	)
	for _, line := range strings.Split(readme, "\n") {
		switch {
		case block == nil && strings.HasPrefix(line, "```"):
			block = &readmeBlock{lang: strings.TrimPrefix(line, "```")}
			lines = nil
		case block != nil && line == "```":
			block.text = strings.Join(lines, "\n")
			if block.lang == "sh" {
				var cmd string
				var found *readmeExample
				for _, l := range lines {
					cmd += strings.TrimSpace(l)
					if strings.HasSuffix(cmd, `\`) {
						cmd = strings.TrimSuffix(cmd, `\`)
						continue
					}
					if strings.HasPrefix(cmd, "curl ") || strings.HasPrefix(cmd, "http ") {
						found = &readmeExample{command: cmd}
						examples = append(examples, found)
					}
					cmd = ""
				}
				last = found
			} else if last != nil {
				last.shown = append(last.shown, *block)
			}
			block = nil
		case block != nil:
			lines = append(lines, line)
		case strings.TrimSpace(line) != "":
			last = nil
		}
	}
	if block != nil {
		t.Fatal("README.md has an unclosed code block")
	}
	return examples
}

// tokenAnswer is what a successful token example must show: the token's
// grants, exactly, and its lifetime.
type tokenAnswer struct {
	grants string
	ttl    int64
}

// TestSmokeREADME runs the README's curl and http examples against
// `tokend serve --dev`, as a reader would, and checks their answers, so the
// README cannot drift from what tokend does. `make smoke` runs it alone.
func TestSmokeREADME(t *testing.T) {
	for _, tool := range []struct{ cmd, pkg string }{{"curl", "curl"}, {"http", "httpie"}} {
		if _, err := exec.LookPath(tool.cmd); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("no %s: install Debian's %s package (.ci/run does)", tool.cmd, tool.pkg)
			}
			t.Skipf("no %s: install Debian's %s package (apt-get install %s) to run the README's examples", tool.cmd, tool.pkg, tool.pkg)
		}
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	const (
		devGrants = `{"chat":{"service_sid":"ISdeadbeefdeadbeefdeadbeefdeadbee1"},"data_sync":{"service_sid":"ISdeadbeefdeadbeefdeadbeefdeadbee2"},"identity":"demo","video":{},"voice":{"incoming":{"allow":true},"outgoing":{"application_sid":"APdeadbeefdeadbeefdeadbeefdeadbeef"}}}`
		// The origin the README's CORS examples use.
		appOrigin = "https://app.example.com"
	)
	// The expected answer of every example; an example whose answer the
	// README shows right after it maps to nil.
	want := map[string]*tokenAnswer{
		`http POST :8080/token username=demo password=PASSWORD`:                                                                                                                     {devGrants, 3600},
		`curl -s -X POST http://127.0.0.1:8080/token -H 'Content-Type: application/json' -d '{"username":"demo","password":"PASSWORD"}'`:                                            {devGrants, 3600},
		`curl -s -u demo:PASSWORD -X POST http://127.0.0.1:8080/token      # HTTP Basic auth`:                                                                                       {devGrants, 3600},
		`http POST :8080/token username=demo password=PASSWORD grants=video room="My Room" ttl:=600`:                                                                                {`{"identity":"demo","video":{"room":"My Room"}}`, 600},
		`http POST :8080/token username=demo password=PASSWORD grants=voice voice_params:='{"queue":"support"}'`:                                                                    {`{"identity":"demo","voice":{"incoming":{"allow":true},"outgoing":{"application_sid":"APdeadbeefdeadbeefdeadbeefdeadbeef","params":{"queue":"support"}}}}`, 3600},
		`curl -s -X POST http://127.0.0.1:8080/token -d username=demo -d password=PASSWORD -d grants=sync`:                                                                          {`{"data_sync":{"service_sid":"ISdeadbeefdeadbeefdeadbeefdeadbee2"},"identity":"demo"}`, 3600},
		`curl -si -X OPTIONS http://127.0.0.1:8080/token -H 'Origin: ` + appOrigin + `' -H 'Access-Control-Request-Method: POST' -H 'Access-Control-Request-Headers: content-type'`: nil,
		`http -h POST :8080/token Origin:` + appOrigin + ` username=demo password=PASSWORD`:                                                                                         nil,
	}
	examples := readmeExamples(t, string(readme))
	var commands []string
	for _, ex := range examples {
		commands = append(commands, ex.command)
	}
	for cmd := range want {
		if !slices.Contains(commands, cmd) {
			t.Errorf("the README lost this example; update the test:\n%s", cmd)
		}
	}

	addr := freeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	var stdout, stderr syncBuffer
	errc := startRun(t, []string{"serve", "--dev", "--env-file", filepath.Join(t.TempDir(), ".env")},
		map[string]string{"LISTEN_ADDR": ":" + port, "CORS_ALLOWED_ORIGINS": appOrigin}, &stdout, &stderr)
	waitReady(t, "http://127.0.0.1:"+port, errc)
	m := regexp.MustCompile(`Password:  (\S+)`).FindStringSubmatch(stdout.String())
	if m == nil {
		t.Fatalf("no password in the banner:\n%s", stdout.String())
	}
	password := m[1]

	// The tools read only these settings, not the user's: a timeout for
	// each request, and httpie told that stdin is not a request body.
	home := t.TempDir()
	os.WriteFile(filepath.Join(home, ".curlrc"), []byte("max-time = 20\n"), 0o600)
	os.MkdirAll(filepath.Join(home, "httpie"), 0o700)
	os.WriteFile(filepath.Join(home, "httpie", "config.json"), []byte(`{"default_options": ["--ignore-stdin", "--timeout=20"]}`), 0o600)
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "CURL_HOME=" + home, "HTTPIE_CONFIG_DIR=" + filepath.Join(home, "httpie"), "LANG=C.UTF-8"}

	for _, ex := range examples {
		t.Run(ex.command, func(t *testing.T) {
			answer, ok := want[ex.command]
			if !ok {
				t.Fatalf("this README example has no expected answer; add one to TestSmokeREADME")
			}
			cmdline := strings.ReplaceAll(strings.ReplaceAll(ex.command, ":8080", ":"+port), "PASSWORD", password)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, "bash", "-c", cmdline)
			cmd.Env = env
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("%v: %s", err, out)
			}
			if answer != nil {
				checkTokenAnswer(t, out, answer)
			} else if len(ex.shown) == 0 {
				t.Fatal("the README shows no answer after this example")
			}
			for _, b := range ex.shown {
				checkShownAnswer(t, b, out)
			}
		})
	}
}

// checkTokenAnswer checks a token answer: the identity, and the decoded
// token's grants and lifetime.
func checkTokenAnswer(t *testing.T, out []byte, want *tokenAnswer) {
	t.Helper()
	var resp tokenResponse
	if err := json.Unmarshal(out, &resp); err != nil {
		t.Fatalf("not a token answer: %v: %s", err, out)
	}
	if resp.Identity != "demo" {
		t.Errorf("identity = %q", resp.Identity)
	}
	if _, err := time.Parse(time.RFC3339, resp.ExpiresAt); err != nil {
		t.Errorf("expires_at: %v", err)
	}
	_, claims := decodeSegments(t, resp.Token)
	grants, _ := json.Marshal(claims["grants"])
	if string(grants) != want.grants {
		t.Errorf("grants = %s\nwant     %s", grants, want.grants)
	}
	if ttl := int64(claims["exp"].(float64) - claims["iat"].(float64)); ttl != want.ttl {
		t.Errorf("lifetime = %d s, want %d", ttl, want.ttl)
	}
}

// checkShownAnswer checks an answer against what the README shows after
// the example: a JSON body has the same fields, and each header line shown
// is in the answer.
func checkShownAnswer(t *testing.T, b readmeBlock, out []byte) {
	t.Helper()
	switch b.lang {
	case "json":
		var shown, got map[string]any
		if err := json.Unmarshal([]byte(b.text), &shown); err != nil {
			t.Fatalf("the README's answer is not JSON: %v", err)
		}
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("the answer is not JSON: %v: %s", err, out)
		}
		if !reflect.DeepEqual(slices.Sorted(maps.Keys(shown)), slices.Sorted(maps.Keys(got))) {
			t.Errorf("the README shows the fields %v, the answer has %v", slices.Sorted(maps.Keys(shown)), slices.Sorted(maps.Keys(got)))
		}
	case "http":
		lines := strings.Split(strings.ReplaceAll(string(out), "\r\n", "\n"), "\n")
		for _, l := range strings.Split(b.text, "\n") {
			if !slices.Contains(lines, l) {
				t.Errorf("the README shows %q, the answer has no such line:\n%s", l, out)
			}
		}
	default:
		t.Errorf("the README shows an answer as %q: use json or http", b.lang)
	}
}
