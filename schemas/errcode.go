package schemas

// Errcode is one of WeChat's errcodes with its errmsg and what it means for
// the call that got it. It is the one table of WeChat's errcodes: the send
// pipeline's retry policy (internal/wechat) reads what a code means, the
// simulator reads the errmsg to answer with.
type Errcode struct {
	Code int
	// Msg is WeChat's errmsg for the code.
	Msg string
	// Means says what the code tells about the call.
	Means ErrcodeMeaning
}

// ErrcodeMeaning says what an errcode tells about the call that got it.
type ErrcodeMeaning string

// What errcodes mean.
const (
	// MeansOK: the call succeeded.
	MeansOK ErrcodeMeaning = "ok"
	// MeansBusy: WeChat did not do it now and may later (system busy, a
	// concurrent send to the same user, calls too frequent).
	MeansBusy ErrcodeMeaning = "busy"
	// MeansTokenRefused: the access token was refused (from an API call); a
	// fresh token may succeed.
	MeansTokenRefused ErrcodeMeaning = "token_refused"
	// MeansBadRequest: the request itself is wrong (openid, template, page,
	// data, sensitive words); the same request never succeeds.
	MeansBadRequest ErrcodeMeaning = "bad_request"
	// MeansNoConsent: the user refused or has no one-time consent left (43101).
	MeansNoConsent ErrcodeMeaning = "no_consent"
	// MeansQuota: the app's daily quota is used up until midnight, Beijing (45009).
	MeansQuota ErrcodeMeaning = "quota"
	// MeansBanned: the app's subscription-message ability is banned (43107).
	MeansBanned ErrcodeMeaning = "banned"
	// MeansConfig: the deployment is misconfigured (appid, secret, IP
	// whitelist); an operator must act.
	MeansConfig ErrcodeMeaning = "config"
)

// errcodes are the errcodes of wechat-protocol.md, section 6, and the ones the
// token endpoints answer.
var errcodes = map[int]Errcode{
	-1:    {-1, "system error", MeansBusy},
	0:     {0, "ok", MeansOK},
	40001: {40001, "invalid credential, access_token is invalid or not latest", MeansTokenRefused},
	40002: {40002, "invalid grant_type", MeansConfig},
	40003: {40003, "invalid openid", MeansBadRequest},
	40013: {40013, "invalid appid", MeansConfig},
	40014: {40014, "invalid access_token", MeansTokenRefused},
	40037: {40037, "invalid template_id", MeansBadRequest},
	40164: {40164, "invalid ip, not in whitelist", MeansConfig},
	41001: {41001, "access_token missing", MeansTokenRefused},
	41030: {41030, "invalid page", MeansBadRequest},
	42001: {42001, "access_token expired", MeansTokenRefused},
	43101: {43101, "user refuse to accept the msg", MeansNoConsent},
	43107: {43107, "subscribe message ability banned", MeansBanned},
	43108: {43108, "concurrent send to the same user", MeansBusy},
	45009: {45009, "reach max api daily quota limit", MeansQuota},
	45011: {45011, "api minute-quota reach limit mustslower retry next minute", MeansBusy},
	45168: {45168, "keyword hit", MeansBadRequest},
	47001: {47001, "data format error", MeansBadRequest},
	47003: {47003, "argument invalid!", MeansBadRequest},
}

// LookupErrcode returns what wxgate knows of code; ok is false for a code
// missing from the table.
func LookupErrcode(code int) (e Errcode, ok bool) {
	e, ok = errcodes[code]
	return e, ok
}
