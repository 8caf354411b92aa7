package webhook

import (
	"strings"
	"testing"
)

// RedactURL hides credentials; URLOrigin keeps scheme://host[:port] alone.
func TestRedactURLAndOrigin(t *testing.T) {
	redact := map[string]string{
		"http://user:pw@host/x":          "http://***@host/x",
		"https://user@host:8443/x?q=1":   "https://***@host:8443/x?q=1",
		"http://:secret@host/":           "http://***@host/",
		"http://host/x?email=a@b.c":      "http://host/x?email=a@b.c",
		"http://host/x":                  "http://host/x",
		"http://us%3Aer:p%40ss@host/x#f": "http://***@host/x#f",
		"":                               "",
	}
	origin := map[string]string{
		"https://hooks.slack.com/services/T0/B0/token": "https://hooks.slack.com",
		"https://u:p@h.example:8443/p?token=x#frag":    "https://h.example:8443",
		"http://[::1]:80/x":                            "http://[::1]:80",
		"not a url":                                    "",
		"/relative/only":                               "",
		"https://%zz":                                  "",
	}
	for name, c := range map[string]struct {
		f     func(string) string
		cases map[string]string
	}{"RedactURL": {RedactURL, redact}, "URLOrigin": {URLOrigin, origin}} {
		for in, want := range c.cases {
			got := c.f(in)
			if got != want {
				t.Errorf("%s(%q) = %q, want %q", name, in, got, want)
			}
			if strings.Contains(got, "pw") || strings.Contains(got, "secret") || strings.Contains(got, "ss@") || strings.Contains(got, "token") {
				t.Errorf("%s(%q) = %q still shows a credential", name, in, got)
			}
		}
	}
}

func TestValidationErrorMessages(t *testing.T) {
	e := &ValidationError{}
	e.Add("target_url", "Enter a valid URL.")
	e.Set("retry_countdown_config", map[string]any{"kwargs": map[string]any{"max_value": []string{"Too big.", "Odd."}}})
	want := "invalid input: retry_countdown_config.kwargs.max_value: Too big.; retry_countdown_config.kwargs.max_value: Odd.; " +
		"target_url: Enter a valid URL."
	if got := e.Error(); got != want || strings.Contains(got, "map[") {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}
