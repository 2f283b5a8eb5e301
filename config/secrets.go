package config

// HasInlineSecrets reports whether the config file itself holds a secret value (rather
// than a reference to a file), so that the file deserves the care of a key file.
func (c *Config) HasInlineSecrets() bool {
	for _, a := range c.Accounts {
		cr := a.Credentials
		if cr.SecretAccessKey != "" ||
			cr.R2TempAPI != nil && cr.R2TempAPI.APIToken != "" ||
			cr.R2TempLocal != nil && cr.R2TempLocal.ParentSecretAccessKey != "" {
			return true
		}
	}
	for _, cl := range c.Clients {
		if cl.SecretAccessKey != "" {
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
