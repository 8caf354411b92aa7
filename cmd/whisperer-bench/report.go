package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
)

// report renders result JSON lines (from --json runs) as a Markdown table.
func report(files []string, w io.Writer) error {
	var rows []result
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			return err
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if !strings.HasPrefix(line, "{") {
				continue
			}
			var r result
			if err := json.Unmarshal([]byte(line), &r); err != nil {
				fh.Close()
				return fmt.Errorf("%s: %w", f, err)
			}
			rows = append(rows, r)
		}
		fh.Close()
	}
	fmt.Fprintln(w, "| scenario | target | deliveries/s | p50 ms | p99 ms | max ms | dup / lost | server CPU s | PG CPU s | CPU per delivery ms | PG transactions / rows read per event | retry late p99 ms | peak RSS MiB | load average |")
	fmt.Fprintln(w, "|---|---|---:|---:|---:|---:|---|---:|---:|---:|---|---:|---:|---|")
	for _, r := range rows {
		pg, db, late := "–", "–", "–"
		if r.DBCPUSec > 0 {
			pg = fmt.Sprintf("%.1f", r.DBCPUSec)
		}
		if r.DB != nil {
			db = fmt.Sprintf("%.2f / %.0f", r.DB.XactsPerEvent, r.DB.RowsReadPerEvent)
		}
		if r.RetryLateP99MS != 0 || r.RetryLateMaxMS != 0 {
			late = fmt.Sprintf("%.0f", r.RetryLateP99MS)
		}
		cpu, rss, per := "–", "–", "–"
		if r.Backend != "raw" {
			cpu, rss = fmt.Sprintf("%.1f", r.ServerCPUSec), fmt.Sprintf("%.0f", r.PeakRSSMiB)
			per = fmt.Sprintf("%.3f", r.CPUPerDeliveryMS)
		}
		name := r.Name
		if r.Floor { // not Whisperer: the minimal relay (--floor)
			name = "FLOOR (minimal relay, " + r.Backend + "): " + name
		}
		fmt.Fprintf(w, "| %s | %s | %.0f | %.1f | %.1f | %.0f | %d / %d | %s | %s | %s | %s | %s | %s | %s |\n",
			name, r.Target, r.DeliveriesPerSec, r.P50MS, r.P99MS, r.MaxMS, r.Duplicates, r.Lost, cpu, pg, per, db, late, rss, r.LoadAvg)
	}
	return nil
}
