package main

import (
	"crypto/tls"
	"flag"
	"strconv"
	"strings"

	"github.com/neolink/neolink/neonet"
	"github.com/neolink/neolink/proto"
)

// Flag values shared by several commands.

// parseEncoding parses an -encoding value: "N" or "M" (either case), and
// "auto" (returned as 0) when allowAuto is set.
func parseEncoding(s string, allowAuto bool) (proto.Encoding, error) {
	if allowAuto && strings.EqualFold(s, "auto") {
		return 0, nil
	}
	enc, err := proto.ParseEncoding(s)
	if err != nil {
		if allowAuto {
			return 0, usagef("invalid -encoding %q: want auto, N or M", s)
		}
		return 0, usagef("invalid -encoding %q: want N or M", s)
	}
	return enc, nil
}

// parseHex parses a hexadecimal number, with or without a 0x prefix.
func parseHex(s string) (uint64, error) {
	t := strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X")
	v, err := strconv.ParseUint(t, 16, 64)
	if err != nil {
		return 0, usagef("invalid hex number %q", s)
	}
	return v, nil
}

// tlsFlags are the -ca, -cert and -key flags: TLS as NEO/py sets it up
// (mutual authentication against the CA, no host name check).
type tlsFlags struct {
	ca, cert, key string
}

// register defines the three flags on fs.
func (t *tlsFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&t.ca, "ca", "", "`FILE` with the CA certificate (PEM) that peers' certificates must chain to; enables TLS")
	fs.StringVar(&t.cert, "cert", "", "`FILE` with this node's certificate (PEM); with -ca")
	fs.StringVar(&t.key, "key", "", "`FILE` with this node's private key (PEM); with -ca")
}

// config returns the TLS configuration, or nil when no flag is set.
func (t *tlsFlags) config() (*tls.Config, error) {
	if t.ca == "" && t.cert == "" && t.key == "" {
		return nil, nil
	}
	if t.ca == "" || t.cert == "" || t.key == "" {
		return nil, usagef("-ca, -cert and -key must be given together")
	}
	return neonet.TLSConfig(t.ca, t.cert, t.key, false)
}
