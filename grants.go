package main

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Grants is the "grants" claim of a Twilio access token. Each grant is
// present only when the token carries it, and inside a grant a field appears
// only when it has a value, as Twilio's helper libraries emit them.
type Grants struct {
	Identity string      `json:"identity"`
	Video    *VideoGrant `json:"video,omitempty"`
	Voice    *VoiceGrant `json:"voice,omitempty"`
	Chat     *ChatGrant  `json:"chat,omitempty"`
	Sync     *SyncGrant  `json:"data_sync,omitempty"`
}

// VideoGrant lets the identity join Twilio Video rooms; an empty Room means any room.
type VideoGrant struct {
	Room string `json:"room,omitempty"`
}

// VoiceGrant lets the identity receive calls (Incoming) and place calls
// through a TwiML app (Outgoing).
type VoiceGrant struct {
	Incoming          *VoiceIncoming `json:"incoming,omitempty"`
	Outgoing          *VoiceOutgoing `json:"outgoing,omitempty"`
	PushCredentialSID string         `json:"push_credential_sid,omitempty"`
	EndpointID        string         `json:"endpoint_id,omitempty"`
}

// VoiceIncoming is emitted only when incoming calls are allowed.
type VoiceIncoming struct {
	Allow bool `json:"allow"`
}

// VoiceOutgoing names the TwiML app that outgoing calls run and the
// parameters Twilio passes to it.
type VoiceOutgoing struct {
	ApplicationSID string            `json:"application_sid"`
	Params         map[string]string `json:"params,omitempty"`
}

// ChatGrant serves both Programmable Chat and Conversations: the
// Conversations SDK expects a chat grant whose ServiceSID is the
// Conversations service.
type ChatGrant struct {
	ServiceSID        string `json:"service_sid,omitempty"`
	EndpointID        string `json:"endpoint_id,omitempty"`
	DeploymentRoleSID string `json:"deployment_role_sid,omitempty"`
	PushCredentialSID string `json:"push_credential_sid,omitempty"`
}

// SyncGrant lets the identity use a Twilio Sync service.
type SyncGrant struct {
	ServiceSID string `json:"service_sid,omitempty"`
	EndpointID string `json:"endpoint_id,omitempty"`
}

// grantName is a grant as requests and TOKEN_GRANTS name it.
type grantName string

const (
	grantVideo         grantName = "video"
	grantVoice         grantName = "voice"
	grantChat          grantName = "chat"
	grantConversations grantName = "conversations"
	grantSync          grantName = "sync"
)

// allGrantNames is every grant name, in the order they are listed to people.
var allGrantNames = []grantName{grantVideo, grantVoice, grantChat, grantConversations, grantSync}

// grantSet is a set of grant names as a bit set: small, comparable and free
// to copy on the hot path.
type grantSet uint8

func (s grantSet) has(g grantName) bool { return s&grantBit(g) != 0 }

func grantBit(g grantName) grantSet {
	for i, n := range allGrantNames {
		if n == g {
			return 1 << i
		}
	}
	return 0
}

// names lists the set's grants in canonical order.
func (s grantSet) names() []string {
	var out []string
	for _, g := range allGrantNames {
		if s.has(g) {
			out = append(out, string(g))
		}
	}
	return out
}

func (s grantSet) String() string { return strings.Join(s.names(), ",") }

// parseGrantNames reads grant names (already split) into a set. It refuses
// unknown names and chat with conversations, which would both need the one
// "chat" key of the token.
func parseGrantNames(names []string) (grantSet, error) {
	var s grantSet
	for _, raw := range names {
		name := strings.ToLower(strings.TrimSpace(raw))
		if name == "" {
			continue
		}
		bit := grantBit(grantName(name))
		if bit == 0 {
			return 0, fmt.Errorf("unknown grant %q (known: %s)", raw, strings.Join(grantSet(1<<len(allGrantNames)-1).names(), ", "))
		}
		s |= bit
	}
	if s.has(grantChat) && s.has(grantConversations) {
		return 0, fmt.Errorf("chat and conversations cannot be in one token: both use the token's single chat grant")
	}
	return s, nil
}

// grantOptions are the per-request choices that shape the grants.
type grantOptions struct {
	Room        string
	VoiceParams map[string]string
}

// buildGrants returns the grants claim for identity, drawing SIDs from the
// configuration. The caller has checked set against cfg.EnabledGrants.
func buildGrants(cfg *Config, set grantSet, identity string, opt grantOptions) Grants {
	g := Grants{Identity: identity}
	if set.has(grantVideo) {
		room := opt.Room
		if room == "" {
			room = cfg.VideoRoom
		}
		g.Video = &VideoGrant{Room: room}
	}
	if set.has(grantVoice) {
		v := &VoiceGrant{PushCredentialSID: cfg.PushCredentialSID}
		if cfg.VoiceIncoming {
			v.Incoming = &VoiceIncoming{Allow: true}
		}
		if cfg.TwiMLAppSID != "" {
			v.Outgoing = &VoiceOutgoing{ApplicationSID: cfg.TwiMLAppSID, Params: opt.VoiceParams}
		}
		g.Voice = v
	}
	if set.has(grantChat) {
		g.Chat = &ChatGrant{ServiceSID: cfg.ChatServiceSID, PushCredentialSID: cfg.ChatPushCredentialSID}
	}
	if set.has(grantConversations) {
		g.Chat = &ChatGrant{ServiceSID: cfg.ConversationsServiceSID, PushCredentialSID: cfg.ChatPushCredentialSID}
	}
	if set.has(grantSync) {
		g.Sync = &SyncGrant{ServiceSID: cfg.SyncServiceSID}
	}
	return g
}

// Identity limits Twilio enforces, checked here so a bad identity fails with
// a clear message instead of at call time.
const (
	maxIdentityAny   = 256 // Chat, Conversations, Sync
	maxIdentityVideo = 128
	maxVideoRoom     = 128 // a room's unique name
)

// checkIdentity returns a problem with identity for the grants in set, or "".
func checkIdentity(identity string, set grantSet) string {
	n := utf8.RuneCountInString(identity)
	switch {
	case n == 0:
		return "must not be empty"
	case !utf8.ValidString(identity):
		// JSON would carry it as U+FFFD: a token for another identity.
		return "is not valid UTF-8"
	case n > maxIdentityAny:
		return fmt.Sprintf("is %d characters; Twilio allows at most %d", n, maxIdentityAny)
	case set.has(grantVideo) && n > maxIdentityVideo:
		return fmt.Sprintf("is %d characters; Twilio Video allows at most %d", n, maxIdentityVideo)
	case set.has(grantVoice) && !isVoiceIdentity(identity):
		return "Twilio Voice allows only letters, digits and _ in an identity; use a username without other characters, or a token without the voice grant"
	}
	return ""
}

func isVoiceIdentity(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}
