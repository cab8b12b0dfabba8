package main

import (
	"fmt"
	"strconv"
	"strings"
)

// schema is a parsed schema file; see the grammar in its header.
type schema struct {
	enums   []*enumDef
	structs []*structDef
	msgs    []*msgDef

	enumByName   map[string]*enumDef
	structByName map[string]*structDef
	msgByCode    map[uint16]*msgDef
}

type enumDef struct {
	pyName, goName, prefix string
	ext                    int
	values                 []string
}

func (e *enumDef) constName(v string) string { return e.prefix + camel(v, false) }

type structDef struct {
	name   string
	fields []field
}

func (st *structDef) sig() string { return fieldsSig(st.fields) }

type field struct {
	name, goName string
	typ          *typ
}

func fieldsSig(fields []field) string {
	var parts []string
	for _, f := range fields {
		parts = append(parts, f.name+":"+f.typ.src)
	}
	return strings.Join(parts, ", ")
}

type msgKind int

const (
	mkRequest msgKind = iota
	mkErrReq
	mkNotify
	mkAnswer
	mkError
)

var msgKinds = map[string]msgKind{
	"request": mkRequest, "errreq": mkErrReq, "notify": mkNotify, "answer": mkAnswer, "error": mkError,
}

func (k msgKind) goKind() string {
	return [...]string{"KindRequest", "KindErrorRequest", "KindNotify", "KindAnswer", "KindError"}[k]
}

type msgDef struct {
	code   uint16
	kind   msgKind
	name   string
	fields []field
}

func (m *msgDef) sig() string { return fieldsSig(m.fields) }

// answerCode is the code of the expected answer: the dedicated answer for a
// request, Error for an error-answered request, 0 for the others.
func (m *msgDef) answerCode(s *schema) uint16 {
	switch m.kind {
	case mkRequest:
		return m.code | 0x8000
	case mkErrReq:
		return 0x8000
	}
	return 0
}

func (m *msgDef) describe(s *schema) string {
	switch m.kind {
	case mkRequest:
		return "a request answered by " + s.msgByCode[m.code|0x8000].name
	case mkErrReq:
		return "a request answered by Error (ACK on success)"
	case mkNotify:
		return "a notification"
	case mkAnswer:
		return "the answer to " + s.msgByCode[m.code&^0x8000].name
	default:
		return "the error answer, which may answer any request"
	}
}

type kind int

const (
	kBool kind = iota
	kFloat
	kInt
	kU16
	kU32
	kU64
	kUUID
	kOid
	kTid
	kBin
	kText
	kAny
	kEnum
	kIntEnum
	kStruct
	kOpt
	kList
	kMap
)

var scalarKinds = map[string]kind{
	"bool": kBool, "float": kFloat, "int": kInt, "u16": kU16, "u32": kU32, "u64": kU64,
	"uuid": kUUID, "oid": kOid, "tid": kTid, "bin": kBin, "text": kText, "any": kAny,
}

// typ is a schema type expression.
type typ struct {
	kind      kind
	src       string // as written in the schema
	elem, key *typ
	enum      *enumDef
	st        *structDef
}

func (t *typ) goType() string {
	switch t.kind {
	case kBool:
		return "bool"
	case kFloat:
		return "float64"
	case kInt:
		return "int64"
	case kU16:
		return "uint16"
	case kU32:
		return "uint32"
	case kU64:
		return "uint64"
	case kUUID:
		return "NodeID"
	case kOid:
		return "Oid"
	case kTid:
		return "Tid"
	case kBin:
		return "[]byte"
	case kText:
		return "string"
	case kAny:
		return "Raw"
	case kEnum, kIntEnum:
		return t.enum.goName
	case kStruct:
		return t.st.name
	case kOpt:
		return "Opt[" + t.elem.goType() + "]"
	case kList:
		return "[]" + t.elem.goType()
	case kMap:
		return "[]KV[" + t.key.goType() + ", " + t.elem.goType() + "]"
	}
	panic("goType: unhandled kind")
}

// hasBin reports whether a value of t can hold a bin, the fields that
// scatter-gather encoding can leave out of the buffer.
func (t *typ) hasBin() bool { return t.holds(func(k kind) bool { return k == kBin }) }

