// events-ttl.js: optional expiry of the events audit trail (GET /v1/apps/{appid}/events).
//
// wxgate keeps every received event for ever; this adds a TTL index so MongoDB
// deletes events some days after they were received. Consents, messages,
// outcomes and dead letters are state, not history: never expire those.
//
// Keep the TTL well above nats.max_age (168h by default): the processor stores
// each event once by its id, and the stream can still redeliver or replay an
// event until max_age has passed.
//
//   EVENTS_TTL_DAYS=90 mongosh "mongodb://root@mongo-1:27017/admin?replicaSet=rs0" --file events-ttl.js
//
// Re-running with another EVENTS_TTL_DAYS changes the expiry in place (collMod).
// Environment: EVENTS_TTL_DAYS (default 90), WXGATE_DATABASE (default wxgate).
const days = Number(process.env.EVENTS_TTL_DAYS || '90');
if (!Number.isInteger(days) || days < 8) {
  throw new Error('EVENTS_TTL_DAYS must be a whole number of days, at least 8 (above the default nats.max_age of 7 days)');
}
const seconds = days * 24 * 60 * 60;
const wx = db.getSiblingDB(process.env.WXGATE_DATABASE || 'wxgate');
const name = 'received_at_ttl';

// A TTL index must be a single-field index on a date; received_at is set by the
// processor when it stores the event. wxgate's own indexes on events are
// compound, so this one does not clash with them.
const existing = wx.events.getIndexes().find((ix) => ix.name === name);
if (existing === undefined) {
  wx.events.createIndex({ received_at: 1 }, { name, expireAfterSeconds: seconds });
  print(`created ${name}: events expire ${days} days after received_at`);
} else {
  wx.runCommand({ collMod: 'events', index: { name, expireAfterSeconds: seconds } });
  print(`updated ${name}: events expire ${days} days after received_at`);
}
