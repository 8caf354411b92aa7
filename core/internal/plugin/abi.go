package plugin

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/whisperer/whisperer/sdk/abi"
)

const (
	i32 = api.ValueTypeI32
	i64 = api.ValueTypeI64
)

type signature struct{ params, results []api.ValueType }

var exportSigs = map[string]signature{
	abi.ExportVersion:           {},
	abi.ExportInitialize:        {},
	abi.ExportAlloc:             {[]api.ValueType{i32}, []api.ValueType{i32}},
	abi.ExportManifest:          {nil, []api.ValueType{i64}},
	abi.ExportCountdown:         {[]api.ValueType{i32, i32, i32, i32}, []api.ValueType{i64}},
	abi.ExportValidate:          {[]api.ValueType{i32, i32, i32}, []api.ValueType{i64}},
	abi.ExportCallback:          {[]api.ValueType{i32, i32, i32}, []api.ValueType{i32}},
	abi.ExportCallbackRecord:    {[]api.ValueType{i32, i32, i32, i32}, []api.ValueType{i32}},
	abi.ExportFilter:            {[]api.ValueType{i32, i32, i32, i32, i32}, []api.ValueType{i32}},
	abi.ExportFilterValidate:    {[]api.ValueType{i32, i32, i32}, []api.ValueType{i64}},
	abi.ExportTransform:         {[]api.ValueType{i32, i32, i32, i32, i32, i32}, []api.ValueType{i64}},
	abi.ExportTransformValidate: {[]api.ValueType{i32, i32, i32}, []api.ValueType{i64}},
	abi.ExportTransformRecord:   {[]api.ValueType{i32, i32, i32, i32, i32, i32, i32}, []api.ValueType{i64}},
}

var (
	logSig        = signature{[]api.ValueType{i32, i32, i32}, nil}
	logEnabledSig = signature{[]api.ValueType{i32}, []api.ValueType{i32}}
)

func (s signature) String() string {
	names := func(ts []api.ValueType) string {
		out := make([]string, len(ts))
		for i, t := range ts {
			out[i] = api.ValueTypeName(t)
		}
		return "(" + strings.Join(out, ", ") + ")"
	}
	return names(s.params) + " -> " + names(s.results)
}

func sigOf(d api.FunctionDefinition) signature {
	return signature{d.ParamTypes(), d.ResultTypes()}
}

func (s signature) equal(o signature) bool {
	return slices.Equal(s.params, o.params) && slices.Equal(s.results, o.results)
}

