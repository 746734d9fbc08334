package users_test

import (
	"maps"
	"slices"
	"testing"

	"tokend/internal/users"
	"tokend/internal/users/userstest"
)

// mapTable is a loaded users file; package main runs the suite over its
// real htpasswd parser too (users_store_test.go).
type mapTable map[string]string

func (m mapTable) Hash(name string) ([]byte, bool) {
	h, ok := m[name]
	return []byte(h), ok
}
func (m mapTable) Names() []string { return slices.Sorted(maps.Keys(m)) }

func TestFileConformance(t *testing.T) {
	userstest.Run(t, func(t *testing.T, u map[string]string) users.Store {
		return users.NewFile(func() users.Table { return mapTable(u) })
	})
}
