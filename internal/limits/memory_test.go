package limits_test

import (
	"testing"
	"time"

	"tokend/internal/limits"
	"tokend/internal/limits/limitstest"
)

// TestMemory runs the conformance suite on the in-memory table (the Redis
// one runs it in package main's TestBudgetTables, which has the Redis
// test helper).
func TestMemory(t *testing.T) {
	limitstest.Run(t, func(t *testing.T, burst int, perSecond float64, now func() time.Time) limits.Table {
		return limits.NewMemory(burst, perSecond, 100, now)
	})
}
