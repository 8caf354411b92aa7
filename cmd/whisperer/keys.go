package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/pflag"

	"github.com/whisperer/whisperer/core/app"
)

// keysGenerate prints a new encryption key for security.encryption_keys.
// It needs no configuration or database.
func keysGenerate(_ context.Context, e env, fs *pflag.FlagSet, args []string) error {
	if err := noArgs(fs, args); err != nil {
		return err
	}
	fmt.Fprintln(e.stderr, "A new AES-256 key for security.encryption_keys (e.g. WHISPERER_SECURITY_ENCRYPTION_KEYS); keep it secret and backed up:")
	fmt.Fprintln(e.stdout, app.GenerateKey())
	return nil
}

func keysRotateFlags(fs *pflag.FlagSet) {
	fs.Int("batch-size", 500, "hooks re-encrypted per transaction")
}

// keysRotate re-encrypts every hook's secrets under the first key of
// security.encryption_keys, with progress on stderr. Servers may run
// meanwhile; it is safe to interrupt and to run again.
func keysRotate(ctx context.Context, e env, fs *pflag.FlagSet, args []string) error {
	if err := noArgs(fs, args); err != nil {
		return err
	}
	batch, _ := fs.GetInt("batch-size")
	if batch < 1 {
		return usageErr(fs, "--batch-size must be at least 1, got %d", batch)
	}
	return withDB(ctx, e, fs, func(adm *app.Admin) error {
		start := time.Now()
		p, err := adm.RotateKeys(ctx, batch, func(done, total int64) {
			fmt.Fprintf(e.stderr, "re-encrypted %d of %d hook(s)\n", done, total)
		})
		if err != nil {
			return fmt.Errorf("rotate stopped after %d of %d hook(s) (run it again to go on): %w", p.Done, p.Total, err)
		}
		fmt.Fprintf(e.stdout, "re-encrypted %d hook(s) in %s\n", p.Done, time.Since(start).Round(time.Millisecond))
		if len(p.Unreadable) > 0 {
			fmt.Fprintf(e.stdout, "%d hook(s) could not be decrypted and were left as they are (ids %v): "+
				"their owners must set a new secret_key; their old key must stay configured until then\n", len(p.Unreadable), p.Unreadable)
		}
		if p.Skipped > 0 {
			fmt.Fprintf(e.stdout, "%d hook(s) changed meanwhile; run it again once every node has the new first key\n", p.Skipped)
		}
		return nil
	})
}
