package metrics_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"time"

	"github.com/phpsessd/phpsessd/engine"
	"github.com/phpsessd/phpsessd/handlers/memory"
	"github.com/phpsessd/phpsessd/handlers/sealed"
	"github.com/phpsessd/phpsessd/metrics"
	"github.com/phpsessd/phpsessd/security"
	"github.com/phpsessd/phpsessd/server"
)

// Example shows how a daemon wires sealing, security signals and metrics
// around its engine and server. The server is created after the metrics,
// so the stats source reads it through a closure.
func Example() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	store, _ := memory.New(memory.Options{})

	keys, err := sealed.KeysFromEnv(os.Getenv) // or sealed.LoadKeyFile(path)
	if err != nil {
		log.Error("keys", "err", err)
		return
	}
	ss, err := sealed.New(store, sealed.Options{Keys: keys, CompressOver: 4096})
	if err != nil {
		log.Error("sealing", "err", err)
		return
	}

	sig, err := security.New(security.Options{Logger: log /*, Hook: "http://127.0.0.1:8080/hook" */})
	if err != nil {
		log.Error("security", "err", err)
		return
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		sig.Close(ctx)
	}()

	ecfg := engine.NewConfig(ss)
	ecfg.Logger = log
	ecfg.OnInvalidID = sig.OnInvalidID
	eng, err := engine.New(ecfg)
	if err != nil {
		log.Error("engine", "err", err)
		return
	}
	defer eng.Close()

	var srv *server.Server
	m, err := metrics.New(metrics.Options{
		Server:  func() server.AllStats { return srv.Stats() },
		Store:   ss,
		Signals: sig,
		Version: "1.0.0",
		Logger:  log,
	})
	if err != nil {
		log.Error("metrics", "err", err)
		return
	}
	defer m.Close()
	srv, err = server.New(server.Config{Engine: eng, Listen: []string{"tcp://127.0.0.1:0"}, InsecureNoAuth: true, Logger: log})
	if err != nil {
		log.Error("server", "err", err)
		return
	}
	m.SetHealthCheck(func() error {
		if srv.ShuttingDown() {
			return errors.New("shutting down")
		}
		return nil
	})
	hs, err := m.Listen("127.0.0.1:0")
	if err != nil {
		log.Error("metrics listen", "err", err)
		return
	}
	srv.Start()

	// ... serve until told to stop, then:
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv.Shutdown(ctx)
	hs.Shutdown(ctx)
}
