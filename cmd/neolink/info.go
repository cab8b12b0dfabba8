package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/bits"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/neolink/neolink/neoclient"
	"github.com/neolink/neolink/proto"
)

// clusterFlags are the flags info and load share: where the cluster is and
// how to reach it.
type clusterFlags struct {
	master, cluster string
	timeout         time.Duration
	tls             tlsFlags
}

// register defines the flags on fs.
func (f *clusterFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.master, "master", "", "`ADDR` (host:port) of the cluster's primary master (required)")
	fs.StringVar(&f.cluster, "cluster", "", "cluster `NAME` the nodes were started with (required)")
	fs.DurationVar(&f.timeout, "timeout", 30*time.Second, "give up after `DURATION`")
	f.tls.register(fs)
}

// dial checks the flags and connects to the cluster. The returned cancel
// ends the -timeout context.
func (f *clusterFlags) dial() (*neoclient.Client, context.Context, context.CancelFunc, error) {
	if f.master == "" || f.cluster == "" {
		return nil, nil, nil, usagef("-master and -cluster are required")
	}
	if f.timeout <= 0 {
		return nil, nil, nil, usagef("-timeout must be positive")
	}
	tlsCfg, err := f.tls.config()
	if err != nil {
		return nil, nil, nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), f.timeout)
	c, err := neoclient.Dial(ctx, f.master, f.cluster, &neoclient.Options{TLS: tlsCfg})
	if err != nil {
		cancel()
		return nil, nil, nil, err
	}
	return c, ctx, cancel, nil
}

// infoCommand is "neolink info".
func infoCommand() *command {
	return &command{
		name:    "info",
		summary: "show a NEO cluster's state, nodes, partition table and last transaction",
		about: `Info connects to a NEO cluster's primary master as a read-only client and
prints the cluster state, every node the master knows (id, type, state,
address), a summary of the partition table (cells per storage and state,
partitions that have a readable cell) and the last committed transaction.
With -json the same is one JSON object.`,
		setup: func(fs *flag.FlagSet) func([]string) error {
			var f clusterFlags
			f.register(fs)
			asJSON := fs.Bool("json", false, "print one JSON object")
			return func(args []string) error {
				if len(args) != 0 {
					return usagef("unexpected argument %q", args[0])
				}
				c, ctx, cancel, err := f.dial()
				if err != nil {
					return err
				}
				defer cancel()
				defer c.Close()
				info, err := gatherInfo(ctx, c, f.cluster, f.master)
				if err != nil {
					return err
				}
				if *asJSON {
					enc := json.NewEncoder(os.Stdout)
					enc.SetIndent("", "  ")
					return enc.Encode(info)
				}
				return info.print(os.Stdout)
			}
		},
	}
}

// clusterInfo is what info prints; its JSON form is the -json output.
type clusterInfo struct {
	Cluster     string     `json:"cluster"`
	State       string     `json:"state"`
	Master      string     `json:"master"`
	ClientID    string     `json:"client_id"`
	LastTID     string     `json:"last_tid"`
	LastTIDTime string     `json:"last_tid_time"`
	Nodes       []nodeInfo `json:"nodes"`
	PT          ptInfo     `json:"partition_table"`
}

// nodeInfo is one node of the master's node list.
type nodeInfo struct {
	ID      string `json:"id"`
	Type    string `json:"type"`
	State   string `json:"state"`
	Address string `json:"address,omitempty"`
}

// ptInfo summarizes the partition table.
type ptInfo struct {
	PTID       *uint64                   `json:"ptid"`
	Partitions int                       `json:"partitions"`
	Replicas   uint32                    `json:"replicas"`
	Readable   int                       `json:"readable_partitions"`
	Cells      map[string]map[string]int `json:"cells"` // node id -> cell state -> count
}

