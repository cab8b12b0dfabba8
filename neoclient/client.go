// Package neoclient is a small read-only client of a NEO cluster (NEO/py
// master and storage nodes), written on top of neonet's public API. It is
// both what `neolink info` and `neolink load` use and an example of how a Go
// program embeds neonet to talk to real NEO nodes.
//
// What it does, in the order a NEO client does it:
//
//  1. Dial the primary master with the M encoding (NEO/py's msgpack stream)
//     and identify as a CLIENT: RequestIdentification(CLIENT, nil, nil,
//     cluster, nil, {}) answered by AcceptIdentification, which assigns our
//     node id.
//  2. Read what the master sends on its own message ids right after:
//     NotifyNodeInformation (every node, ours included with the
//     id_timestamp the storages will check) and SendPartitionTable; later
//     NotifyNodeInformation and NotifyPartitionChanges updates and, after
//     every commit, InvalidateObjects.
//  3. AskLastTransaction to the master.
//  4. For an object: take the partition table row oid % partitions, pick a
//     readable cell (UP_TO_DATE or FEEDING) whose storage is RUNNING, dial
//     it and identify with our node id and id_timestamp, then AskObject
//     (latest, at a serial, or before a tid).
//  5. Check the answer as NEO/py's client does: the checksum is the SHA-1 of
//     the data bytes as they travel (compressed, if compression is 1), and
//     compression 1 means zlib.
//
// Errors of the storage (OID_NOT_FOUND: the object exists but not at the
// asked point; OID_DOES_NOT_EXIST: it never existed) come back as
// *proto.Error. Everything else is prefixed "neoclient: ".
//
// A Client is safe for concurrent use. It does not write to the database.
package neoclient

import (
	"bytes"
	"compress/zlib"
	"context"
	"crypto/sha1"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sort"
	"strconv"
	"sync"

	"github.com/neolink/neolink/neonet"
	"github.com/neolink/neolink/proto"
)

// Options configure Dial. The zero value (or nil) is a plain TCP client.
type Options struct {
	// TLS, if set, runs TLS under every link, to the master and to the
	// storages, as a NEO/py node started with ca/cert/key expects. See
	// neonet.TLSConfig.
	TLS *tls.Config

	// OnInvalidation, if set, is called with every InvalidateObjects the
	// master sends (one per committed transaction). It runs on the goroutine
	// that reads the master's notifications, so it must not block: nothing
	// else from the master is processed meanwhile.
	OnInvalidation func(tid proto.Tid, oids []proto.Oid)
}

// Client is a connection to a NEO cluster: one link to the primary master,
// and one link per storage node it has read from. Its methods are safe for
// concurrent use; Close ends every link.
type Client struct {
	cluster string
	cfg     *neonet.Config
	onInval func(proto.Tid, []proto.Oid)
	master  *neonet.NodeLink

	masterID proto.NodeID // the master's own node id
	myID     proto.NodeID // given by the master in AcceptIdentification

	mu          sync.Mutex
	nodes       map[proto.NodeID]proto.NodeInfo
	pt          PartitionTable
	havePT      bool
	idTimestamp proto.Opt[float64]
	received    map[string]int // master packets by name, and "decode error"
	ready       chan struct{}
	readyClosed bool
	err         error // why the master link ended, once it has
	storages    map[proto.NodeID]*storageLink
	closed      bool
	done        chan struct{} // closed when the notification loop returns
}

// storageLink is a link to one storage, dialed once on first use. link and
// err are set before done is closed and never change after.
type storageLink struct {
	done chan struct{}
	link *neonet.NodeLink
	err  error
}

// PartitionTable is the master's partition table: Rows[i] lists the cells of
// partition i, which holds the oids and tids equal to i modulo len(Rows).
type PartitionTable struct {
	PTID        proto.Opt[uint64]
	NumReplicas uint32
	Rows        [][]proto.CellInfo
}

// Object is one revision of an object as a storage returned it, after the
// checksum was verified and the data decompressed.
type Object struct {
	OID         proto.Oid
	Serial      proto.Tid            // the revision's tid
	NextSerial  proto.Opt[proto.Tid] // the next revision's tid, if any
	DataSerial  proto.Opt[proto.Tid] // set when the revision points at an older one's data (undo)
	Compression int64                // 0: stored as is, 1: zlib
	Checksum    []byte               // SHA-1 of the stored (possibly compressed) bytes
	StoredSize  int                  // length of the stored bytes
	Data        []byte               // the object's data, decompressed
	Storage     proto.NodeID         // the storage node that answered
}

