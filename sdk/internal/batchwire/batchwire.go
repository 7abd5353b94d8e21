// Package batchwire reads and writes the protocol's encoded messages that carry a Batch
// without turning the batch's lines into Go values: a host routes batches in this form, and
// a decoded batch's lines share the received buffer instead of being copied.
//
// The encoding is the protobuf encoding of tda.plugin.v1 (plugin.proto); these functions
// accept everything a protobuf parser accepts for those messages (packed and unpacked
// repeated fields, fields in any order, unknown fields) and produce what a protobuf encoder
// produces.
package batchwire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/tda-dev/tda/sdk/protocol/tdav1"
)

// Field numbers of tda.plugin.v1.Batch.
const (
	batchDict      = 1
	batchLines     = 2
	batchLineLen   = 3
	batchTimeDelta = 4
	batchKind      = 5
	batchSource    = 6
	batchOrigin    = 7
	batchStream    = 8
	batchExtras    = 9
)

var errTruncated = errors.New("batch: truncated or malformed field")

// Info summarises an encoded Batch.
type Info struct {
	// Events is the number of events (entries of line_len).
	Events int
	// LineBytes is the length of the concatenated lines.
	LineBytes int
	// Extras is the number of extras and ExtraBytes their encoded size.
	Extras     int
	ExtraBytes int
}

// field is one field of a message as it appears on the wire.
type field struct {
	num  protowire.Number
	typ  protowire.Type
	val  []byte // the payload of a bytes field
	uval uint64 // the value of a varint or fixed field
}

// eachField calls fn for every field of the encoded message b, in order.
func eachField(b []byte, fn func(f field) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || num > protowire.MaxValidNumber {
			return errTruncated
		}
		b = b[n:]
		f := field{num: num, typ: typ}
		switch typ {
		case protowire.VarintType:
			f.uval, n = protowire.ConsumeVarint(b)
		case protowire.Fixed32Type:
			var v uint32
			v, n = protowire.ConsumeFixed32(b)
			f.uval = uint64(v)
		case protowire.Fixed64Type:
			f.uval, n = protowire.ConsumeFixed64(b)
		case protowire.BytesType:
			f.val, n = protowire.ConsumeBytes(b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return errTruncated
		}
		b = b[n:]
		if err := fn(f); err != nil {
			return err
		}
	}
	return nil
}

// isColumn reports whether num is one of the packed integer columns.
func isColumn(num protowire.Number) bool {
	return num >= batchLineLen && num <= batchStream
}

// eachVarint calls fn for every value of a repeated integer field occurrence: a packed run
// or a single unpacked value.
func eachVarint(f field, fn func(v uint64)) error {
	switch f.typ {
	case protowire.VarintType:
		fn(f.uval)
		return nil
	case protowire.BytesType:
		b := f.val
		for len(b) > 0 {
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return errTruncated
			}
			fn(v)
			b = b[n:]
		}
		return nil
	}
	// Another wire type is an unknown field to a protobuf parser: ignored.
	return nil
}

// countVarints counts the values of a repeated integer field occurrence, checking them as
// eachVarint does.
func countVarints(f field) (int, error) {
	if f.typ != protowire.BytesType {
		n := 0
		err := eachVarint(f, func(uint64) { n++ })
		return n, err
	}
	return countPacked(f.val)
}

// countPacked counts the varints of a packed field. The columns of a batch are mostly values
// under 128 (dictionary indexes, line lengths, time deltas), one byte each: eight bytes
// without a continuation bit are eight whole values, counted at once; other stretches are
// read value by value, with protowire's checks.
func countPacked(b []byte) (int, error) {
	const continuation = 0x8080808080808080
	n := 0
	for len(b) > 0 {
		if len(b) >= 8 && binary.LittleEndian.Uint64(b)&continuation == 0 {
			n += 8
			b = b[8:]
			continue
		}
		_, k := protowire.ConsumeVarint(b)
		if k < 0 {
			return 0, errTruncated
		}
		n++
		b = b[k:]
	}
	return n, nil
}

// Scan checks that b is a well-formed encoded Batch, as a protobuf parser would, and
// summarises it. It allocates only to check extras.
func Scan(b []byte) (Info, error) { return scan(b, true) }

