package sim

import (
	"net/http"
	"strconv"
)

// errmsg returns WeChat's errmsg for code, or a generic one for codes
// injected by a test that WeChat's table does not list here.
func errmsg(code int) string {
	switch code {
	case -1:
		return "system error"
	case 0:
		return "ok"
	case 40001:
		return "invalid credential, access_token is invalid or not latest"
	case 40002:
		return "invalid grant_type"
	case 40003:
		return "invalid openid"
	case 40013:
		return "invalid appid"
	case 40014:
		return "invalid access_token"
	case 40037:
		return "invalid template_id"
	case 40164:
		return "invalid ip, not in whitelist"
	case 41001:
		return "access_token missing"
	case 41030:
		return "invalid page"
	case 42001:
		return "access_token expired"
	case 43101:
		return "user refuse to accept the msg"
	case 43107:
		return "subscribe message ability banned"
	case 43108:
		return "concurrent send to the same user"
	case 45009:
		return "reach max api daily quota limit"
	case 45011:
		return "api minute-quota reach limit mustslower retry next minute"
	case 45168:
		return "keyword hit"
	case 47001:
		return "data format error"
	case 47003:
		return "argument invalid!"
	}
	return "errcode " + strconv.Itoa(code)
}

// apiError is WeChat's error body. WeChat answers errors with HTTP 200.
type apiError struct {
	Errcode int    `json:"errcode"`
	Errmsg  string `json:"errmsg"`
}

func writeErr(w http.ResponseWriter, code int) {
	writeJSON(w, http.StatusOK, apiError{Errcode: code, Errmsg: errmsg(code)})
}
