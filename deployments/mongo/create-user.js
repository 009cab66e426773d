// create-user.js: the MongoDB user wxgate connects as, with readWrite on its own
// database and nothing else. wxgate creates its collections and indexes itself
// at start-up, which readWrite allows (createCollection, createIndex).
//
// Run it once as an administrator (re-running updates the password and roles):
//
//   MONGO_WXGATE_PASSWORD_FILE=./wxgate-password \
//     mongosh "mongodb://root@mongo-1:27017/admin?replicaSet=rs0" --file create-user.js
//
// compose.yaml mounts it into /docker-entrypoint-initdb.d, where the mongo image
// runs it once, on first start with an empty volume.
//
// Environment: MONGO_WXGATE_USER (default wxgate), WXGATE_DATABASE (default
// wxgate; must match mongo.database), MONGO_WXGATE_PASSWORD_FILE or
// MONGO_WXGATE_PASSWORD. The user lives in the admin database, so the
// connection string says authSource=admin:
//
//   mongodb://wxgate:PASSWORD@mongo-1:27017,mongo-2:27017,mongo-3:27017/wxgate?replicaSet=rs0&authSource=admin
const fs = require('fs');

const user = process.env.MONGO_WXGATE_USER || 'wxgate';
const database = process.env.WXGATE_DATABASE || 'wxgate';

function password() {
  const file = process.env.MONGO_WXGATE_PASSWORD_FILE;
  const pw = file ? fs.readFileSync(file, 'utf8').trim() : (process.env.MONGO_WXGATE_PASSWORD || '').trim();
  if (pw.length < 16) {
    throw new Error('set MONGO_WXGATE_PASSWORD_FILE (or MONGO_WXGATE_PASSWORD) to a password of at least 16 characters');
  }
  return pw;
}

const admin = db.getSiblingDB('admin');
const roles = [{ role: 'readWrite', db: database }];
if (admin.getUser(user) === null) {
  admin.createUser({ user, pwd: password(), roles });
  print(`created user ${user} with readWrite on ${database}`);
} else {
  admin.updateUser(user, { pwd: password(), roles });
  print(`updated user ${user}: readWrite on ${database}`);
}
