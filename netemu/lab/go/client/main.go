// client: a Go TCP client for interop tests. It connects to -addr, sends -bytes
// bytes of a fixed pattern (or -msg), half-closes, reads everything until EOF,
// and prints one JSON line: {"sent": N, "received": M, "sha256": "..."}.
// With -conns K it runs K such connections at once and prints one line each.
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"io"
	"log"
	"net"
	"os"
	"sync"
	"time"
)

type result struct {
	Conn     int    `json:"conn"`
	Sent     int64  `json:"sent"`
	Received int64  `json:"received"`
	SHA256   string `json:"sha256"`
	Error    string `json:"error,omitempty"`
}

func pattern(n int64) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i % 251)
	}
	return b
}

func run(id int, addr string, payload []byte, timeout time.Duration) result {
	r := result{Conn: id}
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	done := make(chan struct{})
	h := sha256.New()
	go func() {
		n, _ := io.Copy(h, c)
		r.Received = n
		close(done)
	}()
	n, err := c.Write(payload)
	r.Sent = int64(n)
	if err != nil {
		r.Error = err.Error()
	}
	c.(*net.TCPConn).CloseWrite()
	<-done
	r.SHA256 = hex.EncodeToString(h.Sum(nil))
	return r
}

func main() {
	addr := flag.String("addr", "198.18.0.1:7000", "server address")
	n := flag.Int64("bytes", 0, "bytes of pattern to send")
	msg := flag.String("msg", "", "a message to send instead")
	conns := flag.Int("conns", 1, "connections at once")
	timeout := flag.Duration("timeout", 60*time.Second, "per-connection deadline")
	flag.Parse()
	payload := []byte(*msg)
	if *n > 0 {
		payload = pattern(*n)
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	enc := json.NewEncoder(os.Stdout)
	for i := 0; i < *conns; i++ {
		wg.Add(1)
		go func(id int) {
			defer wg.Done()
			r := run(id, *addr, payload, *timeout)
			mu.Lock()
			enc.Encode(r)
			mu.Unlock()
		}(i)
	}
	wg.Wait()
	log.Printf("client: %d connection(s) done", *conns)
}