// ErrNoData is returned by Load for a revision that has no data: an undone
// object creation (NEO stores it with an empty data and an all-zero checksum).
var ErrNoData = errors.New("neoclient: object creation was undone (no data)")

// zeroHash is NEO's checksum of "no data".
var zeroHash [sha1.Size]byte

// Dial connects to the primary master at addr, identifies as a client of the
// named cluster, and returns once the master has sent the node list (with
// our own node) and the partition table. ctx bounds all of it. A secondary
// master refuses clients (it sends NotPrimaryMaster and closes), so addr
// must be the primary's.
func Dial(ctx context.Context, addr, cluster string, opt *Options) (*Client, error) {
	if opt == nil {
		opt = &Options{}
	}
	cfg := neonet.DefaultConfig()
	cfg.Encoding = proto.EncodingM // NEO/py speaks only the msgpack stream
	cfg.TLS = opt.TLS
	cfg.AnswerPing = true // NEO/py uses Ping as a barrier; answer it even between reads
	link, err := neonet.DialLink(ctx, "tcp", addr, cfg)
	if err != nil {
		return nil, fmt.Errorf("neoclient: dial master: %w", err)
	}
	c := &Client{
		cluster:  cluster,
		cfg:      cfg,
		onInval:  opt.OnInvalidation,
		master:   link,
		nodes:    make(map[proto.NodeID]proto.NodeInfo),
		ready:    make(chan struct{}),
		storages: make(map[proto.NodeID]*storageLink),
		received: make(map[string]int),
		done:     make(chan struct{}),
	}
	var accept proto.AcceptIdentification
	if err := c.identify(ctx, link, proto.None[proto.NodeID](), proto.None[float64](), &accept); err != nil {
		link.Close()
		return nil, fmt.Errorf("neoclient: identify to master %s: %w", addr, err)
	}
	if accept.NodeType != proto.Master || !accept.YourUUID.Valid || !accept.UUID.Valid {
		link.Close()
		return nil, fmt.Errorf("neoclient: %s is not a primary master: it identified as %v %v, and gave us node id %v",
			addr, accept.NodeType, optString(accept.UUID), optString(accept.YourUUID))
	}
	c.masterID, c.myID = accept.UUID.V, accept.YourUUID.V
	go c.readNotifications()
	select {
	case <-c.ready:
	case <-ctx.Done():
		c.Close()
		return nil, fmt.Errorf("neoclient: waiting for the node list and partition table from %s: %w", addr, ctx.Err())
	}
	c.mu.Lock()
	err = c.err
	c.mu.Unlock()
	if err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// identify sends RequestIdentification on a new conn of link and reads the
// answer into accept.
func (c *Client) identify(ctx context.Context, link *neonet.NodeLink, uuid proto.Opt[proto.NodeID], ts proto.Opt[float64], accept *proto.AcceptIdentification) error {
	conn, err := link.NewConn()
	if err != nil {
		return err
	}
	defer conn.Close()
	req := &proto.RequestIdentification{
		NodeType:    proto.Client,
		UUID:        uuid,
		Name:        c.cluster,
		IDTimestamp: ts,
	}
	return conn.AskContext(ctx, req, accept)
}

// readNotifications reads what the master sends on its own ids until the
// link ends. Every notification arrives on a fresh id, so each is one
// accepted conn with one packet.
func (c *Client) readNotifications() {
	defer close(c.done)
	for {
		conn, err := c.master.Accept()
		if err != nil {
			c.fail(fmt.Errorf("neoclient: master link: %w", err))
			return
		}
		msg, err := conn.Recv()
		if err == nil {
			err = c.handle(conn, msg)
		}
		conn.Close()
		if err != nil {
			var ce *neonet.ConnError
			if errors.As(err, &ce) && ce.Op == "decode" {
				c.mu.Lock()
				c.received[DecodeErrorKey]++
				c.mu.Unlock()
				continue // one bad notification; the link is still in sync
			}
			c.fail(fmt.Errorf("neoclient: master link: %w", err))
			c.master.Close()
			return
		}
	}
}

// fail records why the client can no longer follow the master and wakes
// Dial if it is still waiting.
func (c *Client) fail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil {
		c.err = err
	}
	c.markReady()
}

// markReady closes c.ready once. c.mu must be held.
func (c *Client) markReady() {
	if !c.readyClosed {
		c.readyClosed = true
		close(c.ready)
	}
}

