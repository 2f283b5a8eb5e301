package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Load reads, decodes, expands, defaults and validates the config file at path. The
// returned error lists every problem found, each prefixed with path:line.
func Load(path string) (*Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRead, err)
	}
	return Parse(path, raw, os.LookupEnv)
}

// ErrRead marks Load's failure to read the file at all, as opposed to a file with mistakes.
var ErrRead = errors.New("read config")

// Parse is Load on bytes already read; name prefixes error messages and lookupEnv resolves
// ${NAME} references.
func Parse(name string, raw []byte, lookupEnv func(string) (string, bool)) (*Config, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(raw, &root); err != nil {
		return nil, syntaxError(name, raw, err)
	}
	if len(root.Content) == 0 {
		return nil, fmt.Errorf("%s: the file is empty", name)
	}
	var errs []error

	// Pass 1, strict, on the text: only for unknown and repeated keys. Type errors are left
	// to pass 2, which sees values after ${ENV} expansion.
	strict := yaml.NewDecoder(bytes.NewReader(raw))
	strict.KnownFields(true)
	var scratch Config
	var keys []*keyProblem
	repeated := false
	if err := strict.Decode(&scratch); err != nil {
		if te, ok := errors.AsType[*yaml.TypeError](err); ok {
			for _, msg := range te.Errors {
				if kp := keyError(name, &root, msg); kp != nil {
					errs = append(errs, kp.err)
					keys = append(keys, kp)
					repeated = repeated || kp.repeated
				}
			}
		}
	}

	fromEnv := map[*yaml.Node]bool{}
	errs = append(errs, expandEnv(name, &root, lookupEnv, fromEnv)...)

	// taints are the paths that a mistake above left unset or partly set: what Validate
	// says about them would be a follow-on of that one mistake.
	var taints [][]any
	for _, kp := range keys {
		taints = append(taints, kp.taints...)
	}
	var cfg Config
	if err := root.Decode(&cfg); err != nil {
		te, ok := errors.AsType[*yaml.TypeError](err)
		if !ok {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		at := indexNodes(&root)
		for _, msg := range te.Errors {
			if keyError(name, &root, msg) == nil {
				e, path, found := at.typeError(name, msg)
				errs = append(errs, e)
				if found {
					taints = append(taints, path)
				}
			}
		}
	}
	// Validate even after decoding errors, so that one run reports every problem, but
	// leave out what the mistakes already reported imply. A repeated key leaves its
	// whole mapping undecoded: there is nothing sound to validate.
	cfg.ApplyDefaults()
	if !repeated {
		for _, fe := range cfg.Validate() {
			if followOn(fe, taints, keys) {
				continue
			}
			line := lineOf(&root, fe.Path)
			errs = append(errs, fmt.Errorf("%s:%d: %w", name, line, fe))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	cfg.fromEnv = map[*Secret]bool{}
	for _, f := range cfg.secretFields() {
		if fromEnv[nodeAt(&root, f.path)] {
			cfg.fromEnv[f.secret] = true
		}
	}
	return &cfg, nil
}

// atLine matches the YAML library's messages, and nodeError's, which add a column.
var atLine = regexp.MustCompile(`^line (\d+): (?:column (\d+): )?(.*)$`)

// followOn reports whether fe only restates a mistake already reported: it is about a
// path that mistake left unset, names the key a misspelt one was meant to be, or checks
// a bucket's account against accounts that did not decode.
func followOn(fe *FieldError, taints [][]any, keys []*keyProblem) bool {
	for _, t := range taints {
		if hasPrefix(fe.Path, t) || hasPrefix([]any{"accounts"}, t) && errors.Is(fe.Err, errUnknownAccount) {
			return true
		}
	}
	for _, kp := range keys {
		if kp.meant != "" && slices.Equal(fe.Path, kp.parent) && strings.Contains(fe.Err.Error(), kp.meant) {
			return true
		}
	}
	return false
}

// nodeError is how an UnmarshalYAML method reports a bad value: as a *yaml.TypeError, which
// the decoder collects before going on to the rest of the file (any other error stops it),
// in the library's "line N: " form plus the column, which typeError turns into the path.
func nodeError(n *yaml.Node, format string, args ...any) error {
	msg := fmt.Sprintf("line %d: column %d: %s", n.Line, n.Column, fmt.Sprintf(format, args...))
	return &yaml.TypeError{Errors: []string{msg}}
}

// describeNode names a value in an error message: the text of a scalar, the kind of
// anything else.
func describeNode(n *yaml.Node) string {
	switch n.Kind {
	case yaml.ScalarNode:
		return strconv.Quote(n.Value)
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	default:
		return "this value"
	}
}

// nodeIndex holds the path of every node of a file by position, because the YAML library
// reports a type error by line only (and nodeError by line and column).
type nodeIndex struct {
	at     map[[2]int][]any // line and column: the deepest node starting there
	byLine map[int][][]any
}

func indexNodes(root *yaml.Node) *nodeIndex {
	x := &nodeIndex{at: map[[2]int][]any{}, byLine: map[int][][]any{}}
	n := root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	if n.Kind != yaml.MappingNode {
		// A root mapping starts where its first key does, and a type error is never about
		// it; any other root is the error.
		x.add(n, nil)
	}
	x.walk(n, nil)
	return x
}

func (x *nodeIndex) add(n *yaml.Node, path []any) {
	pos := [2]int{n.Line, n.Column}
	if old, ok := x.at[pos]; !ok || len(path) > len(old) {
		x.at[pos] = path
	}
	x.byLine[n.Line] = append(x.byLine[n.Line], path)
}

func (x *nodeIndex) walk(n *yaml.Node, path []any) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			p := append(slices.Clip(path), n.Content[i].Value)
			x.add(n.Content[i], p)
			x.add(n.Content[i+1], p)
			x.walk(n.Content[i+1], p)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			p := append(slices.Clip(path), i)
			x.add(c, p)
			x.walk(c, p)
		}
	}
}