// gatherInfo asks c for everything info prints.
func gatherInfo(ctx context.Context, c *neoclient.Client, cluster, master string) (*clusterInfo, error) {
	info := &clusterInfo{Cluster: cluster, Master: master, ClientID: c.NodeID().String(), State: "unknown"}
	state, ok, err := c.ClusterState(ctx)
	if err != nil {
		return nil, err
	}
	if ok {
		info.State = state.String()
	}
	tid, err := c.LastTransaction(ctx)
	if err != nil {
		return nil, err
	}
	info.LastTID = tid.String()
	if t, ok := tidTime(tid); ok {
		info.LastTIDTime = t.Format("2006-01-02 15:04:05.000000 UTC")
	}
	nodes := c.Nodes()
	running := map[proto.NodeID]bool{}
	for _, n := range nodes {
		ni := nodeInfo{ID: n.UUID.V.String(), Type: n.Type.String(), State: n.State.String()}
		if n.Address.Valid {
			ni.Address = net.JoinHostPort(n.Address.V.Host, strconv.Itoa(int(n.Address.V.Port)))
		}
		running[n.UUID.V] = n.State == proto.NodeRunning
		info.Nodes = append(info.Nodes, ni)
	}
	pt := c.PartitionTable()
	info.PT = ptInfo{Partitions: len(pt.Rows), Replicas: pt.NumReplicas, Cells: map[string]map[string]int{}}
	if pt.PTID.Valid {
		info.PT.PTID = &pt.PTID.V
	}
	for _, row := range pt.Rows {
		readable := false
		for _, cell := range row {
			id := cell.UUID.String()
			if info.PT.Cells[id] == nil {
				info.PT.Cells[id] = map[string]int{}
			}
			info.PT.Cells[id][cell.State.String()]++
			if (cell.State == proto.CellUpToDate || cell.State == proto.CellFeeding) && running[cell.UUID] {
				readable = true
			}
		}
		if readable {
			info.PT.Readable++
		}
	}
	return info, nil
}

// print writes the human-readable form.
func (info *clusterInfo) print(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "cluster\t%s\n", info.Cluster)
	fmt.Fprintf(tw, "state\t%s\n", info.State)
	last := info.LastTID
	if info.LastTIDTime != "" {
		last += "  (" + info.LastTIDTime + ")"
	}
	fmt.Fprintf(tw, "last tid\t%s\n", last)
	fmt.Fprintf(tw, "master\t%s (we are %s)\n", info.Master, info.ClientID)
	tw.Flush()
	fmt.Fprintf(w, "\nnodes (%d):\n", len(info.Nodes))
	for _, n := range info.Nodes {
		addr := n.Address
		if addr == "" {
			addr = "-"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", n.ID, n.Type, n.State, addr)
	}
	tw.Flush()
	ptid := "none"
	if info.PT.PTID != nil {
		ptid = strconv.FormatUint(*info.PT.PTID, 10)
	}
	fmt.Fprintf(w, "\npartition table: ptid %s, %d partitions, %d replicas, %d/%d partitions readable\n",
		ptid, info.PT.Partitions, info.PT.Replicas, info.PT.Readable, info.PT.Partitions)
	ids := make([]string, 0, len(info.PT.Cells))
	for id := range info.PT.Cells {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		var parts []string
		states := make([]string, 0, len(info.PT.Cells[id]))
		for s := range info.PT.Cells[id] {
			states = append(states, s)
		}
		sort.Strings(states)
		for _, s := range states {
			parts = append(parts, fmt.Sprintf("%d %s", info.PT.Cells[id][s], s))
		}
		fmt.Fprintf(tw, "  %s\t%s\n", id, strings.Join(parts, ", "))
	}
	return tw.Flush()
}

// tidTime decodes the time in a NEO/ZODB tid: the high 32 bits count the
// minutes since 1900-01-01 UTC with 31-day months and 12-month years, the low
// 32 bits the fraction of that minute in units of 60/2^32 s. ok is false for
// a value that is not such a time (e.g. the zero tid of an empty database).
func tidTime(tid proto.Tid) (t time.Time, ok bool) {
	if tid == 0 {
		return time.Time{}, false
	}
	hi, lo := uint64(tid)>>32, uint64(tid)&0xffffffff
	minute := hi % 60
	hi /= 60
	hour := hi % 24
	hi /= 24
	day := hi%31 + 1
	hi /= 31
	month := hi%12 + 1
	year := hi/12 + 1900
	h, l := bits.Mul64(lo, 60e9) // lo*60e9 overflows 64 bits
	ns := h<<32 | l>>32
	t = time.Date(int(year), time.Month(month), int(day), int(hour), int(minute), 0, int(ns), time.UTC)
	return t, t.Day() == int(day) // a 31st of a 30-day month is not a time
}
