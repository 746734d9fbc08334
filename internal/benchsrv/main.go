// Command benchsrv is the yardstick of `make bench-wrk`: a net/http server
// whose every answer is one constant JSON body, as long as a token answer,
// with tokend's server timeouts. The throughput of POST /token is reported
// as a ratio to this one's, measured in the same run, so that the noise of a
// shared machine hits both alike.
package main

import (
	"flag"
	"log"
	"net/http"
	_ "net/http/pprof"
	"os"
	"strconv"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:18081", "address to listen on")
	size := flag.Int("size", 560, "bytes of JSON in each answer (a token answer's size)")
	pprofAddr := flag.String("pprof", "", "address to serve Go's profiler on (empty: none)")
	flag.Parse()
	if *pprofAddr != "" {
		go func() { log.Print(http.ListenAndServe(*pprofAddr, nil)) }() // net/http/pprof's DefaultServeMux
	}
	body := constantBody(*size)
	length := strconv.Itoa(len(body))
	srv := &http.Server{
		Addr: *addr,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h := w.Header()
			h.Set("Content-Type", "application/json")
			h.Set("Content-Length", length)
			w.Write(body)
		}),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
	}
	log.SetOutput(os.Stderr)
	log.Fatal(srv.ListenAndServe())
}

// constantBody is {"token":"xxx…","identity":"bench","expires_at":"…"}
// padded to size bytes with a newline, as tokend writes it.
func constantBody(size int) []byte {
	const head, tail = `{"token":"`, `","identity":"bench","expires_at":"2026-11-27T02:52:33Z"}` + "\n"
	pad := max(0, size-len(head)-len(tail))
	b := make([]byte, 0, size)
	b = append(b, head...)
	for range pad {
		b = append(b, 'x')
	}
	return append(b, tail...)
}
