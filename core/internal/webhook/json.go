package webhook

// JSONShape measures the valid JSON value raw without decoding it: its
// size as compact JSON (white space outside strings left out) and its
// deepest nesting of objects and arrays. It allocates nothing, so the API
// and the filter compiler can bound what a client sends before parsing it.
func JSONShape(raw []byte) (compactSize, depth int) {
	d, inString, escaped := 0, false, false
	for _, c := range raw {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			continue // not part of the compact form
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			d++
			depth = max(depth, d)
		case c == '}' || c == ']':
			d--
		}
		compactSize++
	}
	return compactSize, depth
}
