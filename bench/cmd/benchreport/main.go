// Command benchreport turns `go test -bench` output of neolink's benchmark
// suite (several -count runs) into docs/benchmarks.md: medians per benchmark,
// ratios to the reference variants (RTT/tcp-direct, Throughput1MiB/tcp,
// Parallel64/tcp-64conns and the others), allocations, idle-link costs,
// neolink's performance targets marked met or not, the machine, benchstat's
// summary, and an SVG bar chart of the round-trip times.
//
// Usage:
//
//	benchreport [-o docs/benchmarks.md] [-svg docs/bench-rtt.svg] [-benchstat go|off|PATH] [-brief] [file ...]
//
// With no file it reads standard input. -o - writes the report to standard
// output; -svg "" writes no chart; -brief leaves out the hand-written
// section, the variant notes and benchstat (for bench/run.sh quick).
// -benchstat go (the default) runs `go tool benchstat` in the current
// directory, which is bench/ when bench/run.sh calls it: bench/go.mod pins
// benchstat with a tool directive, so no network is needed once the module
// cache holds it. When the report file exists, the section between its
// hand-written markers is carried over into the new report.
// bench/run.sh is the usual caller.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

func main() {
	if err := run(os.Args[1:], os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "benchreport:", err)
		os.Exit(1)
	}
}

func run(args []string, stdin io.Reader, stdout io.Writer) error {
	fs := flag.NewFlagSet("benchreport", flag.ContinueOnError)
	out := fs.String("o", "docs/benchmarks.md", "report file, or - for standard output")
	svgPath := fs.String("svg", "docs/bench-rtt.svg", `RTT chart file ("" for none)`)
	statFlag := fs.String("benchstat", "go", "benchstat to run: go (`go tool benchstat` in the current directory), off, or the path of a binary")
	brief := fs.Bool("brief", false, "leave out the hand-written section, the variant notes and benchstat")
	date := fs.String("date", time.Now().UTC().Format("2006-01-02"), "date shown in the report")
	if err := fs.Parse(args); err != nil {
		return err
	}

	res := NewResults()
	inputs := fs.Args()
	if len(inputs) == 0 {
		if err := res.Parse(stdin); err != nil {
			return fmt.Errorf("standard input: %w", err)
		}
	}
	for _, path := range inputs {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		err = res.Parse(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
	}
	if len(res.Order) == 0 {
		return errors.New("no benchmark results in the input")
	}

	opt := Options{Machine: machine(res, *date), Inputs: relAll(inputs, *out), Brief: *brief}
	if *out != "-" && !*brief {
		prev, err := os.ReadFile(*out)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		opt.HandWritten = HandWritten(string(prev))
	}
	switch {
	case *brief:
	case *statFlag == "off":
		opt.BenchstatNote = "benchstat was not run (-benchstat off)."
	case len(inputs) == 0:
		opt.BenchstatNote = "benchstat was not run: the input came from standard input."
	default:
		opt.Benchstat, opt.BenchstatNote = runBenchstat(*statFlag, inputs)
	}

	if *svgPath != "" {
		var chart strings.Builder
		m := opt.Machine
		sub := fmt.Sprintf("%s, %d cores, %s, %s; median of %s runs", m.CPU, m.Cores, m.Go, m.Date, runsSummaryOf(res, GroupRTT.Members(res)))
		if err := WriteRTTChart(&chart, res, sub); err != nil {
			return err
		}
		if err := os.WriteFile(*svgPath, []byte(chart.String()), 0o644); err != nil {
			return err
		}
		opt.SVG = filepath.ToSlash(*svgPath)
		if *out != "-" {
			if rel, err := filepath.Rel(filepath.Dir(*out), *svgPath); err == nil {
				opt.SVG = filepath.ToSlash(rel)
			}
		}
	}

	if *out == "-" {
		return WriteMarkdown(stdout, res, opt)
	}
	f, err := os.Create(*out)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	if err := WriteMarkdown(w, res, opt); err != nil {
		f.Close()
		return err
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "benchreport: %s → %s\n", res, *out)
	return nil
}

// machine describes this machine, falling back on the "cpu:" line of the
// benchmark output for the CPU model.
func machine(res *Results, date string) Machine {
	cpu := cpuModel()
	if cpu == "" {
		cpu = res.Config["cpu"]
	}
	return Machine{
		CPU:   cpu,
		Cores: runtime.NumCPU(),
		Procs: res.Procs,
		Go:    fmt.Sprintf("%s %s/%s", runtime.Version(), runtime.GOOS, runtime.GOARCH),
		Date:  date,
	}
}

// cpuModel returns the first "model name" of /proc/cpuinfo, or "".
func cpuModel() string {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	return parseCPUInfo(string(data))
}

// parseCPUInfo returns the first "model name" value in cpuinfo text.
func parseCPUInfo(text string) string {
	for line := range strings.Lines(text) {
		key, val, ok := strings.Cut(line, ":")
		if ok && strings.TrimSpace(key) == "model name" {
			return strings.TrimSpace(val)
		}
	}
	return ""
}

// runBenchstat runs benchstat on the input files: `go tool benchstat` for
// flagVal "go", else the binary flagVal. It returns its output, or "" and a
// note saying why there is none.
func runBenchstat(flagVal string, inputs []string) (out, note string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var cmd *exec.Cmd
	if flagVal == "go" {
		cmd = exec.CommandContext(ctx, "go", append([]string{"tool", "benchstat"}, inputs...)...)
	} else {
		cmd = exec.CommandContext(ctx, flagVal, inputs...)
	}
	b, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && len(ee.Stderr) > 0 {
			first, _, _ := strings.Cut(strings.TrimSpace(string(ee.Stderr)), "\n")
			err = fmt.Errorf("%w: %s", err, first)
		}
		return "", fmt.Sprintf("benchstat failed (%v), so this section is omitted. "+
			"`cd bench && go tool benchstat results/full.txt` runs it by hand.", err)
	}
	return string(b), ""
}

// relAll returns the input paths relative to the report's directory when
// possible, for display.
func relAll(paths []string, report string) []string {
	if report == "-" {
		return paths
	}
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i] = p
		abs, err1 := filepath.Abs(p)
		dir, err2 := filepath.Abs(filepath.Dir(report))
		if err1 != nil || err2 != nil {
			continue
		}
		if rel, err := filepath.Rel(dir, abs); err == nil {
			out[i] = filepath.ToSlash(rel)
		}
	}
	return out
}