// hasBytes reports whether a value of t can hold a []byte (bin or any), the
// fields that an aliasing decode points into its input.
func (t *typ) hasBytes() bool {
	return t.holds(func(k kind) bool { return k == kBin || k == kAny })
}

// hasRef reports whether a value of t holds memory that a shallow copy
// would share: byte slices and lists (strings are immutable).
func (t *typ) hasRef() bool {
	return t.holds(func(k kind) bool { return k == kBin || k == kAny || k == kList || k == kMap })
}

// holds reports whether t or a type inside it is of a kind that leaf accepts.
func (t *typ) holds(leaf func(kind) bool) bool {
	if leaf(t.kind) {
		return true
	}
	switch t.kind {
	case kStruct:
		for _, f := range t.st.fields {
			if f.typ.holds(leaf) {
				return true
			}
		}
	case kOpt, kList:
		return t.elem.holds(leaf)
	case kMap:
		return t.key.holds(leaf) || t.elem.holds(leaf)
	}
	return false
}

// fixedSize returns the encoded size bound of types whose bound does not depend on the value.
func (t *typ) fixedSize() (string, bool) {
	switch t.kind {
	case kBool:
		return "sizeBool", true
	case kFloat:
		return "sizeFloat", true
	case kInt, kU16, kU32, kU64, kUUID, kIntEnum:
		return "sizeInt", true
	case kOid, kTid:
		return "sizeP64", true
	case kEnum:
		return "sizeEnum", true
	}
	return "", false
}

// parseSchema parses the schema text and checks it for consistency.
func parseSchema(src string) (*schema, error) {
	s := &schema{
		enumByName:   map[string]*enumDef{},
		structByName: map[string]*structDef{},
		msgByCode:    map[uint16]*msgDef{},
	}
	for i, line := range strings.Split(src, "\n") {
		if j := strings.IndexByte(line, '#'); j >= 0 {
			line = line[:j]
		}
		tok := strings.Fields(line)
		if len(tok) == 0 {
			continue
		}
		var err error
		switch tok[0] {
		case "enum":
			err = s.parseEnum(tok[1:])
		case "struct":
			err = s.parseStruct(tok[1:])
		default:
			err = s.parseMsg(tok)
		}
		if err != nil {
			return nil, fmt.Errorf("line %d: %v", i+1, err)
		}
	}
	return s, s.check()
}

func (s *schema) parseEnum(tok []string) error {
	if len(tok) < 6 || tok[4] != ":" {
		return fmt.Errorf("enum: want 'enum Name ext=N go=T prefix=P : VALUES...'")
	}
	e := &enumDef{pyName: tok[0], values: tok[5:]}
	for _, kv := range tok[1:4] {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "ext":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > 127 {
				return fmt.Errorf("enum %s: bad ext %q", e.pyName, v)
			}
			e.ext = n
		case "go":
			e.goName = v
		case "prefix":
			e.prefix = v
		default:
			return fmt.Errorf("enum %s: unknown attribute %q", e.pyName, k)
		}
	}
	if e.goName == "" {
		return fmt.Errorf("enum %s: missing go=", e.pyName)
	}
	s.enums = append(s.enums, e)
	s.enumByName[e.pyName] = e
	return nil
}

func (s *schema) parseStruct(tok []string) error {
	if len(tok) < 2 {
		return fmt.Errorf("struct: want 'struct Name field:type...'")
	}
	fields, err := s.parseFields(tok[1:])
	if err != nil {
		return fmt.Errorf("struct %s: %v", tok[0], err)
	}
	st := &structDef{name: tok[0], fields: fields}
	s.structs = append(s.structs, st)
	s.structByName[st.name] = st
	return nil
}

func (s *schema) parseMsg(tok []string) error {
	if len(tok) < 3 {
		return fmt.Errorf("packet: want 'CODE KIND Name field:type...'")
	}
	code, err := strconv.ParseUint(tok[0], 0, 16)
	if err != nil {
		return fmt.Errorf("packet code %q: %v", tok[0], err)
	}
	k, ok := msgKinds[tok[1]]
	if !ok {
		return fmt.Errorf("packet %s: unknown kind %q", tok[2], tok[1])
	}
	fields, err := s.parseFields(tok[3:])
	if err != nil {
		return fmt.Errorf("packet %s: %v", tok[2], err)
	}
	m := &msgDef{code: uint16(code), kind: k, name: tok[2], fields: fields}
	if _, dup := s.msgByCode[m.code]; dup {
		return fmt.Errorf("packet %s: duplicate code %#x", m.name, m.code)
	}
	s.msgs = append(s.msgs, m)
	s.msgByCode[m.code] = m
	return nil
}

