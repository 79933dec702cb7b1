package server

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"

	_ "github.com/phpsessd/phpsessd/handlers/all"
	"github.com/phpsessd/phpsessd/protocol"
)

// BenchmarkReadWrite measures READ+WRITE round trips over a unix socket
// with 32 concurrent connections against the memory store.
func BenchmarkReadWrite(b *testing.B) {
	env := startServer(b, nil)
	ctx := context.Background()
	const clients = 32
	conns := make([]*protocol.Client, clients)
	for i := range conns {
		c, err := protocol.Dial(ctx, env.unix)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		conns[i] = c
	}
	var next atomic.Int64
	b.SetParallelism((clients + 1) / 2)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(next.Add(1)-1) % clients
		c := conns[i]
		id := fmt.Sprintf("benchsession%020d", i)
		for k := 0; pb.Next(); k++ {
			rep, err := c.Do(ctx, "READ", id, "FORMAT", "php")
			if err != nil {
				b.Error(err)
				return
			}
			if _, err := c.Do(ctx, "WRITE", id, "n|i:"+strconv.Itoa(k)+";", "BASE", rep.Array[1].Int, "FORMAT", "php"); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkConnectReadWrite is a PHP request on a connection of its own,
// the client's default: connect, READ, WRITE, close.
func BenchmarkConnectReadWrite(b *testing.B) {
	env := startServer(b, nil)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for k := 0; k < b.N; k++ {
		c, err := protocol.Dial(ctx, env.unix)
		if err != nil {
			b.Fatal(err)
		}
		id := fmt.Sprintf("connsession%021d", k%64)
		rep, err := c.Do(ctx, "READ", id, "FORMAT", "php")
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.Do(ctx, "WRITE", id, "n|i:"+strconv.Itoa(k)+";", "BASE", rep.Array[1].Int, "FORMAT", "php"); err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
}
