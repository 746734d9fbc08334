package session

import (
	"container/list"
	"context"
	"slices"
	"strings"
	"sync"
	"time"
)

// MemoryStore keeps sessions in this process: the default, for one
// replica; a restart ends every session. It holds at most max sessions:
// a new one beyond that ends the oldest, so no number of logins can grow
// it without limit.
type MemoryStore struct {
	max int

	mu     sync.Mutex
	byKey  map[string]*list.Element // of *memEntry
	byUser map[string]map[string]struct{}
	order  *list.List // oldest first: sessions are created in time order
}

type memEntry struct {
	key string
	s   Session
}

// NewMemoryStore returns an empty store of at most max sessions.
func NewMemoryStore(max int) *MemoryStore {
	return &MemoryStore{max: max, byKey: map[string]*list.Element{}, byUser: map[string]map[string]struct{}{}, order: list.New()}
}

func (m *MemoryStore) Create(_ context.Context, key string, s Session, perUser int) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s.ID = IDOf(key)
	if e, ok := m.byKey[key]; ok {
		m.remove(e)
	}
	m.byKey[key] = m.order.PushBack(&memEntry{key: key, s: s})
	if m.byUser[s.User] == nil {
		m.byUser[s.User] = map[string]struct{}{}
	}
	m.byUser[s.User][key] = struct{}{}
	evicted := 0
	if perUser > 0 && len(m.byUser[s.User]) > perUser {
		// The user's oldest first: the order list is oldest first.
		for e := m.order.Front(); e != nil && len(m.byUser[s.User]) > perUser; {
			next := e.Next()
			if e.Value.(*memEntry).s.User == s.User {
				m.remove(e)
				evicted++
			}
			e = next
		}
	}
	for m.order.Len() > m.max {
		m.remove(m.order.Front())
		evicted++
	}
	return evicted, nil
}

// remove deletes e; m.mu is held.
func (m *MemoryStore) remove(e *list.Element) {
	ent := e.Value.(*memEntry)
	m.order.Remove(e)
	delete(m.byKey, ent.key)
	if keys := m.byUser[ent.s.User]; keys != nil {
		delete(keys, ent.key)
		if len(keys) == 0 {
			delete(m.byUser, ent.s.User)
		}
	}
}

func (m *MemoryStore) Touch(_ context.Context, key string, now, idleUntil time.Time) (Session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.byKey[key]
	if !ok {
		return Session{}, ErrNotFound
	}
	ent := e.Value.(*memEntry)
	if ent.s.endedAt(now) {
		m.remove(e)
		return Session{}, ErrNotFound
	}
	ent.s.LastSeen = now
	ent.s.IdleUntil = idleUntil
	if ent.s.EndsAt.Before(idleUntil) {
		ent.s.IdleUntil = ent.s.EndsAt
	}
	return ent.s, nil
}

func (m *MemoryStore) Delete(_ context.Context, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.byKey[key]
	if !ok {
		return ErrNotFound
	}
	m.remove(e)
	return nil
}

func (m *MemoryStore) List(_ context.Context, user string, now time.Time) ([]Session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Session
	for e := m.order.Front(); e != nil; e = e.Next() {
		s := e.Value.(*memEntry).s
		if (user == "" || s.User == user) && !s.endedAt(now) {
			out = append(out, s)
		}
	}
	slices.SortStableFunc(out, byCreated)
	return out, nil
}

func (m *MemoryStore) DeleteUser(_ context.Context, user string) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for key := range m.byUser[user] {
		m.remove(m.byKey[key])
		n++
	}
	return n, nil
}

func (m *MemoryStore) DeleteID(_ context.Context, id string) error {
	if !ValidID(id) {
		return ErrNotFound
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for key, e := range m.byKey {
		if strings.HasPrefix(key, id) {
			m.remove(e)
			return nil
		}
	}
	return ErrNotFound
}

// Ping always answers: the store is this process.
func (m *MemoryStore) Ping(context.Context) error { return nil }

// Len is the number of sessions held, ended ones not yet removed included.
func (m *MemoryStore) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.order.Len()
}
