package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// CallStats counts calls since the node started.
type CallStats struct {
	Calls, Failures uint64
	// Mean is the calls' mean duration.
	Mean time.Duration
}

// PluginCalls is one plugin file's calls: of every kind together, and by
// call (countdown, validate, callback, filter, transform).
type PluginCalls struct {
	CallStats
	ByCall map[string]CallStats
}

// PluginCalls reads the plugin call histogram and failure counter by
// plugin file, for the web console's plugins page. It collects those two
// alone: gathering the registry would also query the database.
func (m *Metrics) PluginCalls() map[string]PluginCalls {
	ch := make(chan prometheus.Metric, 16)
	go func() {
		m.pluginDuration.Collect(ch)
		m.pluginFailures.Collect(ch)
		close(ch)
	}()
	type key struct{ file, call string }
	stats, sums := map[key]CallStats{}, map[key]float64{}
	for pm := range ch {
		var d dto.Metric
		if pm.Write(&d) != nil {
			continue
		}
		var k key
		for _, l := range d.GetLabel() {
			switch l.GetName() {
			case "plugin":
				k.file = l.GetValue()
			case "call":
				k.call = l.GetValue()
			}
		}
		s := stats[k]
		if hg := d.GetHistogram(); hg != nil {
			s.Calls += hg.GetSampleCount()
			sums[k] += hg.GetSampleSum()
		}
		if c := d.GetCounter(); c != nil {
			s.Failures += uint64(c.GetValue())
		}
		stats[k] = s
	}
	out := map[string]PluginCalls{}
	fileSums := map[string]float64{}
	for k, s := range stats {
		s.Mean = mean(sums[k], s.Calls)
		pc := out[k.file]
		if pc.ByCall == nil {
			pc.ByCall = map[string]CallStats{}
		}
		pc.ByCall[k.call] = s
		pc.Calls += s.Calls
		pc.Failures += s.Failures
		fileSums[k.file] += sums[k]
		out[k.file] = pc
	}
	for file, pc := range out {
		pc.Mean = mean(fileSums[file], pc.Calls)
		out[file] = pc
	}
	return out
}

// mean is sum seconds over n calls; 0 without calls.
func mean(sum float64, n uint64) time.Duration {
	if n == 0 {
		return 0
	}
	return time.Duration(sum / float64(n) * float64(time.Second))
}
