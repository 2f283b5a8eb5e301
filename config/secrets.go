package config

// HasInlineSecrets reports whether the config file itself holds a secret value, so that the
// file deserves the care of a key file. A secret read from a file is not in it, nor one the
// file gives only as ${NAME} references (as the README advises): its value is in the
// environment. A config that did not come from Parse counts every secret it holds.
func (c *Config) HasInlineSecrets() bool {
	for _, f := range c.secretFields() {
		if *f.secret != "" && !c.fromEnv[f.secret] {
			return true
		}
	}
	return false
}

// SecretFiles lists the files the config reads secrets from.
func (c *Config) SecretFiles() []string {
	var files []string
	add := func(f string) {
		if f != "" {
			files = append(files, f)
		}
	}
	for _, a := range c.Accounts {
		cr := a.Credentials
		add(cr.SecretAccessKeyFile)
		add(cr.File)
		if cr.R2TempAPI != nil {
			add(cr.R2TempAPI.APITokenFile)
		}
		if cr.R2TempLocal != nil {
			add(cr.R2TempLocal.ParentSecretAccessKeyFile)
		}
	}
	for _, cl := range c.Clients {
		add(cl.SecretAccessKeyFile)
	}
	return files
}

// KeyFiles lists the files a's key material is read from once, when its credentials are
// set up (not a credentials `file`, which its provider watches itself).
func (a *Account) KeyFiles() []string {
	var files []string
	cr := a.Credentials
	for _, f := range []string{cr.AccessKeyIDFile, cr.SecretAccessKeyFile} {
		if f != "" {
			files = append(files, f)
		}
	}
	if cr.R2TempAPI != nil && cr.R2TempAPI.APITokenFile != "" {
		files = append(files, cr.R2TempAPI.APITokenFile)
	}
	if cr.R2TempLocal != nil && cr.R2TempLocal.ParentSecretAccessKeyFile != "" {
		files = append(files, cr.R2TempLocal.ParentSecretAccessKeyFile)
	}
	return files
}

// Secrets lists every secret value the config holds (not those it reads from files), for
// checks that they never reach a log.
func (c *Config) Secrets() []string {
	var out []string
	for _, f := range c.secretFields() {
		out = append(out, f.secret.Value())
	}
	return out
}

// secretField is a secret setting and its path in the file.
type secretField struct {
	path   []any
	secret *Secret
}

func (c *Config) secretFields() []secretField {
	var out []secretField
	for name, a := range c.Accounts {
		if a == nil {
			continue
		}
		cr := &a.Credentials
		at := func(p ...any) []any { return append([]any{"accounts", name, "credentials"}, p...) }
		out = append(out, secretField{at("secret_access_key"), &cr.SecretAccessKey})
		if cr.R2TempAPI != nil {
			out = append(out, secretField{at("r2_temp_api", "api_token"), &cr.R2TempAPI.APIToken})
		}
		if cr.R2TempLocal != nil {
			out = append(out, secretField{at("r2_temp_local", "parent_secret_access_key"), &cr.R2TempLocal.ParentSecretAccessKey})
		}
	}
	for i, cl := range c.Clients {
		if cl != nil {
			out = append(out, secretField{[]any{"clients", i, "secret_access_key"}, &cl.SecretAccessKey})
		}
	}
	return out
}
