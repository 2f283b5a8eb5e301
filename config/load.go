package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Load reads, decodes, expands, defaults and validates the config file at path. The
// returned error lists every problem found, each prefixed with path:line.
func Load(path string) (*Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(path, raw, os.LookupEnv)
}

// Parse is Load on bytes already read; name prefixes error messages and lookupEnv resolves
// ${NAME} references.
func Parse(name string, raw []byte, lookupEnv func(string) (string, bool)) (*Config, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(raw, &root); err != nil {
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		if bytes.Contains(raw, []byte("${")) {
			// YAML reads { and } as flow-mapping brackets: {key: ${X}} needs quotes.
			msg += ` (inside { } or [ ], quote ${VAR} references: "${VAR}")`
		}
		return nil, fmt.Errorf("%s: %s", name, msg)
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
	if err := strict.Decode(&scratch); err != nil {
		if te, ok := errors.AsType[*yaml.TypeError](err); ok {
			for _, msg := range te.Errors {
				if e := keyError(name, msg); e != nil {
					errs = append(errs, e)
				}
			}
		}
	}

	errs = append(errs, expandEnv(name, &root, lookupEnv)...)

	var cfg Config
	if err := root.Decode(&cfg); err != nil {
		te, ok := errors.AsType[*yaml.TypeError](err)
		if !ok {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		for _, msg := range te.Errors {
			if keyError(name, msg) == nil {
				errs = append(errs, lineError(name, msg))
			}
		}
	}
	// Validate even after decoding errors, so that one run reports every problem; a field
	// that failed to decode is left zero and may add a "required" error of its own.
	cfg.ApplyDefaults()
	for _, fe := range cfg.Validate() {
		line := lineOf(&root, fe.Path)
		errs = append(errs, fmt.Errorf("%s:%d: %w", name, line, fe))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return &cfg, nil
}

var (
	unknownKey = regexp.MustCompile(`^line (\d+): field (\S+) (not found|already set) in type \S+$`)
	atLine     = regexp.MustCompile(`^line (\d+): (.*)$`)
)

// keyError rewrites the YAML library's unknown/duplicate key message in signet's terms, or
// returns nil when msg is about something else.
func keyError(name, msg string) error {
	m := unknownKey.FindStringSubmatch(msg)
	if m == nil {
		return nil
	}
	if m[3] == "already set" {
		return fmt.Errorf("%s:%s: key %q is given twice", name, m[1], m[2])
	}
	return fmt.Errorf("%s:%s: unknown key %q", name, m[1], m[2])
}

func lineError(name, msg string) error {
	if m := atLine.FindStringSubmatch(msg); m != nil {
		return fmt.Errorf("%s:%s: %s", name, m[1], m[2])
	}
	return fmt.Errorf("%s: %s", name, msg)
}

var envRef = regexp.MustCompile(`\$\$\{|\$\{([^}]*)\}`)

// expandEnv replaces ${NAME} in every scalar value (never in keys) of the tree.
func expandEnv(name string, n *yaml.Node, lookupEnv func(string) (string, bool)) []error {
	var errs []error
	switch n.Kind {
	case yaml.ScalarNode:
		if !strings.Contains(n.Value, "${") {
			return nil
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
			errs = append(errs, expandEnv(name, n.Content[i], lookupEnv)...)
		}
	default:
		for _, c := range n.Content {
			errs = append(errs, expandEnv(name, c, lookupEnv)...)
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
		var next *yaml.Node
		nextLine := 0
		switch p := p.(type) {
		case string:
			if n.Kind == yaml.MappingNode {
				for i := 0; i+1 < len(n.Content); i += 2 {
					if n.Content[i].Value == p {
						// The key's line: where a reader looks for "accounts.prod".
						next, nextLine = n.Content[i+1], n.Content[i].Line
						break
					}
				}
			}
		case int:
			if n.Kind == yaml.SequenceNode && p >= 0 && p < len(n.Content) {
				next = n.Content[p]
				nextLine = next.Line
			}
		}
		if next == nil {
			return line
		}
		n, line = next, nextLine
	}
	return line
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
