package config

import (
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// This file turns the YAML library's messages into signet's: in the config's terms (keys
// and paths, never Go types), with a suggestion for a near-miss key or value, and without
// the follow-on errors that one mistake would otherwise set off.

var (
	unknownKey   = regexp.MustCompile(`^line (\d+): field (\S+) not found in type (\S+)$`)
	repeatedKey  = regexp.MustCompile(`^line (\d+): (?:field (\S+) already set in type \S+|mapping key "(.*)" already defined at line (\d+))$`)
	cannotDecode = regexp.MustCompile("^cannot unmarshal !!(\\w+) (?:`(.*)` )?into (\\S+)$")
)

// keyProblem is an unknown or repeated key of the file.
type keyProblem struct {
	err      error
	repeated bool
	// taints are the paths the mistake leaves unset, whose own errors would be follow-ons:
	// for a misspelt key, the key it was meant to be.
	taints [][]any
	// parent and meant: errors at parent that name meant are follow-ons too ("account is
	// required" after "acount").
	parent []any
	meant  string
}

// keyError rewrites the YAML library's unknown or repeated key message in signet's terms,
// or returns nil when msg is about something else.
func keyError(name string, root *yaml.Node, msg string) *keyProblem {
	if m := repeatedKey.FindStringSubmatch(msg); m != nil {
		key, first := m[2], ""
		if m[3] != "" {
			key, first = m[3], " (first at line "+m[4]+")"
		}
		line, _ := strconv.Atoi(m[1])
		where := ""
		if p := keyParent(root, line, key); len(p) > 0 {
			where = " in " + formatPath(p)
		}
		return &keyProblem{repeated: true, err: fmt.Errorf("%s:%d: key %q is given twice%s%s", name, line, key, where, first)}
	}
	m := unknownKey.FindStringSubmatch(msg)
	if m == nil {
		return nil
	}
	line, _ := strconv.Atoi(m[1])
	key := m[2]
	p := &keyProblem{parent: keyParent(root, line, key)}
	where := ""
	if len(p.parent) > 0 {
		where = " in " + formatPath(p.parent)
	}
	known := yamlKeys(m[3])
	if s := nearest(key, known); s != "" {
		if nodeAt(root, append(slices.Clip(p.parent), s)) == nil {
			// Only when the key meant is missing are errors about it follow-ons.
			p.meant = s
			p.taints = [][]any{append(slices.Clip(p.parent), s)}
		}
		p.err = fmt.Errorf("%s:%d: unknown key %q%s (did you mean %q?)", name, line, key, where, s)
	} else if len(known) > 0 {
		p.err = fmt.Errorf("%s:%d: unknown key %q%s (known keys there: %s)", name, line, key, where, strings.Join(known, ", "))
	} else {
		p.err = fmt.Errorf("%s:%d: unknown key %q%s", name, line, key, where)
	}
	return p
}

// keyParent is the path of the mapping holding key at line.
func keyParent(root *yaml.Node, line int, key string) []any {
	var found []any
	var walk func(n *yaml.Node, path []any) bool
	walk = func(n *yaml.Node, path []any) bool {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				if walk(c, path) {
					return true
				}
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				if k := n.Content[i]; k.Line == line && k.Value == key {
					found = path
					return true
				}
				if walk(n.Content[i+1], append(slices.Clip(path), n.Content[i].Value)) {
					return true
				}
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				if walk(c, append(slices.Clip(path), i)) {
					return true
				}
			}
		}
		return false
	}
	walk(root, nil)
	return found
}

// yamlKeys lists the keys of the config struct the YAML library names typeName
// ("config.Bucket"), found from Config through its fields.
func yamlKeys(typeName string) []string {
	seen := map[reflect.Type]bool{}
	var find func(t reflect.Type) reflect.Type
	find = func(t reflect.Type) reflect.Type {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || seen[t] {
			return nil
		}
		seen[t] = true
		if t.String() == typeName {
			return t
		}
		for i := range t.NumField() {
			if f := find(t.Field(i).Type); f != nil {
				return f
			}
		}
		return nil
	}
	t := find(reflect.TypeFor[Config]())
	if t == nil {
		return nil
	}
	var keys []string
	for i := range t.NumField() {
		if k, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ","); k != "" && k != "-" {
			keys = append(keys, k)
		}
	}
	return keys
}

// decodeError rewrites one of the YAML library's "cannot unmarshal" messages in the
// config's terms: what was found, and what the key needs.
func decodeError(msg string) string {
	m := cannotDecode.FindStringSubmatch(msg)
	if m == nil {
		return msg
	}
	var got string
	switch m[1] {
	case "map":
		got = "a mapping"
	case "seq":
		got = "a list"
	default:
		got = strconv.Quote(m[2])
	}
	want := m[3]
	switch {
	case strings.HasPrefix(want, "[]"):
		return fmt.Sprintf("must be a list (each entry on a line starting with \"- \"), not %s", got)
	case strings.HasPrefix(want, "map["):
		return fmt.Sprintf("must be a mapping of names to settings, not %s", got)
	case strings.HasPrefix(want, "*config.") || strings.HasPrefix(want, "config."):
		return fmt.Sprintf("must be a mapping of settings, not %s", got)
	case strings.HasPrefix(want, "int") || strings.HasPrefix(want, "uint"):
		return fmt.Sprintf("%s is not a whole number", got)
	case strings.HasPrefix(want, "float"):
		return fmt.Sprintf("%s is not a number", got)
	case want == "bool":
		return fmt.Sprintf("%s is not true or false", got)
	case want == "string":
		return fmt.Sprintf("must be a single value, not %s", got)
	}
	return fmt.Sprintf("%s is not a valid value here", got)
}

// nearest is the option closest to s when it is near enough to be a slip ("acount",
// "readonly", "warning"), else "".
func nearest(s string, options []string) string {
	best, bestD := "", 0
	for _, o := range options {
		if o == s {
			return ""
		}
		d := editDistance(strings.ToLower(s), strings.ToLower(o))
		// A prefix counts as near: "warning" for "warn", "read" for "read-only".
		if min(len(s), len(o)) >= 3 && (strings.HasPrefix(o, s) || strings.HasPrefix(s, o)) {
			d = 1
		}
		if limit := max(1, min(3, len(o)/3)); d <= limit && (best == "" || d < bestD) {
			best, bestD = o, d
		}
	}
	return best
}

// didYouMean is " (did you mean "x"?)" for the option nearest s, or "".
func didYouMean(s string, options []string) string {
	if n := nearest(s, options); n != "" {
		return fmt.Sprintf(" (did you mean %q?)", n)
	}
	return ""
}

// editDistance is the optimal string alignment distance between a and b, in bytes:
// Levenshtein's, with a swap of two neighbours ("prdo" for "prod") counted as one edit.
func editDistance(a, b string) int {
	rows := [3][]int{make([]int, len(b)+1), make([]int, len(b)+1), make([]int, len(b)+1)}
	for j := range rows[1] {
		rows[1][j] = j
	}
	for i := 1; i <= len(a); i++ {
		pp, prev, cur := rows[0], rows[1], rows[2]
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], pp[j-2]+1)
			}
		}
		rows[0], rows[1], rows[2] = prev, cur, pp
	}
	return rows[1][len(b)]
}

// hasPrefix reports whether path starts with prefix.
func hasPrefix(path, prefix []any) bool {
	return len(path) >= len(prefix) && slices.Equal(path[:len(prefix)], prefix)
}
