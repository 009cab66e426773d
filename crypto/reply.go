package crypto

import (
	"crypto/rand"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"strconv"
)

// Reply is an encrypted passive reply to a push, in the fields WeChat expects.
// Subscription events never need one; plain "success" acknowledges them.
type Reply struct {
	Encrypt      string // base64 ciphertext from [Cipher.Encrypt]
	MsgSignature string // [MsgSignature] over the Token, TimeStamp, Nonce and Encrypt
	TimeStamp    string // unix seconds, decimal
	Nonce        string
}

// NewReply encrypts msg with the current key and signs it with token,
// timestamp and nonce. It is safe for concurrent use.
func (c *Cipher) NewReply(token string, msg []byte, timestamp, nonce string) (Reply, error) {
	var random [randomLen]byte
	if _, err := rand.Read(random[:]); err != nil {
		return Reply{}, fmt.Errorf("crypto: reading random bytes: %w", err)
	}
	return c.newReply(token, random[:], msg, timestamp, nonce)
}

func (c *Cipher) newReply(token string, random, msg []byte, timestamp, nonce string) (Reply, error) {
	enc, err := c.EncryptWithRandom(random, msg)
	if err != nil {
		return Reply{}, err
	}
	return Reply{
		Encrypt:      enc,
		MsgSignature: MsgSignature(token, timestamp, nonce, enc),
		TimeStamp:    timestamp,
		Nonce:        nonce,
	}, nil
}

// JSON returns the reply as {"Encrypt","MsgSignature","TimeStamp","Nonce"}.
// TimeStamp is written as a JSON number, as in the official example, so it
// must be a canonical decimal integer: WeChat checks MsgSignature against the
// number's text, and "007" would come back as "7".
func (r Reply) JSON() ([]byte, error) {
	ts, err := strconv.ParseInt(r.TimeStamp, 10, 64)
	if err != nil || strconv.FormatInt(ts, 10) != r.TimeStamp {
		return nil, fmt.Errorf("crypto: reply timestamp %.24q is not a canonical decimal integer", r.TimeStamp)
	}
	return json.Marshal(struct {
		Encrypt      string
		MsgSignature string
		TimeStamp    int64
		Nonce        string
	}{r.Encrypt, r.MsgSignature, ts, r.Nonce})
}

// XML returns the reply in the layout of Tencent's sample code:
// <xml><Encrypt><![CDATA[...]]></Encrypt><MsgSignature><![CDATA[...]]></MsgSignature>
// <TimeStamp>...</TimeStamp><Nonce><![CDATA[...]]></Nonce></xml>, without the line break.
func (r Reply) XML() ([]byte, error) {
	// encoding/xml splits a "]]>" inside a value across two CDATA sections,
	// so a hostile nonce cannot break out of its element.
	type cdata struct {
		Text string `xml:",cdata"`
	}
	return xml.Marshal(struct {
		XMLName      xml.Name `xml:"xml"`
		Encrypt      cdata
		MsgSignature cdata
		TimeStamp    string
		Nonce        cdata
	}{
		Encrypt:      cdata{r.Encrypt},
		MsgSignature: cdata{r.MsgSignature},
		TimeStamp:    r.TimeStamp,
		Nonce:        cdata{r.Nonce},
	})
}
