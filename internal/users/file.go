package users

import (
	"context"
	"errors"
)

// Table is a loaded users file: the parser and the reloads stay with the
// htpasswd code in package main, which swaps whole tables at once.
type Table interface {
	Hash(name string) ([]byte, bool)
	Names() []string
}

// File is a Store over the users file currently loaded; current returns the
// table in force (a reload swaps it).
type File struct {
	current func() Table
}

// NewFile returns a Store reading from whatever table current returns.
func NewFile(current func() Table) *File { return &File{current: current} }

func (f *File) Lookup(_ context.Context, name string) (string, error) {
	h, ok := f.current().Hash(name)
	if !ok {
		return "", ErrNotFound
	}
	return string(h), nil
}

func (f *File) Check(context.Context) error {
	if len(f.current().Names()) == 0 {
		return errors.Join(ErrUnavailable, errors.New("the users file has no users"))
	}
	return nil
}

func (f *File) Sample(_ context.Context, n int) ([]string, error) {
	t := f.current()
	var out []string
	for _, name := range t.Names() {
		if len(out) == n {
			break
		}
		h, _ := t.Hash(name)
		out = append(out, string(h))
	}
	return out, nil
}
