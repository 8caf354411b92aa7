package console

import (
	"fmt"
	"html/template"
	"strings"
	"time"
)

// pageNames are the templates under templates/, each executed inside
// layout.html.
var pageNames = []string{"signin", "error", "hooks", "hook", "events", "event", "redeliver", "bulk", "hookform", "rotate", "plugins", "eventtypes", "apidocs", "portal", "overview"}

var funcs = template.FuncMap{
	// errs and errsUnder are a field's error messages (fieldErrors.Of,
	// Under) with an element id for aria-describedby.
	"errs": func(e fieldErrors, path string) fieldMessages {
		return fieldMessages{ID: elementID(path), Messages: e.Of(path)}
	},
	"errsUnder": func(e fieldErrors, path string) fieldMessages {
		return fieldMessages{ID: elementID(path), Messages: e.Under(path)}
	},
	"inc": func(i int) int { return i + 1 },
	"ms": func(d time.Duration) string {
		return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000)
	},
	"join": strings.Join,
	"add3": func(a, b, c int64) int64 { return a + b + c },
	"pct": func(part, whole int64) string {
		if whole == 0 {
			return "—"
		}
		return fmt.Sprintf("%.1f%%", 100*float64(part)/float64(whole))
	},
	// when writes a time in UTC, to the second.
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
	"whenPtr": func(t *time.Time) string {
		if t == nil {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
}

func parsePages() (map[string]*template.Template, error) {
	base, err := template.New("layout.html").Funcs(funcs).ParseFS(files, "templates/layout.html")
	if err != nil {
		return nil, err
	}
	out := make(map[string]*template.Template, len(pageNames))
	for _, name := range pageNames {
		t, err := template.Must(base.Clone()).ParseFS(files, "templates/"+name+".html")
		if err != nil {
			return nil, err
		}
		out[name] = t
	}
	return out, nil
}

type fieldMessages struct {
	ID       string
	Messages []string
}

// elementID makes an id attribute of a field path, which may hold a
// tenant's header name: anything but letters, digits, "-" and "_" is "-".
func elementID(path string) string {
	b := []byte(path)
	for i, c := range b {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			b[i] = '-'
		}
	}
	return string(b)
}
