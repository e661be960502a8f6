-- Where each followed log stopped: file identity + offset, saved with its evidence in one transaction.
CREATE TABLE source_positions (
    name       TEXT PRIMARY KEY,          -- follower name, e.g. maillog:/var/log/mail.log
    device     INTEGER NOT NULL,          -- st_dev of the file being read
    inode      INTEGER NOT NULL,          -- st_ino of the file being read
    head       TEXT NOT NULL,             -- "N:digest" of its first N bytes (survives inode reuse)
    "offset"   INTEGER NOT NULL,          -- bytes consumed: always the end of a complete line
    lines      INTEGER NOT NULL,          -- lines consumed in this file (1-based numbering resumes)
    state      TEXT,                      -- consumer state (detector windows) as JSON
    updated_at REAL NOT NULL
);
