package main

import (
	"flag"
	"fmt"
	"io"
)

// newFlagSet is a command's flag set whose -h prints what the command does and its flags,
// instead of the flag package's bare "Usage of serve:".
func newFlagSet(name, synopsis, summary string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: signet %s %s\n\n%s\n\nFlags:\n", name, synopsis, summary)
		fs.PrintDefaults()
	}
	return fs
}
