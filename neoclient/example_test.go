package neoclient_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/neolink/neolink/neoclient"
	"github.com/neolink/neolink/proto"
)

// Reading an object from a NEO cluster, and following its commits. The
// master's address and the cluster name are those the nodes were started
// with (neomaster -b ADDR -c NAME).
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := neoclient.Dial(ctx, "127.0.0.1:2051", "mycluster", &neoclient.Options{
		OnInvalidation: func(tid proto.Tid, oids []proto.Oid) {
			log.Printf("transaction %v changed %v", tid, oids) // must not block
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	last, err := c.LastTransaction(ctx)
	if err != nil {
		log.Fatal(err)
	}
	obj, err := c.LoadBefore(ctx, 0, last+1) // the root object as of the last commit
	var pe *proto.Error
	switch {
	case errors.As(err, &pe) && pe.Code == proto.CodeOidDoesNotExist:
		fmt.Println("empty database")
	case err != nil:
		log.Fatal(err)
	default:
		fmt.Printf("oid %v serial %v: %d bytes (%d stored)\n", obj.OID, obj.Serial, len(obj.Data), obj.StoredSize)
	}
}
