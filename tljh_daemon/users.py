"""Hub users: name rules, the Unix account behind each one, and their rows in the database."""

import hashlib
import logging
import re
import unicodedata

from . import timeutil
from .server_state import ACTIVE, DOWN, ServerState, sql_list

log = logging.getLogger(__name__)

#: the orders a user listing may be sorted in (?sort= of the REST API and the admin page): column
SORTS = {"id": "rowid", "name": "name", "last_activity": "last_activity"}
#: the most users one page of a listing holds (JupyterHub's cap)
PAGE_MAX_LIMIT = 200


def _server_in(states):
    return f"EXISTS (SELECT 1 FROM servers s WHERE s.user=users.name AND s.state IN ({sql_list(states)}))"


#: ?state= of the REST API (JupyterHub's filters): SQL conditions on the `users` table
STATE_FILTERS = {
    "active": _server_in(ACTIVE),
    "ready": _server_in([ServerState.RUNNING]),
    "inactive": f"NOT {_server_in(ACTIVE)}",
}
#: the admin page's filters add the starts that did not come up
ADMIN_STATE_FILTERS = {**STATE_FILTERS, "failed": _server_in([s for s in DOWN if s != ServerState.STOPPED])}


class InvalidName(ValueError):
    pass


def normalize_name(name):
    """Lowercase, stripped; refuse empty names, '.' and '..' (they are path steps in every URL
    and file name made from a user name), '/', and control characters."""
    name = unicodedata.normalize("NFC", (name or "").strip()).lower()
    if not name:
        raise InvalidName("the user name is empty")
    if "/" in name or any(unicodedata.category(c).startswith("C") or c.isspace() for c in name):
        raise InvalidName("user names cannot contain '/', spaces or control characters")
    if name in (".", "..") or unicodedata.normalize("NFKC", name) in (".", ".."):
        raise InvalidName(f"{name!r} cannot be a user name")
    if len(name) > 255:
        raise InvalidName("the user name is too long")
    return name


#: alphabets with letters that look alike: a new name may use only one of them
LOOK_ALIKE_SCRIPTS = {"LATIN", "CYRILLIC", "GREEK"}


def check_new_name(name):
    """Extra rules for a name about to be created (sign-up, first use, the API), on top of
    normalize_name's: no compatibility forms (fullwidth `ｎ`, ligatures: NFKC would change
    it), no Latin, Greek and Cyrillic letters mixed (`sаnat` with a Cyrillic `а`), no
    combining marks left on such letters after NFC. Existing users' names are not checked."""
    folded = unicodedata.normalize("NFKC", name).lower()
    if folded != name:
        raise InvalidName(f"{name!r} uses look-alike characters (such as fullwidth letters); "
                          f"type it as {folded!r}")
    scripts, base = set(), None
    for char in name:
        category = unicodedata.category(char)
        if category.startswith("L"):
            base = unicodedata.name(char, "").split(" ")[0]
            if base in LOOK_ALIKE_SCRIPTS:
                scripts.add(base)
        elif category.startswith("M"):
            if base is None or base in LOOK_ALIKE_SCRIPTS:
                raise InvalidName(f"{name!r} has a combining mark ({unicodedata.name(char, 'U+%04X' % ord(char))}) "
                                  f"on a letter or sign; use the accented letter itself")
        else:
            base = None
    if len(scripts) > 1:
        raise InvalidName(f"{name!r} mixes {' and '.join(sorted(s.title() for s in scripts))} letters, "
                          f"which look alike; use one alphabet")
    return name


def valid_names(names):
    """The normalized names among `names`, leaving out any the REST API would refuse (config
    from plugins or jupyterhub_config.d is not checked by tljh-config: never crash on it)."""
    result = set()
    for name in names:
        try:
            result.add(normalize_name(name))
        except (InvalidName, TypeError, AttributeError):
            log.error("Ignoring %r in the configured user names: not a valid user name", name)
    return result


PORTABLE_NAME = re.compile(r"[a-z0-9_.-]+")
MAPPED_LENGTH = 30


def system_username(name):
    """The Unix account of hub user `name`.

    Portable names keep TLJH's rule: `jupyter-<name>`, or, when that is 26 characters or more,
    its first 26 characters + `-` + 5 hex characters of its sha256 (32 in all). Other names
    (non-ASCII, `@`, `+`, ...) become `jupyter-<ASCII letters of the name>-<sha256 hex>`, always
    exactly 30 characters: a length neither branch of TLJH's rule produces, so no hub name can
    take over another's account."""
    if not PORTABLE_NAME.fullmatch(name):
        return _mapped_username(name)
    username = f"jupyter-{name}"
    if len(username) < 26:
        return username
    digest = hashlib.sha256(username.encode("utf-8")).hexdigest()
    return f"{username[:26]}-{digest[:5]}"


def _mapped_username(name):
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name).strip("-")[:11].strip("-") or "u"
    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()
    head = f"jupyter-{slug}-"
    return head + digest[: MAPPED_LENGTH - len(head)]


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
