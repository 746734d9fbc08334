package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// adminClient is how `tokend session` and `tokend unlock` ask a running
// tokend: its admin endpoints, on the METRICS_ADDR listener (the private
// one, never beside /token).
type adminClient struct {
	client *http.Client
	base   string // http://HOST:PORT
}

func newAdminClient(base string) adminClient {
	return adminClient{&http.Client{Timeout: 10 * time.Second}, strings.TrimSuffix(base, "/")}
}

// adminBase turns METRICS_ADDR into the URL the commands call: a listener
// on every address is called on loopback, since this machine is one of them.
func adminBase(metricsAddr string) (string, error) {
	host, port, err := net.SplitHostPort(metricsAddr)
	if err != nil {
		return "", fmt.Errorf("METRICS_ADDR is %q: use HOST:PORT or :PORT, such as 127.0.0.1:9090", metricsAddr)
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port), nil
}

// adminRefusal is a problem+json answer from the running tokend: its
// status and its detail, which the commands show as the reason.
type adminRefusal struct {
	status int
	detail string
}

func (r *adminRefusal) Error() string {
	return fmt.Sprintf("tokend answered %d: %s", r.status, r.detail)
}

// call sends method to the base URL + path (with its query) and decodes
// the answer into out; a problem with a detail is an *adminRefusal.
func (a adminClient) call(ctx context.Context, method, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, nil)
	if err != nil {
		return err
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return fmt.Errorf("ask the running tokend: %w (is it running with this METRICS_ADDR?)", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if resp.StatusCode != http.StatusOK {
		var p problem
		if json.Unmarshal(body, &p) == nil && p.Detail != "" {
			return &adminRefusal{resp.StatusCode, p.Detail}
		}
		return fmt.Errorf("tokend answered %s to %s %s: is this tokend's METRICS_ADDR?", resp.Status, method, req.URL.Path)
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("tokend's answer to %s %s is not what this version expects: %v", method, req.URL.Path, err)
	}
	return nil
}
