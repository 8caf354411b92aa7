package app

import (
	"crypto/tls"
	"fmt"
	"sync/atomic"
)

// certificate is the server's own TLS certificate (server.tls_cert and
// server.tls_key), read when it starts serving and again on Reload
// (SIGHUP), so a renewed certificate needs no restart. Connections already
// open keep the certificate they started with.
type certificate struct {
	certFile, keyFile string
	cur               atomic.Pointer[tls.Certificate]
}

func loadCertificate(certFile, keyFile string) (*certificate, error) {
	c := &certificate{certFile: certFile, keyFile: keyFile}
	return c, c.reload()
}

// reload reads the pair again; on an error the previous one stays.
func (c *certificate) reload() error {
	pair, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return fmt.Errorf("server.tls_cert %s, server.tls_key %s: %w", c.certFile, c.keyFile, err)
	}
	c.cur.Store(&pair)
	return nil
}

func (c *certificate) get(*tls.ClientHelloInfo) (*tls.Certificate, error) { return c.cur.Load(), nil }

// tlsConfig is the server's TLS: TLS 1.2 at least, Go's default suites,
// HTTP/2 offered (ServeTLS adds it).
func (c *certificate) tlsConfig() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: c.get}
}
