package main

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"
)

// clientAddr works out the client's address. X-Forwarded-For is read only
// when the peer is a trusted proxy, and from the right: each trusted proxy
// appends the address it got the request from, so the rightmost entry that
// is not a trusted proxy is the first one nobody trusted vouches for.
// Anything to its left was written by the client and may be forged.
func clientAddr(r *http.Request, trusted []netip.Prefix) netip.Addr {
	peer := parseHop(r.RemoteAddr)
	if len(trusted) == 0 || !inPrefixes(peer, trusted) {
		return peer
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a := parseHop(hops[i])
		if !a.IsValid() {
			// A hop no trusted proxy would write: the last trusted
			// proxy is the best address known.
			return peer
		}
		if !inPrefixes(a, trusted) {
			return a
		}
		peer = a
	}
	return peer // every hop is a trusted proxy: the leftmost is the client
}

// parseHop reads an address as it appears in RemoteAddr or X-Forwarded-For:
// bare, with a port, or bracketed IPv6. It returns the zero Addr for
// anything else.
func parseHop(s string) netip.Addr {
	s = strings.TrimSpace(s)
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap()
	}
	if a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")); err == nil {
		return a.Unmap()
	}
	return netip.Addr{}
}

func inPrefixes(a netip.Addr, prefixes []netip.Prefix) bool {
	if !a.IsValid() {
		return false
	}
	for _, p := range prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// parseTrustedProxies reads TRUSTED_PROXIES: CIDR prefixes (or single
// addresses) separated by commas or spaces.
func parseTrustedProxies(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
		if p, err := netip.ParsePrefix(f); err == nil {
			if p.Addr().Is4In6() && p.Bits() >= 96 {
				// Client addresses are unmapped, so the prefix must be too.
				p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
			}
			out = append(out, p.Masked())
			continue
		}
		if a, err := netip.ParseAddr(f); err == nil {
			a = a.Unmap()
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		return nil, fmt.Errorf("%q is not a CIDR prefix such as 10.0.0.0/8 or an address", f)
	}
	return out, nil
}
