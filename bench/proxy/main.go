// Command proxy is the benchmark's trivial hop: an httputil.ReverseProxy
// that forwards everything to one upstream, flushing immediately, over a
// keep-alive pool sized for many concurrent connections. It is the baseline
// an MCP-aware gateway is compared with.
//
// It prints the address it bound as the first line on stdout.
package main

import (
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address (loopback only)")
	upstream := flag.String("upstream", "", "upstream base URL, e.g. http://127.0.0.1:4000")
	fullDuplex := flag.Bool("full-duplex", true, "leave the request body to the proxy while the response is written (see below)")
	flag.Parse()

	host, _, err := net.SplitHostPort(*addr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		fmt.Fprintf(os.Stderr, "proxy: -addr %q must be a loopback host:port\n", *addr)
		os.Exit(2)
	}
	target, err := url.Parse(*upstream)
	if err != nil || target.Scheme == "" || target.Host == "" {
		fmt.Fprintf(os.Stderr, "proxy: -upstream %q must be an absolute URL\n", *upstream)
		os.Exit(2)
	}

	rp := &httputil.ReverseProxy{
		// SetURL also rewrites Host, which SDK servers check on loopback.
		Rewrite:       func(r *httputil.ProxyRequest) { r.SetURL(target) },
		FlushInterval: -1,
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        1024,
			MaxIdleConnsPerHost: 256, // Go's default of 2 would redial at any concurrency above 2
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
		},
	}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "proxy:", err)
		os.Exit(1)
	}
	fmt.Println(ln.Addr().String())
	var h http.Handler = rp
	if *fullDuplex {
		// Without full duplex, the server closes a request body it has not
		// seen EOF on as soon as the handler writes the response header. An
		// upstream answering before the transport's final EOF read of that
		// body then gets its connection torn down mid-response ("use of closed
		// network connection"): ~1% truncated answers at c=1 and a new
		// upstream connection for each. Only a proxy that forwards the
		// request body as a stream hits this.
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.NewResponseController(w).EnableFullDuplex()
			rp.ServeHTTP(w, r)
		})
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
		<-sig
		srv.Close()
	}()
	if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
		fmt.Fprintln(os.Stderr, "proxy:", err)
		os.Exit(1)
	}
}