func (s *schema) parseFields(tok []string) ([]field, error) {
	var fields []field
	seen := map[string]bool{}
	for _, t := range tok {
		name, ts, ok := strings.Cut(t, ":")
		if !ok {
			return nil, fmt.Errorf("field %q: want name:type", t)
		}
		if seen[name] {
			return nil, fmt.Errorf("duplicate field %q", name)
		}
		seen[name] = true
		ty, rest, err := s.parseType(ts)
		if err != nil {
			return nil, fmt.Errorf("field %s: %v", name, err)
		}
		if rest != "" {
			return nil, fmt.Errorf("field %s: trailing %q in type", name, rest)
		}
		fields = append(fields, field{name: name, goName: camel(name, true), typ: ty})
	}
	return fields, nil
}

// parseType parses one type expression from the start of src.
func (s *schema) parseType(src string) (*typ, string, error) {
	if src == "" {
		return nil, "", fmt.Errorf("missing type")
	}
	wrap := func(t *typ, rest string) (*typ, string, error) {
		t.src = src[:len(src)-len(rest)]
		return t, rest, nil
	}
	switch src[0] {
	case '?':
		elem, rest, err := s.parseType(src[1:])
		if err != nil {
			return nil, "", err
		}
		return wrap(&typ{kind: kOpt, elem: elem}, rest)
	case '[':
		elem, rest, err := s.parseType(src[1:])
		if err != nil {
			return nil, "", err
		}
		if !strings.HasPrefix(rest, "]") {
			return nil, "", fmt.Errorf("missing ] in %q", src)
		}
		return wrap(&typ{kind: kList, elem: elem}, rest[1:])
	case '{':
		key, rest, err := s.parseType(src[1:])
		if err != nil {
			return nil, "", err
		}
		if !strings.HasPrefix(rest, ":") {
			return nil, "", fmt.Errorf("missing : in map %q", src)
		}
		val, rest, err := s.parseType(rest[1:])
		if err != nil {
			return nil, "", err
		}
		if !strings.HasPrefix(rest, "}") {
			return nil, "", fmt.Errorf("missing } in %q", src)
		}
		return wrap(&typ{kind: kMap, key: key, elem: val}, rest[1:])
	}
	end := strings.IndexAny(src, "]}:")
	if end < 0 {
		end = len(src)
	}
	name, rest := src[:end], src[end:]
	if base, enum, ok := strings.Cut(name, "/"); ok {
		e := s.enumByName[enum]
		if base != "int" || e == nil {
			return nil, "", fmt.Errorf("bad enum-as-int type %q", name)
		}
		return wrap(&typ{kind: kIntEnum, enum: e}, rest)
	}
	if k, ok := scalarKinds[name]; ok {
		return wrap(&typ{kind: k}, rest)
	}
	if e := s.enumByName[name]; e != nil {
		return wrap(&typ{kind: kEnum, enum: e}, rest)
	}
	if st := s.structByName[name]; st != nil {
		return wrap(&typ{kind: kStruct, st: st}, rest)
	}
	return nil, "", fmt.Errorf("unknown type %q", name)
}

// check verifies the catalog's structure: kinds agree with codes, every
// request has its answer and every answer its request.
func (s *schema) check() error {
	for _, m := range s.msgs {
		answer := m.code&0x8000 != 0
		switch m.kind {
		case mkError:
			if m.code != 0x8000 {
				return fmt.Errorf("%s: the error packet must have code 0x8000", m.name)
			}
		case mkAnswer:
			req := s.msgByCode[m.code&^0x8000]
			if !answer || req == nil || req.kind != mkRequest {
				return fmt.Errorf("answer %s (%#x) has no request", m.name, m.code)
			}
		default:
			if answer {
				return fmt.Errorf("%s: code %#x has the answer bit", m.name, m.code)
			}
			if m.kind == mkRequest && s.msgByCode[m.code|0x8000] == nil {
				return fmt.Errorf("request %s has no answer %#x", m.name, m.code|0x8000)
			}
		}
	}
	return nil
}
