// echo: an echo server, or with -bulk N a bulk sender. Listens on -addr (:8081).
// Echo mode copies each connection's input back until EOF, then closes.
// Bulk mode writes N bytes of a fixed pattern to each connection, half-closes
// (FIN), reads and discards whatever arrives until EOF, then closes.
package main

import (
	"flag"
	"io"
	"log"
	"net"
)

func main() {
	addr := flag.String("addr", ":8081", "listen address")
	bulk := flag.Int64("bulk", 0, "send this many bytes to each connection instead of echoing")
	flag.Parse()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("echo: listening on %s (bulk %d)", ln.Addr(), *bulk)
	for {
		conn, err := ln.Accept()
		if err != nil {
			log.Printf("echo: accept: %v", err)
			continue
		}
		if *bulk > 0 {
			go sendBulk(conn, *bulk)
		} else {
			go echo(conn)
		}
	}
}

func echo(conn net.Conn) {
	defer conn.Close()
	n, err := io.Copy(conn, conn)
	log.Printf("echo: %s echoed %d bytes (err %v)", conn.RemoteAddr(), n, err)
}

func sendBulk(conn net.Conn, total int64) {
	defer conn.Close()
	pattern := make([]byte, 65536)
	for i := range pattern {
		pattern[i] = byte(i)
	}
	var sent int64
	for sent < total {
		chunk := pattern
		if left := total - sent; left < int64(len(chunk)) {
			chunk = chunk[:left]
		}
		n, err := conn.Write(chunk)
		sent += int64(n)
		if err != nil {
			log.Printf("echo: %s: bulk write after %d bytes: %v", conn.RemoteAddr(), sent, err)
			return
		}
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.CloseWrite()
	}
	drained, _ := io.Copy(io.Discard, conn)
	log.Printf("echo: %s sent %d bytes, drained %d", conn.RemoteAddr(), sent, drained)
}
