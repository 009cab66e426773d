// Package sim plays the WeChat platform for a configured set of mini programs,
// so wxgate can be demonstrated, tested and benchmarked without WeChat.
//
// One [Sim] serves, on a single [http.Handler]:
//
//   - the WeChat APIs wxgate calls: GET /cgi-bin/token, POST /cgi-bin/stable_token,
//     POST /cgi-bin/message/subscribe/send and GET /wxaapi/newtmpl/gettemplate, with
//     WeChat's errcodes, access-token rotation (a replaced token stays valid for an
//     overlap window), and one-time / long-term consent semantics;
//   - a control API under /sim/ to script users (popup and change answers), inject
//     faults (errcodes, latency, token expiry, dropped and duplicated pushes), and
//     read counters and the messages WeChat accepted.
//
// Every user answer and every accepted send produces a push to the app's
// callback URL (subscribe_msg_popup_event, subscribe_msg_change_event,
// subscribe_msg_sent_event), built in the app's mode (plaintext, compatible,
// secure) and format (XML, JSON), signed with the app's Token and encrypted with
// its EncodingAESKey exactly as WeChat does. Pushes are delivered asynchronously
// and retried like WeChat retries them: on a non-200 answer or after the
// 5-second timeout, up to three more times.
//
// The control operations are also Go methods ([Sim.Subscribe], [Sim.Change],
// [Sim.SetFaults], [Sim.Stats], [Sim.Messages]) so tests can drive the simulator
// without HTTP; the HTTP handlers call the same methods.
package sim
