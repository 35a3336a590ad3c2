"""Hub users: name rules, the Unix account behind each one, and their rows in the database."""

import hashlib
import unicodedata

from . import timeutil


class InvalidName(ValueError):
    pass


def normalize_name(name):
    """Lowercase, stripped; refuse empty names, '/', and control characters."""
    name = unicodedata.normalize("NFC", (name or "").strip()).lower()
    if not name:
        raise InvalidName("the user name is empty")
    if "/" in name or any(unicodedata.category(c).startswith("C") or c.isspace() for c in name):
        raise InvalidName("user names cannot contain '/', spaces or control characters")
    if len(name) > 255:
        raise InvalidName("the user name is too long")
    return name


def system_username(name):
    """TLJH's account name: `jupyter-<name>`, cut with a hash suffix to fit 32 characters."""
    username = f"jupyter-{name}"
    if len(username) < 26:
        return username
    digest = hashlib.sha256(username.encode("utf-8")).hexdigest()
    return f"{username[:26]}-{digest[:5]}"


def user_model_row(db, name):
    return db.one("SELECT * FROM users WHERE name=?", (name,))


def ensure_user(db, name, admin=False):
    """Create the user row when missing; keep `admin` in step with config."""
    row = user_model_row(db, name)
    if row is None:
        db.execute(
            "INSERT INTO users (name, admin, created) VALUES (?, ?, ?)",
            (name, int(admin), timeutil.isoformat(timeutil.now())),
        )
    elif admin and not row["admin"]:
        db.execute("UPDATE users SET admin=1 WHERE name=?", (name,))
    return user_model_row(db, name)


def touch_activity(db, name, when):
    """Move a user's last_activity forward (never backward)."""
    stamp = timeutil.isoformat(when)
    db.execute(
        "UPDATE users SET last_activity=? WHERE name=? "
        "AND (last_activity IS NULL OR last_activity < ?)",
        (stamp, name, stamp),
    )


def name_contains(text):
    """(SQL condition, parameter) matching user names that contain `text` literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return "name LIKE ? ESCAPE '\\'", f"%{escaped}%"
