package main

import (
	"flag"
	"os"

	"github.com/neolink/neolink/neoclient"
	"github.com/neolink/neolink/proto"
)

// loadCommand is "neolink load".
func loadCommand() *command {
	return &command{
		name:    "load",
		args:    "OID",
		summary: "fetch one object from a NEO cluster and write its data to stdout",
		about: `Load fetches one object revision the way a NEO client does: it identifies to
the primary master, finds the storages of the object's partition in the
partition table, identifies to one of them and asks it for the object (the
latest revision, the one whose serial is -at, or the last one before
-before). It verifies the checksum, decompresses the data as NEO does (zlib
when the compression flag is set) and writes it to stdout, unchanged: for a
ZODB database, that is the object's pickle. OID and TIDs are hexadecimal, as
NEO prints them (0x optional). Anything else is a one-line error and exit
status 1; a storage's answer keeps NEO's error name (OID_NOT_FOUND: the object
exists but not at that point; OID_DOES_NOT_EXIST: it never existed).`,
		setup: func(fs *flag.FlagSet) func([]string) error {
			var f clusterFlags
			f.register(fs)
			at := fs.String("at", "", "load the revision whose serial is `TID` (hex)")
			before := fs.String("before", "", "load the last revision committed before `TID` (hex)")
			return func(args []string) error {
				if len(args) != 1 {
					return usagef("want exactly one OID")
				}
				oid, err := parseHex(args[0])
				if err != nil {
					return err
				}
				if *at != "" && *before != "" {
					return usagef("-at and -before exclude each other")
				}
				var tid uint64
				for _, s := range []string{*at, *before} {
					if s != "" {
						if tid, err = parseHex(s); err != nil {
							return err
						}
					}
				}
				c, ctx, cancel, err := f.dial()
				if err != nil {
					return err
				}
				defer cancel()
				defer c.Close()
				var obj *neoclient.Object
				switch {
				case *at != "":
					obj, err = c.LoadAt(ctx, proto.Oid(oid), proto.Tid(tid))
				case *before != "":
					obj, err = c.LoadBefore(ctx, proto.Oid(oid), proto.Tid(tid))
				default:
					obj, err = c.Load(ctx, proto.Oid(oid))
				}
				if err != nil {
					return err
				}
				_, err = os.Stdout.Write(obj.Data)
				return err
			}
		},
	}
}
