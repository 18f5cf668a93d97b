// hello: the mission's server. Listens on :8080; for each connection it reads
// once, logs what it got, replies "hello, xiao ming.\n" and closes.
package main

import (
	"flag"
	"log"
	"net"
)

func main() {
	addr := flag.String("addr", ":8080", "listen address")
	flag.Parse()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("hello: listening on %s", ln.Addr())
	for {
		conn, err := ln.Accept()
		if err != nil {
			log.Printf("hello: accept: %v", err)
			continue
		}
		go handle(conn)
	}
}

func handle(conn net.Conn) {
	defer conn.Close()
	buf := make([]byte, 4096)
	n, err := conn.Read(buf)
	log.Printf("hello: %s sent %d bytes %q (err %v)", conn.RemoteAddr(), n, buf[:n], err)
	if _, err := conn.Write([]byte("hello, xiao ming.\n")); err != nil {
		log.Printf("hello: %s: write: %v", conn.RemoteAddr(), err)
	}
}
