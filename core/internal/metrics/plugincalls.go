package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// PluginCalls sums one plugin file's calls, of every kind, since the node
// started.
type PluginCalls struct {
	Calls, Failures uint64
	// Mean is the calls' mean duration.
	Mean time.Duration
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
	out := map[string]PluginCalls{}
	sums := map[string]float64{}
	for pm := range ch {
		var d dto.Metric
		if pm.Write(&d) != nil {
			continue
		}
		file := ""
		for _, l := range d.GetLabel() {
			if l.GetName() == "plugin" {
				file = l.GetValue()
			}
		}
		pc := out[file]
		if hg := d.GetHistogram(); hg != nil {
			pc.Calls += hg.GetSampleCount()
			sums[file] += hg.GetSampleSum()
		}
		if c := d.GetCounter(); c != nil {
			pc.Failures += uint64(c.GetValue())
		}
		out[file] = pc
	}
	for file, pc := range out {
		if pc.Calls > 0 {
			pc.Mean = time.Duration(sums[file] / float64(pc.Calls) * float64(time.Second))
			out[file] = pc
		}
	}
	return out
}
