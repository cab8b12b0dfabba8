package neonet

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/neolink/neolink/proto"
)

// TestVeth runs a link between two network namespaces joined by a veth pair,
// the project's own test hosts, and, where the kernel has sch_netem, under
// netem delay and loss. It needs root and iproute2; elsewhere it is skipped
// with the reason.
func TestVeth(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for ip netns")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2 (ip)")
	}
	leakCheck(t)
	suffix := fmt.Sprint(os.Getpid())
	nsA, nsB := "nlA"+suffix, "nlB"+suffix
	vA, vB := "nlva"+suffix, "nlvb"+suffix
	run := func(args ...string) error {
		out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	if err := run("ip", "netns", "add", nsA); err != nil {
		t.Skipf("ip netns unavailable here: %v", err)
	}
	t.Cleanup(func() { run("ip", "netns", "del", nsA) })
	if err := run("ip", "netns", "add", nsB); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { run("ip", "netns", "del", nsB) })
	for _, cmd := range [][]string{
		{"ip", "link", "add", vA, "type", "veth", "peer", "name", vB},
		{"ip", "link", "set", vA, "netns", nsA},
		{"ip", "link", "set", vB, "netns", nsB},
		{"ip", "-n", nsA, "addr", "add", "10.231.0.1/24", "dev", vA},
		{"ip", "-n", nsB, "addr", "add", "10.231.0.2/24", "dev", vB},
		{"ip", "-n", nsA, "link", "set", vA, "up"},
		{"ip", "-n", nsB, "link", "set", vB, "up"},
	} {
		if err := run(cmd...); err != nil {
			t.Fatal(err)
		}
	}

	var ln net.Listener
	inNetns(t, nsA, func() (err error) { ln, err = net.Listen("tcp", "10.231.0.1:0"); return })
	ll := NewLinkListener(ln, DefaultConfig())
	defer ll.Close()
	go func() {
		for {
			l, err := ll.Accept()
			if err != nil {
				return
			}
			go func() { defer l.Close(); serveObjects(l) }()
		}
	}()
	var nc net.Conn
	inNetns(t, nsB, func() (err error) { nc, err = net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second); return })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	link, err := NewLink(ctx, nc, Dialer, DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer link.Close()

	asks := func(n int) time.Duration {
		c, err := link.NewConn()
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		var r proto.AnswerObject
		start := time.Now()
		for i := range n {
			if err := c.AskContext(ctx, &proto.AskObject{OID: proto.Oid(i)}, &r); err != nil || r.OID != proto.Oid(i) {
				t.Fatalf("ask %d over veth: %v", i, err)
			}
		}
		return time.Since(start) / time.Duration(n)
	}
	t.Logf("veth: %v per ask", asks(200))

	t.Run("netem", func(t *testing.T) {
		if err := run("ip", "netns", "exec", nsA, "tc", "qdisc", "add", "dev", vA, "root", "netem", "delay", "2ms", "loss", "1%"); err != nil {
			t.Skipf("tc netem unavailable (kernel without sch_netem?): %v", err)
		}
		rtt := asks(100)
		if rtt < 2*time.Millisecond {
			t.Fatalf("RTT %v under 2 ms netem delay", rtt)
		}
		t.Logf("netem delay 2ms loss 1%%: %v per ask, none lost", rtt)
	})
}

// inNetns runs f on an OS thread switched into the named network namespace,
// so that sockets f creates live there.
func inNetns(t *testing.T, name string, f func() error) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // the thread is discarded when this goroutine exits
		fd, err := syscall.Open("/var/run/netns/"+name, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
		if err != nil {
			errc <- err
			return
		}
		defer syscall.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			errc <- err
			return
		}
		errc <- f()
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}
