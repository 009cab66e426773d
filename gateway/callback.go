package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/wxgate/wxgate/crypto"
	"github.com/wxgate/wxgate/schemas"
)

// maxEchostr bounds the echostr a URL verification may ask us to echo.
const maxEchostr = 256

// verifyURL answers WeChat's URL verification: echostr, verbatim, when the
// signature matches. In the mini-program flavour echostr is plaintext even in
// secure mode.
func (s *Server) verifyURL(c *gin.Context) error {
	app, err := s.app(c.Param("appid"))
	if err != nil {
		return err
	}
	q := c.Request.URL.Query()
	ts := q.Get("timestamp")
	if err := crypto.CheckTimestamp(ts, s.now(), s.maxSkew); err != nil {
		return err
	}
	if err := crypto.VerifySignature(app.Token, ts, q.Get("nonce"), q.Get("signature")); err != nil {
		return err
	}
	echostr := q.Get("echostr")
	if echostr == "" || len(echostr) > maxEchostr {
		return fmt.Errorf("%w: echostr missing or longer than %d bytes", schemas.ErrMalformed, maxEchostr)
	}
	c.Data(http.StatusOK, "text/plain; charset=utf-8", []byte(echostr))
	return nil
}

// receive handles one push: verify, decrypt, parse, publish, and only then
// answer success. Any error is mapped to its status by the caller. The
// CloudEvent's time is when the request arrived, read once from the clock
// that also checks the timestamp.
func (s *Server) receive(c *gin.Context) (string, error) {
	received := s.now()
	app, err := s.app(c.Param("appid"))
	if err != nil {
		return "", err
	}
	q := c.Request.URL.Query()
	ts, nonce := q.Get("timestamp"), q.Get("nonce")
	if err := crypto.CheckTimestamp(ts, received, s.maxSkew); err != nil {
		return "", err
	}
	body, err := readBody(c, s.maxBody)
	if err != nil {
		return "", err
	}
	env, err := schemas.ParseEnvelope(body)
	if err != nil {
		return "", err
	}

	msg := body
	encrypted := env.Encrypt != "" || q.Get("encrypt_type") == "aes"
	if encrypted {
		// signature covers only the query; msg_signature is what binds the body.
		if env.Encrypt == "" {
			return "", fmt.Errorf("%w: encrypt_type=aes without an Encrypt field", schemas.ErrMalformed)
		}
		if err := crypto.VerifyMsgSignature(app.Token, ts, nonce, env.Encrypt, q.Get("msg_signature")); err != nil {
			return "", err
		}
		if sig := q.Get("signature"); sig != "" {
			if err := crypto.VerifySignature(app.Token, ts, nonce, sig); err != nil {
				return "", err
			}
		}
		if app.Cipher == nil {
			return "", fmt.Errorf("%w: app has no encoding_aes_key", errNoKey)
		}
		if msg, err = app.Cipher.Decrypt(env.Encrypt); err != nil {
			return "", err
		}
	} else if err := crypto.VerifySignature(app.Token, ts, nonce, q.Get("signature")); err != nil {
		return "", err
	}

	ev, id, err := schemas.ParseEventWithID(app.AppID, msg)
	if err != nil {
		return "", err
	}
	ce, err := schemas.InboundCloudEventWithID(ev, id, received)
	if err != nil {
		return "", fmt.Errorf("%w: %v", schemas.ErrMalformed, err)
	}
	data, err := json.Marshal(ce)
	if err != nil {
		return "", fmt.Errorf("%w: %v", schemas.ErrMalformed, err)
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), s.publishTimeout)
	defer cancel()
	work := schemas.WorkSubject(ev.AppID, ev.OpenID, schemas.WorkInbound)
	dup, err := s.pub.PublishWork(ctx, ev.Subject(), work, ce.ID, data)
	if err != nil {
		return eventLabel(ev.Event, ev.MsgType), fmt.Errorf("%w: %v", errUnavailable, err)
	}
	label := eventLabel(ev.Event, ev.MsgType)
	s.log.Debug("push stored", "appid", app.AppID, "event", label, "id", ce.ID, "duplicate", dup)
	if dup {
		s.metrics.duplicates.WithLabelValues(app.AppID).Inc()
	}
	c.String(http.StatusOK, "success")
	return label, nil
}

// readBody reads at most limit bytes; a longer body is errTooLarge.
func readBody(c *gin.Context, limit int64) ([]byte, error) {
	r := http.MaxBytesReader(c.Writer, c.Request.Body, limit)
	b, err := io.ReadAll(r)
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return nil, errTooLarge
	case err != nil:
		return nil, fmt.Errorf("%w: reading body: %v", schemas.ErrMalformed, err)
	case len(b) == 0:
		return nil, fmt.Errorf("%w: empty body", schemas.ErrMalformed)
	}
	return b, nil
}

func (s *Server) now() time.Time { return s.clock() }
