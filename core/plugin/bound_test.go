package plugin

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// hostileLoad makes 80 concurrent calls into the hostile modules: the
// recursing validator and countdown (deeprec), the memory bomb, the endless
// loop; bigmemory is refused at load. It returns the errors' count.
func hostileLoad(t testing.TB, dir string, cfg Config) (*Host, int) {
	t.Helper()
	for _, name := range []string{"membomb", "bigmemory", "deeprec", "loop"} {
		copyFile(t, filepath.Join("testdata", name+".wasm"), dir, name+".wasm")
	}
	sink := newSink()
	h, _ := startHost(t, cfg, sink)
	calls := []func() error{
		func() error {
			_, _, err := sink.countdown(t, "deeprec").Validate(context.Background(), json.RawMessage(`{"n":1}`))
			return err
		},
		func() error {
			_, err := sink.countdown(t, "deeprec").Value(context.Background(), 1, json.RawMessage(`{}`))
			return err
		},
		func() error {
			_, err := sink.countdown(t, "membomb").Value(context.Background(), 1, json.RawMessage(`{}`))
			return err
		},
		func() error {
			_, err := sink.countdown(t, "loop").Value(context.Background(), 0, json.RawMessage(`{}`))
			return err
		},
	}
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		failed int
	)
	if only := os.Getenv("WHISPERER_RSS_ONLY"); only != "" {
		k, _ := strconv.Atoi(only)
		calls = calls[k : k+1]
	}
	for i := range 80 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := calls[i%len(calls)](); err != nil {
				mu.Lock()
				failed++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return h, failed
}

// procStatus returns a field of /proc/self/status in KiB.
func procStatus(t testing.TB, field string) int64 {
	t.Helper()
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Skip("no /proc/self/status:", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no %s in /proc/self/status", field)
	return 0
}

// TestHostilePeakRSS runs hostileLoad in a child process (a fresh VmHWM)
// and reports its peak and kept RSS. WHISPERER_RSS_CALLS=0 measures the
// base: the same host with the modules loaded and no calls.
func TestHostilePeakRSS(t *testing.T) {
	if os.Getenv("WHISPERER_RSS_CHILD") == "1" {
		cfg := testConfig(t.TempDir())
		if os.Getenv("WHISPERER_RSS_CALLS") == "0" {
			for _, name := range []string{"membomb", "bigmemory", "deeprec", "loop"} {
				copyFile(t, filepath.Join("testdata", name+".wasm"), cfg.Dir, name+".wasm")
			}
			startHost(t, cfg, newSink())
		} else {
			start := time.Now()
			_, failed := hostileLoad(t, cfg.Dir, cfg)
			fmt.Printf("calls failed=%d in %v\n", failed, time.Since(start).Round(time.Millisecond))
		}
		runtime.GC()
		fmt.Printf("VmHWM=%d VmRSS=%d\n", procStatus(t, "VmHWM"), procStatus(t, "VmRSS"))
		return
	}
	if testing.Short() {
		t.Skip("spawns two children")
	}
	measure := func(calls string) (hwm, rss int64) {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHostilePeakRSS$", "-test.v")
		cmd.Env = append(os.Environ(), "WHISPERER_RSS_CHILD=1", "WHISPERER_RSS_CALLS="+calls)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("child: %v\n%s", err, out)
		}
		for _, line := range strings.Split(string(out), "\n") {
			if _, err := fmt.Sscanf(line, "VmHWM=%d VmRSS=%d", &hwm, &rss); err == nil {
				t.Logf("calls=%s: %s", calls, line)
			} else if strings.HasPrefix(line, "calls failed") {
				t.Log(line)
			}
		}
		if hwm == 0 {
			t.Fatalf("child printed no VmHWM:\n%s", out)
		}
		return hwm, rss
	}
	base, _ := measure("0")
	hwm, rss := measure("80")
	t.Logf("base %d MiB, peak %d MiB, kept %d MiB", base>>10, hwm>>10, rss>>10)
}