// handle applies one message from the master. Requests other than Ping
// (answered by the link) get a PROTOCOL_ERROR, as NEO/py answers packets a
// handler does not expect.
func (c *Client) handle(conn *neonet.Conn, msg proto.Msg) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.received[proto.Name(msg)]++
	switch m := msg.(type) {
	case *proto.NotifyNodeInformation:
		for _, n := range m.NodeList {
			if !n.UUID.Valid {
				continue
			}
			if n.State == proto.NodeUnknown {
				delete(c.nodes, n.UUID.V) // NEO's way of saying "forget it"
				continue
			}
			c.nodes[n.UUID.V] = n
			if n.UUID.V == c.myID {
				c.idTimestamp = n.IDTimestamp
			}
		}
	case *proto.SendPartitionTable:
		c.pt = PartitionTable{PTID: m.PTID, NumReplicas: m.NumReplicas, Rows: copyRows(m.RowList)}
		c.havePT = true
	case *proto.NotifyPartitionChanges:
		c.pt.PTID = proto.Some(m.PTID)
		c.pt.NumReplicas = m.NumReplicas
		for _, ch := range m.CellList {
			if int(ch.Offset) >= len(c.pt.Rows) {
				return fmt.Errorf("partition change for offset %d, table has %d rows", ch.Offset, len(c.pt.Rows))
			}
			c.pt.Rows[ch.Offset] = applyCell(c.pt.Rows[ch.Offset], ch.UUID, ch.State)
		}
	case *proto.InvalidateObjects:
		if c.onInval != nil {
			oids := append([]proto.Oid(nil), m.OIDList...)
			c.mu.Unlock()
			c.onInval(m.TID, oids)
			c.mu.Lock()
		}
	default:
		switch proto.KindOf(msg.MsgCode()) {
		case proto.KindRequest, proto.KindErrorRequest:
			return conn.Send(proto.ProtocolError("unexpected packet " + proto.Name(msg)))
		}
		// Other notifications (NotifyClusterInformation, ...) do not
		// concern a read-only client.
	}
	if c.havePT && c.idTimestamp.Valid {
		c.markReady()
	}
	return nil
}

// applyCell returns row with the cell of node id set to state; a DISCARDED
// cell leaves the row.
func applyCell(row []proto.CellInfo, id proto.NodeID, state proto.CellState) []proto.CellInfo {
	for i, cell := range row {
		if cell.UUID == id {
			if state == proto.CellDiscarded {
				return append(row[:i], row[i+1:]...)
			}
			row[i].State = state
			return row
		}
	}
	if state == proto.CellDiscarded {
		return row
	}
	return append(row, proto.CellInfo{UUID: id, State: state})
}

// copyRows deep-copies a partition table: the decoded message may be reused.
func copyRows(rows [][]proto.CellInfo) [][]proto.CellInfo {
	out := make([][]proto.CellInfo, len(rows))
	for i, r := range rows {
		out[i] = append([]proto.CellInfo(nil), r...)
	}
	return out
}

// DecodeErrorKey counts, in Received, the master's packets that failed to
// decode (they are skipped).
const DecodeErrorKey = "decode error"

// Received returns how many packets of each kind the master sent on its own
// ids (notifications, mostly), by packet name, plus DecodeErrorKey. It is a
// copy.
func (c *Client) Received() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int, len(c.received))
	for k, v := range c.received {
		out[k] = v
	}
	return out
}

// NodeID returns the node id the master gave this client.
func (c *Client) NodeID() proto.NodeID { return c.myID }

// MasterID returns the primary master's node id.
func (c *Client) MasterID() proto.NodeID { return c.masterID }

// Nodes returns the nodes the master has announced, sorted by node id.
func (c *Client) Nodes() []proto.NodeInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]proto.NodeInfo, 0, len(c.nodes))
	for _, n := range c.nodes {
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return nodeLess(out[i].UUID.V, out[j].UUID.V) })
	return out
}

// nodeLess orders node ids as NEO prints them: masters, storages, clients,
// admins, each by number.
func nodeLess(a, b proto.NodeID) bool {
	rank := func(id proto.NodeID) int {
		switch int32(id) >> 24 {
		case -0x10:
			return 0
		case 0:
			return 1
		case -0x20:
			return 2
		}
		return 3
	}
	if ra, rb := rank(a), rank(b); ra != rb {
		return ra < rb
	}
	return int32(a)&0xffffff < int32(b)&0xffffff
}

// PartitionTable returns a copy of the current partition table.
func (c *Client) PartitionTable() PartitionTable {
	c.mu.Lock()
	defer c.mu.Unlock()
	pt := c.pt
	pt.Rows = copyRows(pt.Rows)
	return pt
}