// checkABI checks a compiled module's exports and imports against ABI v1
// before anything of it runs, and lists every problem found.
func checkABI(m wazero.CompiledModule) error {
	var probs []string
	exports := m.ExportedFunctions()
	if _, ok := exports[abi.ExportVersion]; !ok {
		other := ""
		for name := range exports {
			if strings.HasPrefix(name, "whisperer_abi_v") {
				other = name
			}
		}
		if other != "" {
			return fmt.Errorf("speaks %s but this server speaks ABI v%d (export %s)", other, abi.Version, abi.ExportVersion)
		}
		return fmt.Errorf("does not export %s: not a Whisperer ABI v%d plugin", abi.ExportVersion, abi.Version)
	}
	if _, ok := m.ExportedMemories()[abi.ExportMemory]; !ok {
		probs = append(probs, fmt.Sprintf("does not export its memory as %q", abi.ExportMemory))
	}
	if _, ok := exports[abi.ExportStart]; ok {
		probs = append(probs, "exports _start, so it is a WASI command: build it as a reactor "+
			"(Go: -buildmode=c-shared; C: -mexec-model=reactor)")
	}
	for _, name := range []string{abi.ExportAlloc, abi.ExportManifest} {
		if _, ok := exports[name]; !ok {
			probs = append(probs, "does not export "+name)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(exportSigs)) {
		d, ok := exports[name]
		if want := exportSigs[name]; ok && !sigOf(d).equal(want) {
			probs = append(probs, fmt.Sprintf("export %s has signature %s, want %s", name, sigOf(d), want))
		}
	}
	for _, d := range m.ImportedFunctions() {
		mod, name, _ := d.Import()
		switch {
		case mod == abi.ImportModule && name == abi.ImportLog:
			if !sigOf(d).equal(logSig) {
				probs = append(probs, fmt.Sprintf("import %s.%s has signature %s, want %s", mod, name, sigOf(d), logSig))
			}
		case mod == abi.ImportModule && name == abi.ImportLogEnabled:
			if !sigOf(d).equal(logEnabledSig) {
				probs = append(probs, fmt.Sprintf("import %s.%s has signature %s, want %s", mod, name, sigOf(d), logEnabledSig))
			}
		case mod == abi.WASIModule:
			// wazero's WASI preview 1 provides every function; a wrong
			// signature fails instantiation with wazero's own message.
		default:
			probs = append(probs, fmt.Sprintf("imports %s.%s, which the host does not provide (only %s.%s, %s.%s and %s)",
				mod, name, abi.ImportModule, abi.ImportLog, abi.ImportModule, abi.ImportLogEnabled, abi.WASIModule))
		}
	}
	if len(m.ImportedMemories()) > 0 {
		probs = append(probs, "imports a memory; it must define and export its own")
	}
	if len(probs) > 0 {
		return fmt.Errorf("%s", strings.Join(probs, "; "))
	}
	return nil
}

// parseManifest decodes and checks a manifest against the module's exports.
func parseManifest(b []byte, exports map[string]api.FunctionDefinition) (abi.Manifest, error) {
	var m abi.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("manifest is not valid JSON: %w", err)
	}
	if m.ABI != 0 && m.ABI != abi.Version {
		return m, fmt.Errorf("manifest is for ABI v%d, this server speaks v%d", m.ABI, abi.Version)
	}
	n := len(m.Countdowns) + len(m.Callbacks) + len(m.Filters) + len(m.Transforms)
	if n > abi.MaxEntries {
		return m, fmt.Errorf("manifest declares %d entries, at most %d allowed", n, abi.MaxEntries)
	}
	if n == 0 {
		return m, fmt.Errorf("manifest declares no countdowns, callbacks, filters or transforms")
	}
	if err := checkKeys("countdown", m.Countdowns); err != nil {
		return m, err
	}
	if err := checkKeys("callback", m.Callbacks); err != nil {
		return m, err
	}
	if err := checkKeys("filter", entryNames(m.Filters)); err != nil {
		return m, err
	}
	if err := checkKeys("transform", entryNames(m.Transforms)); err != nil {
		return m, err
	}
	need := func(kind, export string) error {
		if _, ok := exports[export]; !ok {
			return fmt.Errorf("manifest declares %ss but the module does not export %s", kind, export)
		}
		return nil
	}
	var errs []error
	if len(m.Countdowns) > 0 {
		errs = append(errs, need("countdown", abi.ExportCountdown), need("countdown", abi.ExportValidate))
	}
	if len(m.Callbacks) > 0 {
		errs = append(errs, need("callback", abi.ExportCallback))
	}
	if len(m.Filters) > 0 {
		errs = append(errs, need("filter", abi.ExportFilter))
	}
	if slices.ContainsFunc(m.Filters, func(e abi.Entry) bool { return e.Validator }) {
		errs = append(errs, need("filter validator", abi.ExportFilterValidate))
	}
	if len(m.Transforms) > 0 {
		errs = append(errs, need("transform", abi.ExportTransform))
	}
	if slices.ContainsFunc(m.Transforms, func(e abi.Entry) bool { return e.Validator }) {
		errs = append(errs, need("transform validator", abi.ExportTransformValidate))
	}
	for _, err := range errs {
		if err != nil {
			return m, err
		}
	}
	return m, nil
}

func entryNames(es []abi.Entry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.Name
	}
	return out
}

func checkKeys(kind string, keys []string) error {
	seen := map[string]bool{}
	for i, k := range keys {
		switch {
		case k == "":
			return fmt.Errorf("manifest %s %d has an empty key", kind, i)
		case len(k) > abi.MaxKeyBytes:
			return fmt.Errorf("manifest %s %d: key is longer than %d bytes", kind, i, abi.MaxKeyBytes)
		case !utf8.ValidString(k) || strings.IndexFunc(k, func(r rune) bool { return unicode.IsControl(r) || unicode.IsSpace(r) }) >= 0:
			return fmt.Errorf("manifest %s %d: key %q has spaces, control characters or invalid UTF-8", kind, i, k)
		case seen[k]:
			return fmt.Errorf("manifest declares %s %q twice", kind, k)
		}
		seen[k] = true
	}
	return nil
}
