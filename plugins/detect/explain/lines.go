package explain

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
)

// MaxLine bounds one input line; longer lines are cut, as the file source cuts them (their
// start is what the parsers read).
const MaxLine = 1 << 20

// ReadLines calls fn with every line of r (without its line end), numbered from 1. An error of
// fn stops the reading and is returned as it is; a read error names the line it broke.
func ReadLines(r io.Reader, fn func(n int, line []byte) error) error {
	br := bufio.NewReaderSize(r, 64<<10)
	for n := 1; ; n++ {
		line, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			long := append([]byte(nil), line...)
			for err == bufio.ErrBufferFull {
				line, err = br.ReadSlice('\n')
				if len(long) < MaxLine {
					long = append(long, line...)
				}
			}
			line = long
		}
		if len(line) > 0 {
			line = bytes.TrimRight(line, "\r\n")
			if len(line) > MaxLine {
				line = line[:MaxLine]
			}
			if ferr := fn(n, line); ferr != nil {
				return ferr
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read line %d: %w", n, err)
		}
	}
}