// ClusterState asks the master for the cluster state (RECOVERING,
// VERIFYING, RUNNING...); ok is false if the master has none to report.
func (c *Client) ClusterState(ctx context.Context) (state proto.ClusterState, ok bool, err error) {
	var ans proto.AnswerClusterState
	if err := c.master.Ask1Context(ctx, &proto.AskClusterState{}, &ans); err != nil {
		return 0, false, fmt.Errorf("neoclient: AskClusterState: %w", err)
	}
	return ans.State.V, ans.State.Valid, nil
}

// Err returns nil while the master link is up, else why it ended.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// LastTransaction asks the master for the tid of the last committed
// transaction.
func (c *Client) LastTransaction(ctx context.Context) (proto.Tid, error) {
	var ans proto.AnswerLastTransaction
	if err := c.master.Ask1Context(ctx, &proto.AskLastTransaction{}, &ans); err != nil {
		return 0, fmt.Errorf("neoclient: AskLastTransaction: %w", err)
	}
	return ans.TID, nil
}

// Load returns the latest revision of oid.
func (c *Client) Load(ctx context.Context, oid proto.Oid) (*Object, error) {
	return c.load(ctx, &proto.AskObject{OID: oid})
}

// LoadAt returns the revision of oid whose serial is exactly serial, or an
// OID_NOT_FOUND *proto.Error if there is none.
func (c *Client) LoadAt(ctx context.Context, oid proto.Oid, serial proto.Tid) (*Object, error) {
	return c.load(ctx, &proto.AskObject{OID: oid, At: proto.Some(serial)})
}

// LoadBefore returns the last revision of oid committed before tid, or an
// OID_NOT_FOUND *proto.Error if the object did not exist yet.
func (c *Client) LoadBefore(ctx context.Context, oid proto.Oid, tid proto.Tid) (*Object, error) {
	return c.load(ctx, &proto.AskObject{OID: oid, Before: proto.Some(tid)})
}

// load asks the readable storages of the oid's partition in turn, in random
// order as NEO/py does to spread the load, until one answers. An Error answer
// is final: every replica would give the same.
func (c *Client) load(ctx context.Context, req *proto.AskObject) (*Object, error) {
	cells, err := c.readableCells(req.OID)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, id := range cells {
		link, addr, err := c.storage(ctx, id)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var ans proto.AnswerObject
		err = link.Ask1Context(ctx, req, &ans)
		var pe *proto.Error
		switch {
		case errors.As(err, &pe):
			return nil, pe
		case err != nil:
			errs = append(errs, fmt.Errorf("neoclient: AskObject(%v) to storage %v at %s: %w", req.OID, id, addr, err))
			c.dropStorage(id)
			if ctx.Err() != nil {
				return nil, errors.Join(errs...)
			}
			continue
		}
		obj, err := check(&ans, req.OID)
		if err != nil {
			return nil, fmt.Errorf("%w (storage %v at %s)", err, id, addr)
		}
		obj.Storage = id
		return obj, nil
	}
	return nil, errors.Join(errs...)
}

// readableCells returns the storages that may serve oid, in random order.
func (c *Client) readableCells(oid proto.Oid) ([]proto.NodeID, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.pt.Rows) == 0 {
		return nil, errors.New("neoclient: the partition table is empty")
	}
	row := c.pt.Rows[uint64(oid)%uint64(len(c.pt.Rows))]
	var ids []proto.NodeID
	for _, cell := range row {
		if cell.State != proto.CellUpToDate && cell.State != proto.CellFeeding {
			continue
		}
		if n, ok := c.nodes[cell.UUID]; ok && n.State == proto.NodeRunning && n.Address.Valid {
			ids = append(ids, cell.UUID)
		}
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("neoclient: no running storage has a readable cell for oid %v (partition %d of %d)",
			oid, uint64(oid)%uint64(len(c.pt.Rows)), len(c.pt.Rows))
	}
	rand.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	return ids, nil
}

// storage returns the link to storage id, dialing and identifying on first
// use with the node id and id_timestamp the master gave us (a storage
// refuses a client the master has not announced to it). Concurrent callers
// share one dial.
func (c *Client) storage(ctx context.Context, id proto.NodeID) (*neonet.NodeLink, string, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, "", errors.New("neoclient: client is closed")
	}
	addr := hostPort(c.nodes[id].Address.V)
	sl := c.storages[id]
	dial := sl == nil
	if dial {
		sl = &storageLink{done: make(chan struct{})}
		c.storages[id] = sl
	}
	ts := c.idTimestamp
	c.mu.Unlock()
	if dial {
		sl.link, sl.err = c.dialStorage(ctx, id, addr, ts)
		close(sl.done)
		c.mu.Lock()
		closed := c.closed
		if sl.err != nil && c.storages[id] == sl {
			delete(c.storages, id) // try again on the next load
		}
		c.mu.Unlock()
		if closed && sl.link != nil { // Close ran meanwhile and could not close it
			sl.link.Close()
		}
	}
	select {
	case <-sl.done:
	case <-ctx.Done():
		return nil, addr, fmt.Errorf("neoclient: storage %v at %s: %w", id, addr, ctx.Err())
	}
	return sl.link, addr, sl.err
}

