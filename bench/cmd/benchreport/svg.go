package main

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
)

// Chart geometry, in SVG user units (pixels).
const (
	chartW     = 840
	labelW     = 170 // variant names, right-aligned at labelW
	valueW     = 170 // value text right of the plot
	plotX0     = labelW + 10
	plotW      = chartW - plotX0 - valueW
	chartTop   = 84 // title, subtitle, legend, reference label
	rowH       = 24
	barH       = 14
	axisH      = 40
	colorRef   = "#8c8c8c"
	colorLink  = "#2b7bba"
	colorOther = "#e08a2e"
	colorBase  = "#c0392b" // reference line
)

// barColor colors a variant by family: reference transports, NodeLink, other
// multiplexers.
func barColor(variant string) string {
	switch {
	case strings.HasPrefix(variant, "link-"):
		return colorLink
	case strings.HasPrefix(variant, "tcp") || strings.HasPrefix(variant, "pipe"):
		return colorRef
	}
	return colorOther
}

// WriteRTTChart writes a horizontal bar chart of the median round trip of
// every RTT variant in res, with a min–max whisker over the runs and a dashed
// line at the tcp-direct reference. subtitle is shown under the title.
func WriteRTTChart(w io.Writer, res *Results, subtitle string) error {
	type row struct {
		name        string
		med, lo, hi float64 // µs
		ratio       float64
		haveRatio   bool
	}
	var rows []row
	for _, n := range GroupRTT.Members(res) {
		vs := res.Values(n, "ns/op")
		m, ok := median(vs)
		if !ok {
			continue
		}
		r, rok := GroupRTT.Ratio(res, n)
		rows = append(rows, row{strings.TrimPrefix(n, GroupRTT.Prefix), m / 1e3, slices.Min(vs) / 1e3, slices.Max(vs) / 1e3, r, rok})
	}
	maxV := 0.0
	for _, r := range rows {
		maxV = max(maxV, r.hi)
	}
	step := niceStep(maxV / 5)
	xmax := math.Max(step, math.Ceil(maxV/step)*step)
	x := func(us float64) float64 { return plotX0 + us/xmax*plotW }
	height := chartTop + max(len(rows), 1)*rowH + axisH

	var b bytes.Buffer
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n",
		chartW, height, chartW, height)
	p(`<rect width="100%%" height="100%%" fill="#ffffff"/>` + "\n")
	p(`<text x="%d" y="20" font-size="15" font-weight="bold">%s</text>`+"\n", 10, esc("BenchmarkRTT: median round trip over loopback (lower is better); *-4KiB: 4 KiB answers"))
	p(`<text x="%d" y="38" fill="#555">%s</text>`+"\n", 10, esc(subtitle))
	lx := 10
	for _, l := range []struct{ color, label string }{
		{colorRef, "plain TCP / net.Pipe"}, {colorLink, "NodeLink"}, {colorOther, "yamux / smux"},
	} {
		p(`<rect x="%d" y="50" width="12" height="12" fill="%s"/><text x="%d" y="60">%s</text>`+"\n", lx, l.color, lx+16, esc(l.label))
		lx += 30 + 7*len(l.label)
	}
	p(`<text x="%d" y="60" fill="#555">whisker: min–max of runs</text>`+"\n", lx+10)

	// Grid and axis.
	plotBottom := chartTop + len(rows)*rowH
	for t := 0.0; t <= xmax*(1+1e-9); t += step {
		xt := x(t)
		p(`<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#e3e3e3"/>`+"\n", xt, chartTop-4, xt, plotBottom)
		p(`<text x="%.1f" y="%d" text-anchor="middle" fill="#555">%s</text>`+"\n", xt, plotBottom+16, esc(tickLabel(t)))
	}
	p(`<text x="%d" y="%d" text-anchor="middle" fill="#555">µs per round trip</text>`+"\n", plotX0+plotW/2, plotBottom+32)

	for i, r := range rows {
		y := chartTop + i*rowH
		cy := float64(y) + rowH/2.0
		p(`<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", labelW, cy+4, esc(r.name))
		p(`<rect x="%d" y="%.1f" width="%.1f" height="%d" fill="%s"><title>%s</title></rect>`+"\n",
			plotX0, cy-barH/2.0, math.Max(x(r.med)-plotX0, 0.5), barH, barColor(r.name), esc(fmt.Sprintf("%s: %.2f µs", r.name, r.med)))
		if r.hi > r.lo {
			x1, x2 := x(r.lo), x(r.hi)
			p(`<path d="M%.1f %.1fH%.1fM%.1f %.1fV%.1fM%.1f %.1fV%.1f" stroke="#222" fill="none"/>`+"\n",
				x1, cy, x2, x1, cy-4, cy+4, x2, cy-4, cy+4)
		}
		val := formatNs(r.med * 1e3)
		if r.haveRatio {
			val += fmt.Sprintf(" · %.2f×", r.ratio)
		}
		p(`<text x="%d" y="%.1f">%s</text>`+"\n", plotX0+plotW+8, cy+4, esc(val))
	}

	if base, ok := res.Median(GroupRTT.Base, GroupRTT.Unit); ok {
		xb := x(base / 1e3)
		p(`<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="%s" stroke-width="1.5" stroke-dasharray="5 3"/>`+"\n",
			xb, chartTop-4, xb, plotBottom, colorBase)
		p(`<text x="%.1f" y="%d" fill="%s" font-size="10" text-anchor="middle">%s</text>`+"\n", xb, chartTop-8, colorBase, esc(strings.TrimPrefix(GroupRTT.Base, GroupRTT.Prefix)))
	}
	p("</svg>\n")
	_, err := w.Write(b.Bytes())
	return err
}

// niceStep returns the smallest of 1, 2, 2.5 or 5 × 10^k that is ≥ v (1 for v ≤ 0).
func niceStep(v float64) float64 {
	if v <= 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*p >= v*(1-1e-9) {
			return m * p
		}
	}
	return 10 * p
}

// tickLabel formats an axis value without trailing zeros.
func tickLabel(v float64) string {
	return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.2f", v), "0"), ".")
}

func esc(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}
