package creds

import (
	"fmt"
	"os"
	"strings"

	"github.com/signet-proxy/signet/config"
)

// FromConfig builds the Provider an account's credentials section describes, reading any
// _file it names. name is the account's name, used in errors.
func FromConfig(name string, c config.Credentials) (Provider, error) {
	id, err := valueOrFile(c.AccessKeyID, c.AccessKeyIDFile)
	if err != nil {
		return nil, fmt.Errorf("account %s: access key id: %w", name, err)
	}
	secret, err := valueOrFile(c.SecretAccessKey.Value(), c.SecretAccessKeyFile)
	if err != nil {
		return nil, fmt.Errorf("account %s: secret access key: %w", name, err)
	}
	return NewStatic(id, secret, ""), nil
}

// valueOrFile returns v, or the trimmed contents of file when v is empty. A secret file
// usually ends in a newline that is not part of the secret.
func valueOrFile(v, file string) (string, error) {
	if v != "" || file == "" {
		return v, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", err // *PathError names the file, never its contents
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("%s is empty", file)
	}
	return s, nil
}
