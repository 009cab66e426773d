// Package schemas defines the shapes wxgate exchanges: WeChat pushes parsed
// from XML or JSON into one normalised Event, the CloudEvents envelope and
// subject names used on NATS, the JSON Schemas of every event's data, and the
// keyword rules of subscription-message template data.
//
// The package is pure: no I/O, no logging, and no imports of wxgate's other packages.
package schemas