// pathOf is the path of the node at line and column, or without a column (0) the deepest
// path shared by every node starting on the line: the value's own, or an ancestor's when a
// line holds several values ({name: a, ttl: 1h}).
func (x *nodeIndex) pathOf(line, column int) []any {
	if p, ok := x.at[[2]int{line, column}]; ok {
		return p
	}
	paths := x.byLine[line]
	if len(paths) == 0 {
		return nil
	}
	common := paths[0]
	for _, p := range paths[1:] {
		n := 0
		for n < len(common) && n < len(p) && common[n] == p[n] {
			n++
		}
		common = common[:n]
	}
	return common
}

// typeError rewrites a "line N: " type error of the YAML library, or nodeError's, as
// "name:N: path: message", and returns the path, found reporting whether there is one
// (nil for the root).
func (x *nodeIndex) typeError(name, msg string) (err error, path []any, found bool) {
	m := atLine.FindStringSubmatch(msg)
	if m == nil {
		return fmt.Errorf("%s: %s", name, decodeError(msg)), nil, false
	}
	line, _ := strconv.Atoi(m[1])
	column, _ := strconv.Atoi(m[2]) // 0 when there is none
	text := decodeError(m[3])
	if p := x.pathOf(line, column); len(p) > 0 {
		return fmt.Errorf("%s:%d: %s: %s", name, line, formatPath(p), text), p, true
	}
	if text != m[3] && strings.Contains(m[3], "config.Config") {
		return fmt.Errorf("%s:%d: the file %s", name, line, strings.Replace(text, "must be a mapping of settings", "must be a mapping of settings (listen:, accounts:, buckets: ...)", 1)), nil, true
	}
	return fmt.Errorf("%s:%d: %s", name, line, text), nil, false
}

// parserProblems are the problems of yaml.v3's parser (parserc.go). Their "line N" is
// 0-based, and absent for the first line: the library adds 1 only to its scanner's lines
// (decode.go, parser.fail).
var parserProblems = []string{
	"did not find expected ',' or ']'",
	"did not find expected ',' or '}'",
	"did not find expected '-' indicator",
	"did not find expected <document start>",
	"did not find expected <stream-start>",
	"did not find expected key",
	"did not find expected node content",
	"found duplicate %TAG directive",
	"found duplicate %YAML directive",
	"found incompatible YAML document",
	"found undefined tag handle",
}

// syntaxError rewrites the YAML library's syntax error as "name:N: problem".
func syntaxError(name string, raw []byte, err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if m := atLine.FindStringSubmatch(msg); m != nil && m[2] == "" {
		line, _ = strconv.Atoi(m[1])
		msg = m[3]
	}
	switch {
	case slices.Contains(parserProblems, msg):
		line++
	case line == 0 && (strings.HasPrefix(msg, "found ") || strings.Contains(msg, "find expected")):
		line = 1 // the scanner's, on the first line; other problems have no line at all
	}
	if line == 0 {
		return fmt.Errorf("%s: %s", name, msg)
	}
	lines := bytes.Split(bytes.TrimSuffix(raw, []byte("\n")), []byte("\n"))
	line = min(line, len(lines)) // a problem at the end of the file is on its last line
	if strings.HasPrefix(msg, "did not find expected ',' or ") && bytes.Contains(lines[line-1], []byte("${")) {
		// In { } and [ ], YAML ends a plain value at "{", so {key: ${X}} is a syntax error.
		msg += ` (inside { } or [ ], quote ${VAR} references: "${VAR}")`
	}
	return fmt.Errorf("%s:%d: %s", name, line, msg)
}

