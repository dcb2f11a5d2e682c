package audit

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
)

// maxProblems bounds a Report: past it, verification stops.
const maxProblems = 50

// Report is the outcome of [Verify].
type Report struct {
	Files int
	// Records counts the lines read as records, including the ones with
	// a problem.
	Records int
	// FirstSeq and LastSeq are the seq of the first and last readable
	// records; 0 when there is none.
	FirstSeq, LastSeq uint64
	// Problems lists every break found, in file order; empty when the
	// chain is intact.
	Problems []Problem
}

// Intact reports whether no problem was found.
func (r Report) Intact() bool { return len(r.Problems) == 0 }

// Problem is one break in the chain.
type Problem struct {
	File string
	Line int // 1-based, in File
	// Record is the 1-based position of the line among all lines read,
	// across files.
	Record  int
	Message string
}

// String formats p as "FILE:LINE: record N: message".
func (p Problem) String() string {
	return fmt.Sprintf("%s:%d: record %d: %s", p.File, p.Line, p.Record, p.Message)
}

// Verify reads chained audit files, oldest first, and checks that every
// record's hash matches its content and that each record links to the one
// before it (seq + 1, prev_hash = its hash), across files. It finds an
// edited record, a deleted, inserted, forged or reordered record, an
// incomplete last line, a missing file in the middle of the set, and a
// missing newest file (the file before it ends with a rotation marker).
// It cannot tell that the newest records of the newest file were removed
// whole; compare LastSeq with what the gateway reported. The error is for
// files that cannot be read; a broken chain is a Report with Problems.
func Verify(files []string) (Report, error) {
	v := verifier{}
	for _, name := range files {
		if err := v.file(name); err != nil {
			return v.r, err
		}
		if len(v.r.Problems) >= maxProblems {
			return v.r, nil
		}
	}
	if v.havePrev && v.prevKind == KindRotate {
		v.problem(v.prevFile, v.prevLine, v.prevRecord,
			"the last file given ends with a rotation marker: its chain continues in a later file that was not given (pass every file, oldest first)")
	}
	return v.r, nil
}

type verifier struct {
	r Report
	// The last readable record.
	havePrev   bool
	prevSeq    uint64
	prevHash   string
	prevKind   string
	prevFile   string
	prevLine   int
	prevRecord int
}

func (v *verifier) problem(file string, line, record int, format string, args ...any) {
	if len(v.r.Problems) < maxProblems {
		v.r.Problems = append(v.r.Problems, Problem{File: file, Line: line, Record: record, Message: fmt.Sprintf(format, args...)})
	}
}

func (v *verifier) file(name string) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	v.r.Files++
	br := bufio.NewReaderSize(f, 64<<10)
	for n := 1; len(v.r.Problems) < maxProblems; n++ {
		line, err := br.ReadBytes('\n')
		if len(line) == 0 && errors.Is(err, io.EOF) {
			return nil
		}
		v.r.Records++
		if errors.Is(err, io.EOF) {
			v.problem(name, n, v.r.Records, "incomplete last line: the file is truncated (a write did not finish, or the file was cut)")
			return nil
		}
		if err != nil {
			return err
		}
		v.record(name, n, line[:len(line)-1])
	}
	return nil
}

func (v *verifier) record(file string, line int, text []byte) {
	rec := v.r.Records
	f, hashOK, err := parseLine(text)
	if err != nil {
		v.problem(file, line, rec, "not an audit record: %v", err)
		return
	}
	if v.r.FirstSeq == 0 {
		v.r.FirstSeq = f.Seq
	}
	v.r.LastSeq = f.Seq
	if !hashOK {
		v.problem(file, line, rec, "the content does not match its hash: the record (seq %d) was edited", f.Seq)
	}
	switch {
	case !v.havePrev:
		if f.Seq == 1 && f.PrevHash != zeroHash {
			v.problem(file, line, rec, "the first record of a chain (seq 1) must have a prev_hash of 64 zeros")
		}
	case f.Seq == v.prevSeq+1 && f.PrevHash != v.prevHash:
		v.problem(file, line, rec, "prev_hash does not match the hash of the record before it (seq %d): a record was replaced, inserted or forged", v.prevSeq)
	case f.Seq > v.prevSeq+1 && file != v.prevFile:
		v.problem(file, line, rec, "seq %d does not follow seq %d at the end of %s: %d records missing (a file or records were removed)", f.Seq, v.prevSeq, v.prevFile, f.Seq-v.prevSeq-1)
	case f.Seq > v.prevSeq+1:
		v.problem(file, line, rec, "seq %d follows seq %d: %d records missing or out of order", f.Seq, v.prevSeq, f.Seq-v.prevSeq-1)
	case f.Seq <= v.prevSeq:
		v.problem(file, line, rec, "seq %d follows seq %d: records out of order or repeated", f.Seq, v.prevSeq)
	}
	v.havePrev = true
	v.prevSeq, v.prevHash, v.prevKind = f.Seq, f.Hash, f.Kind
	v.prevFile, v.prevLine, v.prevRecord = file, line, rec
}
