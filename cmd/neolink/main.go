// Command neolink is the command-line tool of neolink, a Go link layer for
// the NEO network protocol.
//
//	neolink bench [-quick] [-json]
//	neolink serve [-listen ADDR] [-encoding auto|N|M] [-cluster NAME] [-backlog N] ... [-ca F -cert F -key F]
//	neolink ping [-n COUNT | -d DURATION] [-c CONCURRENCY] [-light] [-size SIZE] [-rate R] [-i INTERVAL] [-json] ... ADDR[:PORT]
//	neolink decode [-encoding auto|N|M] [-hex] [FILE|-]
//	neolink info -master ADDR -cluster NAME [-json] [-ca F -cert F -key F]
//	neolink load -master ADDR -cluster NAME [-at TID | -before TID] [-ca F -cert F -key F] OID
//	neolink version
//	neolink help [-all] [COMMAND]
//
// bench compares the round-trip time of NodeLink with plain TCP over
// loopback, serve is a NEO node that answers like a NEO master (for tests
// and interop), ping measures round trips to such a node, decode prints
// the packets of a captured NEO byte stream, and info and load read a live
// NEO cluster (its state, and one object) through package neoclient. Two hidden commands,
// codec-random and codec-echo, let another implementation cross-check its
// codec against ours.
//
// Exit status: 0 on success, 1 on failure, 2 on a command-line error, and
// 128+N when stopped by signal N (130 for Ctrl-C) after printing what was done.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// command is one neolink subcommand.
type command struct {
	name    string
	args    string // positional arguments, for the usage line
	summary string // one line, for the command list
	about   string // a paragraph, for "neolink help NAME"
	hidden  bool   // listed only by "neolink help -all"

	// setup defines the command's flags on fs and returns the function that
	// runs the command with the positional arguments left after parsing.
	setup func(fs *flag.FlagSet) func(args []string) error
}

// commands returns every subcommand, in the order help lists them.
func commands() []*command {
	return []*command{
		benchCommand(),
		serveCommand(),
		pingCommand(),
		decodeCommand(),
		infoCommand(),
		loadCommand(),
		versionCommand(),
		helpCommand(),
		codecRandomCommand(),
		codecEchoCommand(),
	}
}

// lookup returns the command called name, or nil.
func lookup(name string) *command {
	for _, c := range commands() {
		if c.name == name {
			return c
		}
	}
	return nil
}

// usageError is a command-line mistake: it exits with status 2.
type usageError struct{ msg string }

// Error returns the message.
func (e *usageError) Error() string { return e.msg }

// usagef returns a *usageError with a formatted message.
func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// exitError ends a command with a given exit status after its message.
type exitError struct {
	code int
	msg  string
}

// Error returns the message.
func (e *exitError) Error() string { return e.msg }

// main runs the command line and exits with its status.
func main() {
	os.Exit(run(os.Args[1:]))
}

// run executes the command line args (without the program name) and
// returns the exit status.
func run(args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "usage: neolink COMMAND [flags] [args]  (run 'neolink help' for the commands)")
		return 2
	}
	name, rest := args[0], args[1:]
	switch name {
	case "-h", "-help", "--help":
		printCommandList(os.Stdout, false)
		return 0
	}
	cmd := lookup(name)
	if cmd == nil {
		fmt.Fprintf(os.Stderr, "neolink: unknown command %q (run 'neolink help' for the commands)\n", name)
		return 2
	}
	fs := newFlagSet(cmd.name)
	runCmd := cmd.setup(fs)
	pos, err := parseArgs(fs, rest)
	if errors.Is(err, flag.ErrHelp) {
		printCommandHelp(os.Stdout, cmd)
		return 0
	}
	if err == nil {
		err = runCmd(pos)
	}
	return report(cmd.name, err)
}

// report prints err, if any, as one line on stderr and returns the exit
// status it calls for.
func report(name string, err error) int {
	if err == nil {
		return 0
	}
	var ue *usageError
	if errors.As(err, &ue) {
		hint := fmt.Sprintf("see 'neolink help %s'", name)
		if name == "help" {
			hint = "run 'neolink help' for the commands"
		}
		fmt.Fprintf(os.Stderr, "neolink %s: %v (%s)\n", name, err, hint)
		return 2
	}
	fmt.Fprintf(os.Stderr, "neolink %s: %s\n", name, oneLine(err.Error()))
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return 1
}

// oneLine folds runs of whitespace, newlines included, into single spaces.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// newFlagSet returns a silent flag set: parse errors come back as errors
// and are reported on one line by report, instead of flag's usage dump.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// parseArgs parses flags that may come before, between or after the
// positional arguments, which it returns. "--" ends the flags.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, &usageError{msg: err.Error()}
		}
		rest := fs.Args()
		if consumed := args[:len(args)-len(rest)]; len(consumed) > 0 && consumed[len(consumed)-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// printCommandList writes the list of commands; hidden ones only with all.
func printCommandList(w io.Writer, all bool) {
	fmt.Fprint(w, "neolink: tools for the NEO protocol link layer\n\n")
	fmt.Fprint(w, "usage: neolink COMMAND [flags] [args]\n\ncommands:\n")
	for _, c := range commands() {
		if c.hidden && !all {
			continue
		}
		fmt.Fprintf(w, "  %-13s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, "\nRun 'neolink help COMMAND' or 'neolink COMMAND -h' for a command's flags.\n")
}

// printCommandHelp writes a command's usage line, description and flags.
func printCommandHelp(w io.Writer, c *command) {
	fmt.Fprintf(w, "usage: neolink %s", c.name)
	fs := newFlagSet(c.name)
	c.setup(fs)
	hasFlags := false
	fs.VisitAll(func(*flag.Flag) { hasFlags = true })
	if hasFlags {
		fmt.Fprint(w, " [flags]")
	}
	if c.args != "" {
		fmt.Fprintf(w, " %s", c.args)
	}
	fmt.Fprintf(w, "\n\n%s\n", c.about)
	if hasFlags {
		fmt.Fprint(w, "\nflags:\n")
		shown := newFlagSet(c.name)
		fs.VisitAll(func(f *flag.Flag) {
			if !strings.HasPrefix(f.Usage, hiddenFlag) {
				shown.Var(f.Value, f.Name, f.Usage)
			}
		})
		shown.SetOutput(w)
		shown.PrintDefaults()
	}
}

// hiddenFlag starts the usage of a flag that help does not show (test hooks).
const hiddenFlag = "(hidden) "

// helpCommand is "neolink help [-all] [COMMAND]".
func helpCommand() *command {
	return &command{
		name:    "help",
		args:    "[COMMAND]",
		summary: "list the commands, or show one command's flags",
		about:   "Help lists the commands, or shows the usage and flags of COMMAND.",
		setup: func(fs *flag.FlagSet) func([]string) error {
			all := fs.Bool("all", false, "also list the hidden commands (codec cross-check helpers)")
			return func(args []string) error {
				switch len(args) {
				case 0:
					printCommandList(os.Stdout, *all)
					return nil
				case 1:
					c := lookup(args[0])
					if c == nil {
						return usagef("unknown command %q", args[0])
					}
					printCommandHelp(os.Stdout, c)
					return nil
				}
				return usagef("help takes at most one command")
			}
		},
	}
}
