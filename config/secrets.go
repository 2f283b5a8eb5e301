package config

// HasInlineSecrets reports whether the config file itself holds a secret value (rather
// than a reference to a file), so that the file deserves the care of a key file.
func (c *Config) HasInlineSecrets() bool {
	for _, s := range c.Secrets() {
		if s != "" {
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

// Secrets lists every secret value the config holds (not those it reads from files), for
// checks that they never reach a log.
func (c *Config) Secrets() []string {
	var out []string
	for _, a := range c.Accounts {
		cr := a.Credentials
		out = append(out, cr.SecretAccessKey.Value())
		if cr.R2TempAPI != nil {
			out = append(out, cr.R2TempAPI.APIToken.Value())
		}
		if cr.R2TempLocal != nil {
			out = append(out, cr.R2TempLocal.ParentSecretAccessKey.Value())
		}
	}
	for _, cl := range c.Clients {
		out = append(out, cl.SecretAccessKey.Value())
	}
	return out
}
