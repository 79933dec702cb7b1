package fpmtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"syscall"
	"time"
)

// Redis is a private redis-server on a free loopback port, for comparing
// with phpredis' session handler.
type Redis struct {
	Addr   string
	cmd    *exec.Cmd
	log    *syncBuffer
	exited chan struct{}
}

// StartRedis runs redis-server without persistence, bound to 127.0.0.1.
func StartRedis(bin, dir string) (*Redis, error) {
	if bin == "" {
		var err error
		if bin, err = exec.LookPath("redis-server"); err != nil {
			return nil, fmt.Errorf("fpmtest: redis-server not found: %w", err)
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("fpmtest: find a free port: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	r := &Redis{Addr: "127.0.0.1:" + strconv.Itoa(port), log: &syncBuffer{}, exited: make(chan struct{})}
	r.cmd = exec.Command(bin, "--bind", "127.0.0.1", "--port", strconv.Itoa(port),
		"--save", "", "--appendonly", "no", "--dir", dir, "--protected-mode", "yes")
	r.cmd.Stdout, r.cmd.Stderr = r.log, r.log
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := r.cmd.Start(); err != nil {
		return nil, fmt.Errorf("fpmtest: start redis-server: %w", err)
	}
	go func() { _ = r.cmd.Wait(); close(r.exited) }()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-r.exited:
			return nil, fmt.Errorf("fpmtest: redis-server exited during start:\n%s", r.log.String())
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		c, err := DialRESP(ctx, r.Addr)
		cancel()
		if err == nil {
			_, err = c.Do(time.Second, "PING")
			c.Close()
			if err == nil {
				return r, nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.Stop()
	return nil, errors.New("fpmtest: redis-server not ready after 10s:\n" + r.log.String())
}

// Stop ends the server.
func (r *Redis) Stop() {
	if r == nil || r.cmd == nil || r.cmd.Process == nil {
		return
	}
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.exited:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-r.cmd.Process.Pid, syscall.SIGKILL)
		<-r.exited
	}
}
