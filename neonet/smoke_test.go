package neonet

import (
	"testing"

	"github.com/neolink/neolink/proto"
)

func TestAskSmoke(t *testing.T) {
	eachSetup(t, func(t *testing.T, tr transport, enc proto.Encoding) {
		a, b := linkPair(t, tr, enc, nil)
		go serveObjects(b)
		c, err := a.NewConn()
		if err != nil {
			t.Fatal(err)
		}
		var resp proto.AnswerObject
		for i := range 100 {
			if err := c.Ask(&proto.AskObject{OID: proto.Oid(i)}, &resp); err != nil {
				t.Fatal(err)
			}
			if resp.OID != proto.Oid(i) || len(resp.Data) != i {
				t.Fatalf("answer %d: oid %v len %d", i, resp.OID, len(resp.Data))
			}
		}
	})
}

func TestAsk1Smoke(t *testing.T) {
	eachSetup(t, func(t *testing.T, tr transport, enc proto.Encoding) {
		a, b := linkPair(t, tr, enc, nil)
		go serveLight(b)
		var resp proto.AnswerObject
		for i := range 100 {
			if err := a.Ask1(&proto.AskObject{OID: proto.Oid(i)}, &resp); err != nil {
				t.Fatal(err)
			}
			if resp.OID != proto.Oid(i) {
				t.Fatalf("answer %d: oid %v", i, resp.OID)
			}
		}
	})
}