// ScanColumns is Scan for a caller that unmarshals the extras itself (and so checks them):
// it leaves them unchecked.
func ScanColumns(b []byte) (Info, error) { return scan(b, false) }

func scan(b []byte, extras bool) (Info, error) {
	var info Info
	err := eachField(b, func(f field) error {
		switch {
		case f.num == batchDict && f.typ == protowire.BytesType:
			if !utf8.Valid(f.val) {
				return fmt.Errorf("batch: dict entry is not valid UTF-8")
			}
		case f.num == batchLines && f.typ == protowire.BytesType:
			info.LineBytes = len(f.val) // the last occurrence wins
		case isColumn(f.num):
			n, err := countVarints(f)
			if err != nil {
				return err
			}
			if f.num == batchLineLen {
				info.Events += n
			}
		case f.num == batchExtras && f.typ == protowire.BytesType:
			if extras {
				if err := proto.Unmarshal(f.val, &tdav1.Extra{}); err != nil {
					return fmt.Errorf("batch: extra: %w", err)
				}
			}
			info.Extras++
			info.ExtraBytes += len(f.val)
		}
		return nil
	})
	return info, err
}

// Unmarshal decodes an encoded Batch. The lines share b, which must not change afterwards.
func Unmarshal(b []byte) (*tdav1.Batch, error) {
	w := &tdav1.Batch{}
	// Size the columns first, so each is allocated once.
	var counts [batchStream + 1]int
	if err := eachField(b, func(f field) error {
		if isColumn(f.num) {
			n, err := countVarints(f)
			counts[f.num] += n
			return err
		}
		return nil
	}); err != nil {
		return nil, err
	}
	u32 := func(dst *[]uint32, num protowire.Number) {
		if counts[num] > 0 {
			*dst = make([]uint32, 0, counts[num])
		}
	}
	u32(&w.LineLen, batchLineLen)
	u32(&w.Kind, batchKind)
	u32(&w.Source, batchSource)
	u32(&w.Origin, batchOrigin)
	u32(&w.Stream, batchStream)
	if counts[batchTimeDelta] > 0 {
		w.TimeDelta = make([]int64, 0, counts[batchTimeDelta])
	}
	err := eachField(b, func(f field) error {
		var col *[]uint32
		switch f.num {
		case batchDict:
			if f.typ == protowire.BytesType {
				if !utf8.Valid(f.val) {
					return fmt.Errorf("batch: dict entry is not valid UTF-8")
				}
				w.Dict = append(w.Dict, string(f.val))
			}
			return nil
		case batchLines:
			if f.typ == protowire.BytesType {
				w.Lines = f.val[:len(f.val):len(f.val)]
			}
			return nil
		case batchTimeDelta:
			return eachVarint(f, func(v uint64) { w.TimeDelta = append(w.TimeDelta, protowire.DecodeZigZag(v)) })
		case batchExtras:
			if f.typ == protowire.BytesType {
				x := &tdav1.Extra{}
				if err := proto.Unmarshal(f.val, x); err != nil {
					return fmt.Errorf("batch: extra: %w", err)
				}
				w.Extras = append(w.Extras, x)
			}
			return nil
		case batchLineLen:
			col = &w.LineLen
		case batchKind:
			col = &w.Kind
		case batchSource:
			col = &w.Source
		case batchOrigin:
			col = &w.Origin
		case batchStream:
			col = &w.Stream
		default:
			return nil
		}
		return eachVarint(f, func(v uint64) { *col = append(*col, uint32(v)) })
	})
	if err != nil {
		return nil, err
	}
	return w, nil
}