// dialStorage dials the storage id at addr and identifies to it.
func (c *Client) dialStorage(ctx context.Context, id proto.NodeID, addr string, ts proto.Opt[float64]) (*neonet.NodeLink, error) {
	link, err := neonet.DialLink(ctx, "tcp", addr, c.cfg)
	if err != nil {
		return nil, fmt.Errorf("neoclient: storage %v at %s: %w", id, addr, err)
	}
	var accept proto.AcceptIdentification
	if err := c.identify(ctx, link, proto.Some(c.myID), ts, &accept); err != nil {
		link.Close()
		return nil, fmt.Errorf("neoclient: identify to storage %v at %s: %w", id, addr, err)
	}
	return link, nil
}

// dropStorage forgets the link to storage id, closing it, so that the next
// load dials again.
func (c *Client) dropStorage(id proto.NodeID) {
	c.mu.Lock()
	sl := c.storages[id]
	delete(c.storages, id)
	c.mu.Unlock()
	if sl != nil {
		<-sl.done // only called after storage returned, so at once
		if sl.link != nil {
			sl.link.Close()
		}
	}
}

// hostPort formats a NEO address for net.Dial.
func hostPort(a proto.Address) string {
	h := a.Host
	if bytes.IndexByte([]byte(h), ':') >= 0 {
		h = "[" + h + "]"
	}
	return h + ":" + strconv.Itoa(int(a.Port))
}

// check verifies an AnswerObject as NEO/py's client does and decompresses it.
func check(ans *proto.AnswerObject, oid proto.Oid) (*Object, error) {
	if ans.OID != oid {
		return nil, fmt.Errorf("neoclient: asked for oid %v, storage answered oid %v", oid, ans.OID)
	}
	if len(ans.Data) == 0 && bytes.Equal(ans.Checksum, zeroHash[:]) {
		return nil, fmt.Errorf("%w: oid %v serial %v", ErrNoData, oid, ans.Serial)
	}
	sum := sha1.Sum(ans.Data)
	if !bytes.Equal(sum[:], ans.Checksum) {
		return nil, fmt.Errorf("neoclient: wrong checksum for oid %v serial %v: got %x, the %d data bytes hash to %x",
			oid, ans.Serial, ans.Checksum, len(ans.Data), sum)
	}
	obj := &Object{
		OID:         ans.OID,
		Serial:      ans.Serial,
		NextSerial:  ans.NextSerial,
		DataSerial:  ans.DataSerial,
		Compression: ans.Compression.V,
		Checksum:    ans.Checksum,
		StoredSize:  len(ans.Data),
		Data:        ans.Data,
	}
	switch obj.Compression {
	case 0:
	case 1:
		data, err := inflate(ans.Data)
		if err != nil {
			return nil, fmt.Errorf("neoclient: oid %v serial %v: zlib: %w", oid, ans.Serial, err)
		}
		obj.Data = data
	default:
		return nil, fmt.Errorf("neoclient: oid %v serial %v: unknown compression %d", oid, ans.Serial, obj.Compression)
	}
	return obj, nil
}

// inflate decompresses a zlib stream (what Python's zlib.compress writes).
func inflate(b []byte) ([]byte, error) {
	r, err := zlib.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}

// optString formats an optional node id ("none" when absent).
func optString(o proto.Opt[proto.NodeID]) string {
	if !o.Valid {
		return "none"
	}
	return o.V.String()
}

// Close closes every link of the client and waits for the notification
// reader to stop. It is idempotent and returns nil.
func (c *Client) Close() error {
	c.mu.Lock()
	c.closed = true
	links := make([]*storageLink, 0, len(c.storages))
	for _, sl := range c.storages {
		links = append(links, sl)
	}
	c.storages = map[proto.NodeID]*storageLink{}
	c.mu.Unlock()
	c.master.Close()
	for _, sl := range links {
		select {
		case <-sl.done:
			if sl.link != nil {
				sl.link.Close()
			}
		default: // its dialer sees c.closed and closes the link itself
		}
	}
	<-c.done
	return nil
}
