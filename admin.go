package main

import (
	"log/slog"
	"net/http"
	"net/http/pprof"
	"net/netip"
)

// adminRoutes are the operator's endpoints, served only on the METRICS_ADDR
// listener (never beside /token): the metrics, lifting a login lock, and,
// with `serve --pprof`, Go's profiler.
func adminRoutes(log *slog.Logger, m *metrics, limits *loginLimits, withPprof bool) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("/metrics", handleMetrics(log, m))
	mux.Handle("/admin/unlock", handleUnlock(log, limits))
	if withPprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}

// unlocked is the answer of POST /admin/unlock: what was unlocked, and
// whether it was locked.
type unlocked struct {
	Username  string `json:"username,omitempty"`
	Address   string `json:"address,omitempty"`
	WasLocked bool   `json:"was_locked"`
}

// handleUnlock lifts the login lock of a username (?username=NAME: its
// failed-login budget) or of a client address (?address=ADDR: its failed-login
// and request budgets; an IPv6 address unlocks its /64), short of a restart.
// Checks in flight still end as usual: one that fails is charged to the
// fresh budget.
func handleUnlock(log *slog.Logger, limits *loginLimits) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			writeError(w, r, log, Errorf(EMETHOD, "use POST /admin/unlock?username=NAME or ?address=ADDR"))
			return
		}
		q := r.URL.Query()
		username, address := q.Get("username"), q.Get("address")
		if len(q) != 1 || len(q["username"])+len(q["address"]) != 1 || username+address == "" {
			writeError(w, r, log, Errorf(EINVALID, "name exactly one lock: POST /admin/unlock?username=NAME or ?address=ADDR"))
			return
		}
		var ans unlocked
		if username != "" {
			ans = unlocked{Username: username, WasLocked: limits.userFails.Reset(userKey(username))}
		} else {
			a, err := netip.ParseAddr(address)
			if err != nil {
				writeError(w, r, log, invalidFields(map[string]string{"address": "is not an IP address such as 198.51.100.7 or 2001:db8::1"}))
				return
			}
			key := addrKey(a.Unmap())
			fails, requests := limits.addrFails.Reset(key), limits.requests.Reset(key)
			ans = unlocked{Address: key, WasLocked: fails || requests}
		}
		log.Info("login lock lifted by an operator", "username", ans.Username, "address", ans.Address, "was_locked", ans.WasLocked)
		writeJSON(w, ans)
	})
}