// KindCounts counts the events of each kind of an encoded Batch without decoding it.
func KindCounts(b []byte) (map[string]int, error) {
	var dict []string
	var kinds [][]byte
	var single []uint64
	err := eachField(b, func(f field) error {
		switch {
		case f.num == batchDict && f.typ == protowire.BytesType:
			dict = append(dict, string(f.val))
		case f.num == batchKind && f.typ == protowire.BytesType:
			kinds = append(kinds, f.val)
		case f.num == batchKind && f.typ == protowire.VarintType:
			single = append(single, f.uval)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	count := func(k uint64) {
		if k < uint64(len(dict)) {
			out[dict[k]]++
		} else {
			out[""]++
		}
	}
	for _, run := range kinds {
		if err := eachVarint(field{typ: protowire.BytesType, val: run}, count); err != nil {
			return nil, err
		}
	}
	for _, k := range single {
		count(k)
	}
	return out, nil
}

// Embedded returns the payload of the message field num of the encoded message b, as a
// protobuf parser would merge it: the field's only occurrence, a part of b (shared), or its
// occurrences concatenated into new memory. An absent field has an empty payload.
func Embedded(b []byte, num protowire.Number) (payload []byte, shared bool, err error) {
	var parts [][]byte
	err = eachField(b, func(f field) error {
		if f.num == num && f.typ == protowire.BytesType {
			parts = append(parts, f.val)
		}
		return nil
	})
	switch {
	case err != nil || len(parts) == 0:
		return nil, false, err
	case len(parts) == 1:
		return parts[0][:len(parts[0]):len(parts[0])], true, nil
	}
	var joined []byte
	for _, p := range parts {
		joined = append(joined, p...)
	}
	return joined, false, nil
}

// Fields calls fn for every field of the encoded message b: wire type, and the payload of a
// bytes field or the value of a number.
func Fields(b []byte, fn func(num protowire.Number, typ protowire.Type, payload []byte, value uint64) error) error {
	return eachField(b, func(f field) error { return fn(f.num, f.typ, f.val, f.uval) })
}

// Column reads the values of a repeated integer field of an encoded Batch in order, across
// every occurrence of the field.
type Column struct {
	runs []field
	cur  []byte // rest of the current packed run
}

// Next returns the next value; ok is false after the last one.
func (c *Column) Next() (v uint64, ok bool) {
	for {
		if len(c.cur) > 0 {
			v, n := protowire.ConsumeVarint(c.cur)
			if n < 0 {
				c.cur = nil
				return 0, false
			}
			c.cur = c.cur[n:]
			return v, true
		}
		if len(c.runs) == 0 {
			return 0, false
		}
		f := c.runs[0]
		c.runs = c.runs[1:]
		switch f.typ {
		case protowire.VarintType:
			return f.uval, true
		case protowire.BytesType:
			c.cur = f.val
		}
	}
}

// Fields of an encoded Batch, split without decoding its columns.
type Parts struct {
	// Dict holds the dictionary's entries as they are encoded.
	Dict [][]byte
	// Lines is the concatenated lines (sharing the encoded batch).
	Lines                                            []byte
	LineLen, TimeDelta, Kind, Source, Origin, Stream Column
	// Extras holds the encoded extras.
	Extras [][]byte
}

// Split splits an encoded Batch that Scan accepted into its fields. p's slices are reused.
func Split(b []byte, p *Parts) error {
	*p = Parts{Dict: p.Dict[:0], Extras: p.Extras[:0],
		LineLen: Column{runs: p.LineLen.runs[:0]}, TimeDelta: Column{runs: p.TimeDelta.runs[:0]},
		Kind: Column{runs: p.Kind.runs[:0]}, Source: Column{runs: p.Source.runs[:0]},
		Origin: Column{runs: p.Origin.runs[:0]}, Stream: Column{runs: p.Stream.runs[:0]}}
	return eachField(b, func(f field) error {
		switch f.num {
		case batchDict:
			if f.typ == protowire.BytesType {
				if !utf8.Valid(f.val) {
					return fmt.Errorf("batch: dict entry is not valid UTF-8")
				}
				p.Dict = append(p.Dict, f.val)
			}
		case batchLines:
			if f.typ == protowire.BytesType {
				p.Lines = f.val[:len(f.val):len(f.val)]
			}
		case batchExtras:
			if f.typ == protowire.BytesType {
				p.Extras = append(p.Extras, f.val)
			}
		case batchLineLen:
			p.LineLen.runs = append(p.LineLen.runs, f)
		case batchTimeDelta:
			p.TimeDelta.runs = append(p.TimeDelta.runs, f)
		case batchKind:
			p.Kind.runs = append(p.Kind.runs, f)
		case batchSource:
			p.Source.runs = append(p.Source.runs, f)
		case batchOrigin:
			p.Origin.runs = append(p.Origin.runs, f)
		case batchStream:
			p.Stream.runs = append(p.Stream.runs, f)
		}
		return nil
	})
}
