package main

import (
	"bufio"
	"bytes"
	"crypto/pbkdf2"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/aqualoop/aqualoop/collector/wire"
)

// brokerAuth is the embedded broker's authentication and topic ACL. It mirrors
// deploy/mosquitto/aqualoop.acl so that an installation can move between the embedded broker and
// Mosquitto with the same accounts (mosquitto_passwd files) and the same guarantees:
//
//   - the platform account reads every site's readings and edge status and writes dead letters and alerts;
//   - any other account is a site: its user name is the site id, and it may only write its own
//     site's meter readings and edge status (its last will included), and read nothing.
type brokerAuth struct {
	mqtt.HookBase
	users     map[string]string // account → mosquitto_passwd hash
	platform  string
	inProcess string // the in-process ingest's password for the platform account
	anonymous bool   // no accounts configured: anyone, anything (loopback only)
	logger    *slog.Logger
}

func (h *brokerAuth) ID() string { return "aqualoop-auth" }

func (h *brokerAuth) Provides(b byte) bool {
	return b == mqtt.OnConnectAuthenticate || b == mqtt.OnACLCheck
}

func (h *brokerAuth) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	if h.anonymous {
		return true
	}
	user, pw := string(pk.Connect.Username), pk.Connect.Password
	ok := false
	switch {
	case user == "":
	case user == h.platform && h.inProcess != "" && subtle.ConstantTimeCompare(pw, []byte(h.inProcess)) == 1:
		ok = true
	default:
		if hash, found := h.users[user]; found {
			ok = checkMosquittoHash(hash, pw)
		}
	}
	if !ok {
		h.logger.Warn("mqtt login refused: unknown account or wrong password", "user", user, "remote", cl.Net.Remote)
		return false
	}
	if pk.Connect.WillFlag && !brokerACL(user, h.platform, pk.Connect.WillTopic, true) {
		h.logger.Warn("mqtt login refused: last will on a topic the account may not write", "user", user, "topic", pk.Connect.WillTopic)
		return false
	}
	return true
}

func (h *brokerAuth) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	if h.anonymous {
		return true
	}
	ok := brokerACL(string(cl.Properties.Username), h.platform, topic, write)
	if !ok {
		h.logger.Warn("mqtt topic refused by the ACL", "user", string(cl.Properties.Username), "topic", topic, "write", write)
	}
	return ok
}

// brokerACL decides whether user may write a topic or subscribe to a filter. A shared
// subscription $share/<group>/<filter> is checked against <filter>, as Mosquitto does.
func brokerACL(user, platform, topic string, write bool) bool {
	if user == "" {
		return false
	}
	if !write {
		if rest, ok := strings.CutPrefix(topic, "$share/"); ok {
			_, topic, ok = strings.Cut(rest, "/")
			if !ok {
				return false
			}
		}
	}
	root := wire.Root + "/"
	var grants []string
	switch {
	case user == platform && write:
		grants = []string{root + "+/deadletter", root + "+/alerts"} // alerts: the notifier's MQTT receivers
	case user == platform:
		grants = []string{root + "+/meters/+", root + "+/edges/+/status"}
	case write && wire.ValidID(user):
		grants = []string{root + user + "/meters/+", root + user + "/edges/+/status"}
	}
	for _, g := range grants {
		if covers(strings.Split(g, "/"), strings.Split(topic, "/")) {
			return true
		}
	}
	return false
}

// covers reports whether a grant pattern (with + wildcards) includes every topic a topic or
// filter can name: "#" in the filter is never covered, "+" only by "+".
func covers(grant, filter []string) bool {
	if len(grant) != len(filter) {
		return false
	}
	for i, g := range grant {
		f := filter[i]
		switch {
		case f == "#":
			return false
		case g == "+":
		case f != g:
			return false
		}
	}
	return true
}

// readPasswordFile reads a mosquitto_passwd file: "user:hash" lines, # comments.
func readPasswordFile(path string) (map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read broker password_file: %w", err)
	}
	users := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		user, hash, ok := strings.Cut(line, ":")
		if !ok || user == "" {
			return nil, fmt.Errorf("%s:%d: want user:hash as written by mosquitto_passwd", path, n)
		}
		if _, err := parseMosquittoHash(hash); err != nil {
			return nil, fmt.Errorf("%s:%d: user %s: %w", path, n, user, err)
		}
		users[user] = hash
	}
	return users, sc.Err()
}

type mosquittoHash struct {
	iterations int // 0: salted SHA-512 ($6$)
	salt, sum  []byte
}

// parseMosquittoHash reads mosquitto_passwd's formats: $7$<iterations>$<salt>$<hash> (PBKDF2
// with SHA-512, Mosquitto 2's default) and $6$<salt>$<hash> (SHA-512 of password and salt),
// salt and hash in standard base64.
func parseMosquittoHash(s string) (mosquittoHash, error) {
	f := strings.Split(s, "$")
	var h mosquittoHash
	var salt, sum string
	switch {
	case len(f) == 5 && f[0] == "" && f[1] == "7":
		n, err := strconv.Atoi(f[2])
		if err != nil || n < 1 || n > 10_000_000 {
			return h, errors.New("iterations of a $7$ hash are not a positive number")
		}
		h.iterations, salt, sum = n, f[3], f[4]
	case len(f) == 4 && f[0] == "" && f[1] == "6":
		salt, sum = f[2], f[3]
	default:
		return h, errors.New("not a mosquitto_passwd hash ($7$... or $6$...); plain passwords are not accepted")
	}
	var err error
	if h.salt, err = base64.StdEncoding.DecodeString(salt); err != nil {
		return h, errors.New("salt is not base64")
	}
	if h.sum, err = base64.StdEncoding.DecodeString(sum); err != nil || len(h.sum) != sha512.Size {
		return h, errors.New("hash is not 64 bytes of base64")
	}
	return h, nil
}

func checkMosquittoHash(stored string, password []byte) bool {
	h, err := parseMosquittoHash(stored)
	if err != nil {
		return false
	}
	var got []byte
	if h.iterations == 0 {
		s := sha512.Sum512(append(append([]byte{}, password...), h.salt...))
		got = s[:]
	} else {
		got, err = pbkdf2.Key(sha512.New, string(password), h.salt, h.iterations, sha512.Size)
		if err != nil {
			return false
		}
	}
	return subtle.ConstantTimeCompare(got, h.sum) == 1
}

// hashMosquittoPassword makes a $7$ hash as mosquitto_passwd does (101 iterations, 12-byte salt).
func hashMosquittoPassword(password string) string {
	salt := randomBytes(12)
	sum, _ := pbkdf2.Key(sha512.New, password, salt, 101, sha512.Size)
	return "$7$101$" + base64.StdEncoding.EncodeToString(salt) + "$" + base64.StdEncoding.EncodeToString(sum)
}
