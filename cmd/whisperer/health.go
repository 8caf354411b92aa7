package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/spf13/pflag"

	"github.com/whisperer/whisperer/core/app"
)

// The health verb is the container's HEALTHCHECK: the image is built FROM
// scratch, with no curl or shell, so the binary asks /readyz itself.

func healthFlags(fs *pflag.FlagSet) {
	fs.String("url", "", "URL to GET (default: /readyz on server.addr, a wildcard host read as loopback)")
	fs.Duration("timeout", 5*time.Second, "give up after this long")
}

func health(ctx context.Context, e env, fs *pflag.FlagSet, args []string) error {
	if err := noArgs(fs, args); err != nil {
		return err
	}
	target, _ := fs.GetString("url")
	timeout, _ := fs.GetDuration("timeout")
	if timeout <= 0 {
		return usageErr(fs, "--timeout must be positive, got %s", timeout)
	}
	if target == "" {
		cfg, err := app.LoadConfigEnv(e.environ, e.stderr, fs, flagKeys)
		if err != nil {
			return err
		}
		target = readyzURL(cfg.Server.Addr)
	} else if u, err := url.Parse(target); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return usageErr(fs, "--url must be an http(s) URL, got %q", target)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("unhealthy: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("unhealthy: %s answered %s: %s", target, resp.Status, body)
	}
	fmt.Fprintf(e.stdout, "healthy: %s answered %s\n", target, resp.Status)
	return nil
}

// readyzURL is the readiness URL of a server listening on addr (a valid
// host:port, as config checks): a wildcard or empty host is reached on
// loopback.
func readyzURL(addr string) string {
	host, port, _ := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
		if ip != nil && ip.To4() == nil {
			host = "::1"
		}
	}
	return "http://" + net.JoinHostPort(host, port) + "/readyz"
}