var envRef = regexp.MustCompile(`\$\$\{|\$\{([^}]*)\}`)

// expandEnv replaces ${NAME} in every scalar value (never in keys) of the tree, and adds to
// fromEnv the values that are nothing but references: the file does not hold their text.
func expandEnv(name string, n *yaml.Node, lookupEnv func(string) (string, bool), fromEnv map[*yaml.Node]bool) []error {
	var errs []error
	switch n.Kind {
	case yaml.ScalarNode:
		if !strings.Contains(n.Value, "${") {
			return nil
		}
		if envRef.ReplaceAllStringFunc(n.Value, func(ref string) string {
			if ref == "$${" {
				return ref // a literal "${" is text of the file
			}
			return ""
		}) == "" {
			fromEnv[n] = true
		}
		n.Value = envRef.ReplaceAllStringFunc(n.Value, func(ref string) string {
			if ref == "$${" {
				return "${"
			}
			v := ref[2 : len(ref)-1]
			if !validEnvName(v) {
				errs = append(errs, fmt.Errorf("%s:%d: %q is not a valid environment variable reference", name, n.Line, ref))
				return ref
			}
			val, ok := lookupEnv(v)
			if !ok {
				errs = append(errs, fmt.Errorf("%s:%d: environment variable %s is not set", name, n.Line, v))
				return ref // not "": one error, not a second one about an empty value
			}
			return val
		})
		// An expanded value is a plain string whatever it looks like: "${PORT}" stays
		// a string even when PORT=9000, and decodes into whatever the field wants.
		if n.Tag == "" || n.Tag == "!!str" {
			n.Tag = ""
			n.Style = 0
		}
	case yaml.MappingNode:
		for i := 1; i < len(n.Content); i += 2 {
			errs = append(errs, expandEnv(name, n.Content[i], lookupEnv, fromEnv)...)
		}
	default:
		for _, c := range n.Content {
			errs = append(errs, expandEnv(name, c, lookupEnv, fromEnv)...)
		}
	}
	return errs
}

func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if r == '_' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || i > 0 && r >= '0' && r <= '9' {
			continue
		}
		return false
	}
	return true
}

// lineOf finds the line of the node at path (keys and sequence indexes), or of its closest
// existing ancestor.
func lineOf(root *yaml.Node, path []any) int {
	n := root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := n.Line
	for _, p := range path {
		next, nextLine := child(n, p)
		if next == nil {
			return line
		}
		n, line = next, nextLine
	}
	return line
}

// nodeAt is the node at path, through aliases, or nil.
func nodeAt(root *yaml.Node, path []any) *yaml.Node {
	n := root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	for _, p := range path {
		if n.Kind == yaml.AliasNode {
			n = n.Alias
		}
		if n, _ = child(n, p); n == nil {
			return nil
		}
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

// child is the node at key or index p of n, or nil, and the line a reader looks for it at.
func child(n *yaml.Node, p any) (*yaml.Node, int) {
	switch p := p.(type) {
	case string:
		if n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == p {
					// The key's line: where a reader looks for "accounts.prod".
					return n.Content[i+1], n.Content[i].Line
				}
			}
		}
	case int:
		if n.Kind == yaml.SequenceNode && p >= 0 && p < len(n.Content) {
			return n.Content[p], n.Content[p].Line
		}
	}
	return nil, 0
}

// FieldError is a validation problem at a path in the config.
type FieldError struct {
	Path []any // string keys and int indexes
	Err  error
}

func (e *FieldError) Error() string { return formatPath(e.Path) + ": " + e.Err.Error() }
func (e *FieldError) Unwrap() error { return e.Err }

func formatPath(path []any) string {
	var b strings.Builder
	for _, p := range path {
		switch p := p.(type) {
		case int:
			b.WriteString("[" + strconv.Itoa(p) + "]")
		default:
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			fmt.Fprint(&b, p)
		}
	}
	return b.String()
}
