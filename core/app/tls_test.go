package app_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/whisperer/whisperer/core/app"
	"github.com/whisperer/whisperer/core/internal/config"
)

// writeCert writes a self-signed certificate for 127.0.0.1 named cn, and
// its key, as PEM files in dir.
func writeCert(t *testing.T, dir, cn string) (certFile, keyFile string, cert *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ = x509.ParseCertificate(der)
	return certFile, keyFile, cert
}

// With server.tls_cert and tls_key the node speaks HTTPS (HTTP/2 offered),
// and Reload (SIGHUP) serves a renewed certificate without a restart.
func TestServeTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, first := writeCert(t, dir, "first")
	n := startNode(t, "sqlite", nil, func(c *config.Config) {
		c.Server.TLSCert, c.Server.TLSKey = certFile, keyFile
	})
	url := strings.Replace(n.url, "http://", "https://", 1) + "/healthz"
	get := func(trust *x509.Certificate) (*http.Response, error) {
		pool := x509.NewCertPool()
		pool.AddCert(trust)
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}
		defer tr.CloseIdleConnections()
		return (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get(url)
	}
	res, err := get(first)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 || res.ProtoMajor != 2 || res.TLS.PeerCertificates[0].Subject.CommonName != "first" {
		t.Fatalf("GET /healthz over TLS: %d %s, certificate %q", res.StatusCode, res.Proto, res.TLS.PeerCertificates[0].Subject.CommonName)
	}
	// Plain HTTP gets Go's 400 "client sent an HTTP request to an HTTPS
	// server", never the API.
	if res, err := http.Get(n.url + "/healthz"); err == nil {
		res.Body.Close()
		if res.StatusCode != http.StatusBadRequest {
			t.Errorf("plain HTTP on the TLS listener answered %d", res.StatusCode)
		}
	}

	// Renewed on disk, read on Reload.
	_, _, second := writeCert(t, dir, "second")
	if err := n.App.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	res, err = get(second)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if cn := res.TLS.PeerCertificates[0].Subject.CommonName; cn != "second" {
		t.Errorf("after Reload the server presents %q, want the renewed certificate", cn)
	}

	// A broken file on Reload is reported and the served certificate stays.
	if err := os.WriteFile(certFile, []byte("not PEM"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := n.App.Reload(context.Background()); err == nil || !strings.Contains(err.Error(), "server.tls_cert") {
		t.Errorf("Reload with a broken certificate = %v, want an error naming server.tls_cert", err)
	}
	if res, err = get(second); err != nil {
		t.Fatalf("after a failed Reload: %v", err)
	}
	res.Body.Close()
}

// A certificate that cannot be read stops Serve with an error naming the
// keys, before anything is served.
func TestServeTLSBadCertificate(t *testing.T) {
	cfg := app.DefaultConfig()
	dir := t.TempDir()
	cfg.Database.URL = "sqlite://" + filepath.Join(dir, "w.db")
	cfg.Plugins.Dir = filepath.Join(dir, "plugins")
	cfg.Server.TLSCert, cfg.Server.TLSKey = filepath.Join(dir, "missing.pem"), filepath.Join(dir, "missing.key")
	a, err := app.New(context.Background(), cfg, app.NewLogger(cfg.Log, os.Stderr))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Serve(context.Background(), ln); err == nil || !strings.Contains(err.Error(), "server.tls_cert") {
		t.Errorf("Serve = %v, want an error naming server.tls_cert", err)
	}
}
