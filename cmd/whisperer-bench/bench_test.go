package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestProcReaders(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	if _, err := procCPU(os.Getpid()); err != nil {
		t.Fatal(err)
	}
	if kib, ok := procStatusKiB(os.Getpid(), "VmHWM:"); !ok || kib <= 0 {
		t.Fatalf("VmHWM = %d, %v", kib, ok)
	}
}

func TestReport(t *testing.T) {
	f := filepath.Join(t.TempDir(), "r.jsonl")
	line := `{"name":"x","target":"≥ 1/s","backend":"postgres","deliveries_per_sec":1234.4,"p50_ms":1.25,"p99_ms":9,"max_ms":20,"duplicates":2,"lost":0,"server_cpu_sec":3.14,"db_cpu_sec":1,"peak_rss_mib":40.2,"cpu_per_delivery_ms":0.25,"load_avg":"1.5 1.2 1.0","db":{"xacts_per_event":1.5,"rows_read_per_event":42.4},"retry_late_p99_ms":12.3}`
	floor := `{"name":"y","backend":"none","floor":true,"deliveries_per_sec":10,"server_cpu_sec":1,"cpu_per_delivery_ms":0.1}`
	if err := os.WriteFile(f, []byte("noise\n"+line+"\n"+floor+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := report([]string{f}, &out); err != nil {
		t.Fatal(err)
	}
	want := "| x | ≥ 1/s | 1234 | 1.2 | 9.0 | 20 | 2 / 0 | 3.1 | 1.0 | 0.250 | 1.50 / 42 | 12 | 40 | 1.5 1.2 1.0 |"
	for _, want := range []string{want, "| FLOOR (minimal relay, none): y |  | 10 |"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("report:\n%s\nwant a row %s", out.String(), want)
		}
	}
}
