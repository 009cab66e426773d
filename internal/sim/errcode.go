package sim

import (
	"net/http"
	"strconv"

	"github.com/wxgate/wxgate/schemas"
)

// errmsg returns WeChat's errmsg for code, from the table the send pipeline
// reads too, or a generic one for codes injected by a test that the table does
// not list.
func errmsg(code int) string {
	if e, ok := schemas.LookupErrcode(code); ok {
		return e.Msg
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
