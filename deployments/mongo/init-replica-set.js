// init-replica-set.js: initiates the replica set wxgate's MongoDB runs as, if it
// is not initiated yet, and waits until it has a primary. Safe to run any number
// of times; compose.yaml runs it on every `up` (service mongo-init).
//
//   MONGO_ROOT_PASSWORD_FILE=/run/secrets/mongo_root_password \
//   MONGO_RS_MEMBERS=mongo-1:27017,mongo-2:27017,mongo-3:27017 \
//     mongosh --quiet --host mongo-1 --file init-replica-set.js
//
// Environment: MONGO_RS_NAME (default rs0), MONGO_RS_MEMBERS (comma-separated
// host:port as the members and clients will reach them; default mongo:27017),
// MONGO_ROOT_USER (default root) and MONGO_ROOT_PASSWORD_FILE or
// MONGO_ROOT_PASSWORD. The password is read here rather than passed on the
// command line, where other processes could see it.
const fs = require('fs');

const rsName = process.env.MONGO_RS_NAME || 'rs0';
const members = (process.env.MONGO_RS_MEMBERS || 'mongo:27017').split(',').map((h) => h.trim()).filter(Boolean);

function rootPassword() {
  const file = process.env.MONGO_ROOT_PASSWORD_FILE;
  if (file) {
    return fs.readFileSync(file, 'utf8').trim();
  }
  return process.env.MONGO_ROOT_PASSWORD || '';
}

const admin = db.getSiblingDB('admin');
const pw = rootPassword();
if (pw !== '') {
  admin.auth(process.env.MONGO_ROOT_USER || 'root', pw);
}

function initiated() {
  try {
    rs.status();
    return true;
  } catch (e) {
    // NotYetInitialized (94) is the only answer that means "initiate me".
    if (e.code === 94 || /no replset config has been received|NotYetInitialized/.test(String(e.message))) {
      return false;
    }
    throw e;
  }
}

if (!initiated()) {
  const config = { _id: rsName, members: members.map((host, i) => ({ _id: i, host })) };
  const res = rs.initiate(config);
  if (res.ok !== 1) {
    throw new Error('rs.initiate failed: ' + JSON.stringify(res));
  }
  print(`initiated replica set ${rsName} with ${members.join(', ')}`);
} else {
  print(`replica set ${rsName} already initiated`);
}

// Wait up to a minute for an election, so that whatever starts next finds a primary.
for (let i = 0; i < 120; i++) {
  const hello = admin.runCommand({ hello: 1 });
  if (hello.primary) {
    print(`primary: ${hello.primary}`);
    quit(0);
  }
  sleep(500);
}
print('no primary after 60s');
quit(1);
