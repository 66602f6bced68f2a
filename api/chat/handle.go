package chat

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/chatctl/chatctl/access"
)

// handle decodes and acts on one inbound text frame. It runs on the reader
// goroutine and never touches the socket: replies go through the queue. A
// bad frame gets an error frame and the connection stays up.
func (c *client) handle(data []byte) {
	var in inbound
	if err := json.Unmarshal(data, &in); err != nil {
		// On a type error json still fills the fields it could, so the
		// ref may be there to echo; on a syntax error it is empty.
		c.replyError(CodeBadRequest, "frame is not a valid JSON request", clampRef(in.Ref))
		return
	}
	if len(in.Ref) > maxRefLen {
		c.replyError(CodeBadRequest, "ref is too long", "")
		return
	}
	if in.Type == "" {
		c.replyError(CodeBadRequest, "type is required", in.Ref)
		return
	}
	h, ok := handlers[in.Type]
	if !ok {
		c.replyError(CodeBadRequest, "unknown type", in.Ref)
		return
	}
	// A DM is named @bob or @alice+bob; every handler sees the canonical
	// @alice+bob, which every frame about it carries.
	room, ok := c.resolveRoom(in.Room)
	if !ok {
		c.replyError(CodeBadRequest, "a direct message is @USER or @USER1+USER2, two different users", in.Ref)
		return
	}
	in.Room = room
	h(c, &in)
}

// handlers maps each client frame type to its handler: the single list of
// what the hub accepts (see ClientFrameTypes). Read-only.
var handlers = map[string]func(*client, *inbound){
	TypeJoin:    (*client).handleJoin,
	TypeLeave:   (*client).handleLeave,
	TypeSend:    (*client).handleSend,
	TypeHistory: (*client).handleHistory,
	TypeAuth:    (*client).handleAuth,
	TypePing:    (*client).handlePing,
	TypeRooms:   (*client).handleRooms,
	TypeRead:    (*client).handleRead,
	TypeTyping:  (*client).handleTyping,
}

// handleJoin checks the room name and hands the join to the hub.
func (c *client) handleJoin(in *inbound) {
	if !validRoom(in.Room) && !access.IsDM(in.Room) {
		c.replyError(CodeBadRequest, "room must be 1..64 of [a-z0-9._-], not . or ..", in.Ref)
		return
	}
	if access.IsDM(in.Room) {
		if rs := c.hub.roomStore(); rs != nil {
			peer := dmPeer(c.user, in.Room)
			ok, err := rs.UserExists(peer)
			if err != nil {
				c.hub.log.Error("chat: join", "room", in.Room, "err", err)
				c.replyError(CodeUnavailable, "store unavailable", in.Ref)
				return
			}
			if !ok {
				c.replyError(CodeNotFound, "no such user: "+peer, in.Ref)
				return
			}
		}
	}
	c.hub.join(c, in)
}

// handleLeave leaves a joined room. SPEC §6 defines no reply to leave; an
// ack without id confirms it and carries the ref, and not_found tells a
// client its view of its rooms was stale.
func (c *client) handleLeave(in *inbound) {
	r := c.joined(in.Room)
	if r == nil {
		c.replyError(CodeNotFound, "not a member of this room", in.Ref)
		return
	}
	c.hub.leave(r, c)
	c.reply(ackFrame{Type: TypeAck, Ref: in.Ref, Room: in.Room})
}

// handlePing answers a protocol-level ping. It exists for clients
// (browsers) that cannot send WebSocket ping frames; it also proves every
// earlier frame of this connection was handled, since frames are handled
// in order.
func (c *client) handlePing(in *inbound) {
	c.reply(pongFrame{Type: TypePong, Ref: in.Ref})
}

// handleSend checks a send and hands it to the hub. Sending to a room the
// connection has not joined is forbidden rather than an implicit join: a
// join has a reply (members, replay) that a send could not carry.
func (c *client) handleSend(in *inbound) {
	switch {
	case in.Text == "":
		c.replyError(CodeBadRequest, "text is required", in.Ref)
		return
	case len(in.Text) > c.hub.cfg.MaxText:
		c.replyError(CodeTooLarge, "text is too long", in.Ref)
		return
	case strings.IndexByte(in.Text, 0) >= 0:
		// A NUL (JSON's \u0000) is no text a person writes, and
		// PostgreSQL cannot store it: refused on every store alike.
		c.replyError(CodeBadRequest, "text must not contain NUL (\\u0000)", in.Ref)
		return
	}
	r := c.joined(in.Room)
	if r == nil {
		c.replyError(CodeForbidden, "join the room before sending", in.Ref)
		return
	}
	if !c.hub.perm(c, r.name).CanWrite() {
		c.replyError(CodeForbidden, "no write access to this room", in.Ref)
		return
	}
	if c.expired() {
		c.replyError(CodeTokenExpired, "token expired: send an auth frame with a fresh token", in.Ref)
		return
	}
	if !c.allow() {
		c.replyError(CodeRateLimited, "too many messages: slow down", in.Ref)
		return
	}
	c.hub.send(r, c, in.Text, in.Ref)
}

// handleHistory replies with up to limit messages before in.Before
// (0: the newest), ascending. Like send, it needs membership.
func (c *client) handleHistory(in *inbound) {
	h := c.hub
	limit := in.Limit
	switch {
	case limit < 0:
		c.replyError(CodeBadRequest, "limit must not be negative", in.Ref)
		return
	case limit == 0:
		limit = min(defaultHistoryLimit, h.cfg.HistoryLimit)
	case limit > h.cfg.HistoryLimit:
		limit = h.cfg.HistoryLimit
	}
	r := c.joined(in.Room)
	if r == nil {
		c.replyError(CodeForbidden, "join the room before reading its history", in.Ref)
		return
	}
	r.mu.Lock()
	epoch := r.epoch
	r.mu.Unlock()
	msgs, err := h.store.MessagesBefore(in.Room, in.Before, limit)
	if err != nil {
		h.log.Error("chat: history", "room", in.Room, "err", err)
		c.replyError(CodeUnavailable, "store unavailable", in.Ref)
		return
	}
	c.reply(historyFrame{Type: TypeHistory, Ref: in.Ref, Room: in.Room, Epoch: epoch, Messages: toWireList(msgs)})
}

// handleAuth swaps in the expiry of a fresh token for the same user. A bad
// token leaves the connection as it was (it will still expire on time). The
// token itself is never logged.
func (c *client) handleAuth(in *inbound) {
	h := c.hub
	if in.Token == "" {
		c.replyError(CodeBadRequest, "token is required", in.Ref)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), h.cfg.StoreTimeout)
	id, err := h.auth.Authenticate(ctx, in.Token)
	cancel()
	if err != nil {
		h.log.Info("chat: auth frame rejected", "user", c.user, "err", err)
		c.replyError(CodeUnauthorized, "invalid token", in.Ref)
		return
	}
	if strings.ToLower(id.User) != c.user {
		h.log.Warn("chat: auth frame for another user", "user", c.user, "token_user", id.User)
		c.replyError(CodeUnauthorized, "token is for another user", in.Ref)
		return
	}
	c.refresh(id)
	c.reply(ackFrame{Type: TypeAck, Ref: in.Ref})
}

// clampRef drops a ref that is too long to echo.
func clampRef(ref string) string {
	if len(ref) > maxRefLen {
		return ""
	}
	return ref
}
