package main

import (
	"bytes"
	"os"
	"testing"
)

// TestUpToDate regenerates the catalog and compares it with the committed
// file, so a schema edit without `go generate` fails the tests.
func TestUpToDate(t *testing.T) {
	src, err := os.ReadFile("../../schema/neo-v5.schema")
	if err != nil {
		t.Fatal(err)
	}
	s, err := parseSchema(string(src))
	if err != nil {
		t.Fatal(err)
	}
	got, err := generate(s, "schema/neo-v5.schema")
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("../../zcatalog.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("proto/zcatalog.go is stale: run go generate ./proto/...")
	}
}

func TestSchemaErrors(t *testing.T) {
	for _, src := range []string{
		"1 request Ping",                    // no answer
		"0x8001 answer Pong",                // no request
		"1 notify Ping x:nosuchtype",        // unknown type
		"1 notify Ping x:[int",              // unbalanced
		"1 notify Ping x:int x:int",         // duplicate field
		"1 notify A\n1 notify B",            // duplicate code
		"0x8001 notify A",                   // answer bit on a notification
		"enum E ext=1 go=E prefix=E VALUES", // missing colon
		"1 notify A x:int/NoSuchEnum",       // unknown enum
	} {
		if _, err := parseSchema(src); err == nil {
			t.Errorf("schema %q: no error", src)
		}
	}
}

func TestCamel(t *testing.T) {
	for in, want := range map[string]string{
		"oid_list": "OIDList", "num_oids": "NumOIDs", "your_uuid": "YourUUID",
		"id_timestamp": "IDTimestamp", "ttid": "TTID", "node_type": "NodeType",
	} {
		if got := camel(in, true); got != want {
			t.Errorf("camel(%q) = %q, want %q", in, got, want)
		}
	}
}
