package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Handler serves /metrics (Prometheus text or OpenMetrics, gzip when
// asked) and /healthz ("ok", or 503 with the health check's error).
func (m *Metrics) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog:            slogPrinter{m},
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: 4,
		Timeout:             10 * time.Second,
		EnableOpenMetrics:   true,
	}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if f := m.healthCheck.Load(); f != nil && *f != nil {
			if err := (*f)(); err != nil {
				w.WriteHeader(http.StatusServiceUnavailable)
				fmt.Fprintln(w, err)
				return
			}
		}
		fmt.Fprintln(w, "ok")
	})
	return mux
}

type slogPrinter struct{ m *Metrics }

func (p slogPrinter) Println(v ...any) { p.m.log.Warn("metrics: " + fmt.Sprint(v...)) }

// HTTPServer is a running /metrics listener.
type HTTPServer struct {
	srv  *http.Server
	ln   net.Listener
	done chan struct{}
}

// Listen binds addr ("127.0.0.1:9464") now, so a taken port or a bad
// address fails at start, and serves Handler in the background until
// Shutdown. A listener on a non-loopback address is allowed (Prometheus
// may scrape from another host) but logged, since /metrics has no auth.
func (m *Metrics) Listen(addr string) (*HTTPServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics listen %s: %w", addr, err)
	}
	if ta, ok := ln.Addr().(*net.TCPAddr); ok && !ta.IP.IsLoopback() {
		m.log.Warn("metrics endpoint is reachable from other hosts and has no authentication; firewall it", "listen", ln.Addr().String())
	}
	h := &HTTPServer{
		srv: &http.Server{
			Handler:           m.Handler(),
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       10 * time.Second,
			WriteTimeout:      30 * time.Second,
			IdleTimeout:       2 * time.Minute,
			MaxHeaderBytes:    16 << 10,
		},
		ln:   ln,
		done: make(chan struct{}),
	}
	go func() {
		defer close(h.done)
		if err := h.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			m.log.Error("metrics server stopped", "err", err)
		}
	}()
	return h, nil
}

// Addr is the bound address (with the real port for ":0").
func (h *HTTPServer) Addr() string { return h.ln.Addr().String() }

// Shutdown stops accepting, lets scrapes in flight finish until ctx ends,
// and waits for the serving goroutine.
func (h *HTTPServer) Shutdown(ctx context.Context) error {
	err := h.srv.Shutdown(ctx)
	if err != nil {
		h.srv.Close()
	}
	<-h.done
	if err != nil {
		return fmt.Errorf("metrics shutdown: %w", err)
	}
	return nil
}
